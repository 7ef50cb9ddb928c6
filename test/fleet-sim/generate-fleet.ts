/**
 * A fleet repository like fleet-repo-example, N sites from one template: every site
 * extends the example's `dual-isp` group (two Ethernet uplinks, balanced, tracked, SNAT)
 * with its own addresses and a staff-web policy. Addresses come from 10.0.0.0/8 — never
 * on a wire: the routers are simulated — so a fleet of thousands gets distinct ones.
 *
 * `variant` is the change a rollout carries: it sets isp1's balance weight in the group,
 * so every site's multipath default route changes and nothing else does.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { compileSite } from '../../controller/src/compile/compile-site.js';
import { synthesizeFacts } from '../../controller/src/explain/synthesize-facts.js';
import { formatDiagnostic } from '../../controller/src/spec/diagnostic.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import type { SimSiteSpec } from './sim-site.js';

/** A syntactically valid host key for a fleet whose real keys are not known yet. */
export const PLACEHOLDER_HOST_KEY =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEaBhMD+z0lxDQfAW10VyG7qYY4PRXHcvAYGlNrX3ReB';

const DEFAULT_WAVES = `    - name: canary
      select: { labels: { canary: "true" } }
      concurrency: 2
      maxFailures: 0
    - name: early
      percent: 10
      concurrency: 16
      maxFailures: 1
    - name: rest
      concurrency: 64
      maxFailures: 5
`;

export interface FleetTemplateOptions {
  readonly count: number;
  /** isp1's balance weight is 1 + variant (0–255). Default 0. */
  readonly variant?: number;
  /** Per site: where its SSH server listens; default 127.0.0.1:(20000 + index), a distinct placeholder. */
  readonly management?: (site: string, index: number) => { readonly address: string; readonly port: number };
  readonly hostKey?: string;
  /** rollout.confirmWithin, e.g. `30s`. */
  readonly confirmWithin?: string;
  /**
   * fleet.yaml's `rollout.waves` list, as YAML lines indented by 4. Default: canary (the
   * canary-labelled sites, 2 at a time), early (10 %, 16 at a time), rest (64 at a time).
   */
  readonly waves?: string;
  /** Sites labelled canary (the first wave). Default 2. */
  readonly canaries?: number;
  /**
   * Every Nth site (the 4th, 8th, …) is dual-stack: both providers get an `ipv6:` block with a
   * link-local next hop and a routed /48 (2001:db8:<2i>::/48 and <2i+1>), so fleet benchmarks
   * carry IPv6 rules, routes and NPTv6 rules too. 0: none. Default 4.
   */
  readonly dualStackEvery?: number;
}

export function siteName(index: number): string {
  return `site-${String(index).padStart(4, '0')}`;
}

/** The repository's files (path → text), as readFleetFiles returns them. */
export function generateFleetFiles(options: FleetTemplateOptions): Map<string, string> {
  const variant = options.variant ?? 0;
  if (!Number.isInteger(variant) || variant < 0 || variant > 255) throw new RangeError('variant: 0–255');
  if (options.count > 25_600) throw new RangeError('count: at most 25,600 sites fit the address plan');
  const files = new Map<string, string>();
  files.set(
    'fleet.yaml',
    `description: Generated fleet of ${options.count} branch offices (fleet simulator)
defaults:
  drift: report
rollout:
  confirmWithin: ${options.confirmWithin ?? '30s'}
  siteTimeout: 2m
  waves:
${options.waves ?? DEFAULT_WAVES}`,
  );
  files.set(
    'groups/base.yaml',
    `name: base
labels:
  managed-by: uplink
sysctls:
  net.ipv4.conf.all.rp_filter: 2
`,
  );
  files.set(
    'groups/dual-isp.yaml',
    `name: dual-isp
extends: [base]
providers:
  - name: isp1
    interface: wan1
    gateway: detect
    balance: ${1 + variant}
    track: true
    snat: auto
  - name: isp2
    interface: wan2
    gateway: detect
    balance: 1
    track: true
    snat: auto
`,
  );
  const canaries = options.canaries ?? 2;
  const dualStackEvery = options.dualStackEvery ?? 4;
  for (let i = 0; i < options.count; i++) {
    const name = siteName(i);
    const a = Math.floor(i / 256);
    const b = i % 256;
    const dual = dualStackEvery > 0 && i % dualStackEvery === dualStackEvery - 1;
    const ipv6 = (n: number) =>
      dual
        ? `\n    ipv6:\n      gateway: fe80::1\n      prefixes: [2001:db8:${(2 * i + n).toString(16)}::/48]`
        : '';
    const management = options.management?.(name, i) ?? { address: '127.0.0.1', port: 20_000 + i };
    files.set(
      `sites/${name}.yaml`,
      `name: ${name}
extends: [dual-isp]
labels: { role: branch, region: ${i % 2 === 0 ? 'eu' : 'us'}${i < canaries ? ', canary: "true"' : ''} }
management:
  address: ${management.address}
  port: ${management.port}
  hostKey: ${options.hostKey ?? PLACEHOLDER_HOST_KEY}
lan:
  - interface: lan0
    subnets: [10.${100 + a}.${b}.0/24${dual ? `, 2001:db8:${(2 * i).toString(16)}:1::/64` : ''}]
providers:
  - name: isp1
    address: 10.${a}.${b}.2/30
    gateway: 10.${a}.${b}.1${ipv6(0)}
  - name: isp2
    address: 10.${a}.${b}.6/30
    gateway: 10.${a}.${b}.5${ipv6(1)}
policies:
  - name: staff-web
    from: 10.${100 + a}.${b}.128/25
    proto: tcp
    dport: [80, 443]
    traffic: forwarded
    via: [isp2, isp1]
`,
    );
  }
  return files;
}

export async function writeFleetFiles(dir: string, files: ReadonlyMap<string, string>): Promise<void> {
  for (const [path, text] of files) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

/**
 * Simulated routers for a fleet's sites: facts from the spec (synthesizeFacts), the main
 * default route via the first provider, the controller arriving on the first provider's
 * address. `preapply` starts every site at that generation of its compiled state.
 */
export function simSitesFromFleet(
  files: ReadonlyMap<string, string>,
  preapply?: { readonly generation: (hash: string) => string },
): SimSiteSpec[] {
  const load = loadFleet(files);
  if (load.fleet === undefined) {
    throw new Error(
      `the fleet does not validate:\n${load.diagnostics
        .filter((d) => d.severity === 'error')
        .map(formatDiagnostic)
        .join('\n')}`,
    );
  }
  return load.fleet.sites.map((site) => {
    const facts = synthesizeFacts(site).facts;
    const first = site.providers[0];
    const address = first === undefined ? undefined : facts.interfaces[first.interface]?.addresses.at(-1);
    const gateway =
      first === undefined
        ? undefined
        : first.gateway.kind === 'static'
          ? first.gateway.address
          : facts.interfaces[first.interface]?.detectedGateway;
    const desired = preapply === undefined ? undefined : compileSite(site);
    return {
      name: site.name,
      facts,
      mainDefault:
        first !== undefined && gateway !== undefined ? { dev: first.interface, gateway } : undefined,
      managementAddress: address?.address,
      user: site.management.user,
      desired:
        desired === undefined
          ? undefined
          : { state: desired, generation: preapply!.generation(desired.hash) },
    };
  });
}
