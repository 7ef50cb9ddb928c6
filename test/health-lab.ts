/**
 * The failover lab: two ISPs that both reach one "internet" namespace, a LAN host, and a
 * site spec compiled the way the controller compiles it. Probe target 203.0.113.1 carries no
 * test traffic (its /32 stays in each provider table while the provider is down, D31);
 * 203.0.113.10 is where traffic goes, 203.0.113.80 the destination of a `via: [isp2, isp1]`
 * policy. Main's default route points at isp1, so a probe that used main would leave there.
 */
import { join } from 'node:path';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { type ProviderHealth, resultSchemas, type StatusResult } from '../agent/src/model/protocol.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { ROOT } from './build-dist.js';
import { callOnSocket } from './lab/json-lines.js';
import type { Lab, LabProcess } from './lab/lab.js';
import { buildRouterTopology, type RouterTopology } from './lab/router-topology.js';

export const PROBE_TARGET = '203.0.113.1';
export const SERVER = '203.0.113.10';
export const POLICY_DST = '203.0.113.80';

export interface HealthSpecOptions {
  readonly interval?: string;
  readonly timeout?: string;
  readonly failAfter?: number;
  readonly recoverAfter?: number;
  /** Extra lines under `health:` of both providers (already indented by 6). */
  readonly extra?: string;
}

const FLEET = `defaults:
  markMask: 0xff00
rollout:
  waves:
    - name: all
`;

export function siteYaml(options: HealthSpecOptions = {}): string {
  const health = [
    `      targets: [${PROBE_TARGET}]`,
    ...(options.interval === undefined ? [] : [`      interval: ${options.interval}`]),
    ...(options.timeout === undefined ? [] : [`      timeout: ${options.timeout}`]),
    ...(options.failAfter === undefined ? [] : [`      failAfter: ${options.failAfter}`]),
    ...(options.recoverAfter === undefined ? [] : [`      recoverAfter: ${options.recoverAfter}`]),
    ...(options.extra === undefined ? [] : [options.extra]),
  ].join('\n');
  return `name: failover
management:
  address: 192.0.2.200
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4
lan:
  - interface: lan0
    subnets: [172.20.1.0/24]
providers:
  - name: isp1
    interface: isp1
    address: 198.51.100.2/29
    gateway: 198.51.100.1
    table: 101
    mark: 0x100
    balance: 1
    health:
${health}
  - name: isp2
    interface: isp2
    address: 198.51.100.10/29
    gateway: 198.51.100.9
    table: 102
    mark: 0x200
    balance: 1
    health:
${health}
policies:
  - name: partner
    to: ${POLICY_DST}/32
    via: [isp2, isp1]
`;
}

export function compileFailoverSite(options: HealthSpecOptions = {}): DesiredState {
  const load = loadFleet(
    new Map([
      ['fleet.yaml', FLEET],
      ['sites/failover.yaml', siteYaml(options)],
    ]),
  );
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`site does not validate: ${JSON.stringify(errors, null, 2)}`);
  return compileSite(load.validSites[0]!);
}

export function buildFailoverLab(lab: Lab): Promise<RouterTopology> {
  return buildRouterTopology(lab, {
    isps: 2,
    internetHosts: [PROBE_TARGET, SERVER, POLICY_DST],
    mainDefaultVia: 1,
  });
}

/** Counts echo requests to `dst` forwarded by an ISP (proves which uplink a probe took). */
export async function countEchoes(lab: Lab, ns: string, dst: string): Promise<() => Promise<number>> {
  await lab.exec(ns, ['nft', '-f', '-'], {
    stdin: `table ip probecount {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr ${dst} icmp type echo-request counter
  }
}
`,
  });
  return async () => {
    const { stdout } = await lab.exec(ns, ['nft', '-j', 'list', 'table', 'ip', 'probecount']);
    const match = /"packets":\s*(\d+)/.exec(stdout);
    return match === null ? 0 : Number(match[1]);
  };
}

/** Upstream failure the link cannot see: the ISP drops what it would forward to the internet. */
export async function dropUpstream(lab: Lab, ns: string, drop: boolean): Promise<void> {
  if (drop) {
    await lab.exec(ns, ['nft', '-f', '-'], {
      stdin:
        'table ip blackhole {\n  chain forward {\n    type filter hook forward priority -10; policy drop;\n  }\n}\n',
    });
  } else {
    await lab.exec(ns, ['nft', 'delete', 'table', 'ip', 'blackhole']);
  }
}

/** Polls until `check` holds; no timing assertions, just a deadline. */
export async function until<T>(
  check: () => Promise<T | undefined | false>,
  what: string,
  deadlineMs = 30_000,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface HealthDaemon {
  readonly process: LabProcess;
  /** One request on the daemon's socket. */
  call(method: string, params: unknown): Promise<Record<string, unknown>>;
  status(): Promise<StatusResult>;
  /** The named provider's health in `status`. */
  health(name: string): Promise<ProviderHealth>;
}

/**
 * The built agent daemon (dist/uplink-agent.mjs) in `router` with its state and socket in
 * `dir`, `desired` applied and confirmed over the socket, and every provider up.
 */
export async function startHealthDaemon(
  lab: Lab,
  router: string,
  dir: string,
  desired: DesiredState,
  extraArgs: readonly string[] = [],
): Promise<HealthDaemon> {
  const socket = join(dir, 'agent.sock');
  const process_ = lab.start(router, [
    process.execPath,
    join(ROOT, 'dist/uplink-agent.mjs'),
    'daemon',
    '--state-dir',
    dir,
    '--socket',
    socket,
    ...extraArgs,
  ]);
  const call = async (method: string, params: unknown) =>
    (await callOnSocket(socket, method, params)) as Record<string, unknown>;
  const status = async () => resultSchemas.status.parse(await call('status', {}));
  const health = async (name: string) => {
    const found = (await status()).health.find((h) => h.name === name);
    if (found === undefined) throw new Error(`no health for ${name}`);
    return found;
  };
  await until(async () => process_.stderr.includes('listening on'), 'the daemon to listen', 20_000);
  await call('apply', { desired, generation: 'g1', confirmWithinMs: 60_000 });
  await call('confirm', { generation: 'g1' });
  // Each provider by its IPv4 verdict, an IPv6-only one (D165) by its IPv6 half's.
  const verdicts = desired.providers.map((p) => (p.gateway.kind === 'none' ? `${p.name}:ipv6` : p.name));
  await until(
    async () => {
      for (const name of verdicts) if ((await health(name)).state !== 'up') return false;
      return true;
    },
    `${verdicts.join(' and ')} up`,
  );
  return { process: process_, call, status, health };
}
