/**
 * Shared by the drift and follow tests and bench/drift-latency.ts: a router namespace with
 * two uplinks — isp1 on a /29 with a static gateway, isp2 a PPP-like point-to-point link
 * (ppp1, 203.0.113.5 peer 203.0.113.1) — and the agent daemon (agent-drift-daemon.ts)
 * running inside it, reached over its unix socket.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { type Method, resultSchemas, type StatusResult } from '../agent/src/model/protocol.js';
import { ROOT } from './build-dist.js';
import { callOnSocket } from './lab/json-lines.js';
import type { Lab, LabProcess } from './lab/lab.js';
import { HEALTH_OFF } from './managed-router-desired.js';
import { withContentHash } from './support/example-desired-state.js';

export function driftDesired(drift: 'report' | 'heal'): DesiredState {
  const provider = (name: string, iface: string, table: number, mark: number) => ({
    name,
    interface: iface,
    table,
    mark,
    balance: name === 'isp1' ? 8 : 2,
    fallback: null,
    track: name === 'isp1',
    snat: { kind: 'masquerade' as const },
    health: HEALTH_OFF,
  });
  return withContentHash({
    version: 1,
    site: 'drift-lab',
    hash: '',
    settings: { protocol: 252, markMask: 0xff00, balanceTable: 200, adoptTables: [], drift },
    providers: [
      { ...provider('isp1', 'isp1', 101, 0x100), gateway: { kind: 'static', address: '198.51.100.1' } },
      { ...provider('isp2', 'ppp1', 102, 0x200), gateway: { kind: 'point-to-point' } },
    ],
    rules: [
      { id: 'main-specific', priority: 900, action: 'lookup', table: 254, suppressPrefixlength: 0 },
      ...(['isp1', 'isp2'] as const).flatMap((p, i) => [
        {
          id: `track/${p}`,
          priority: 1000 + i,
          action: 'lookup' as const,
          table: 101 + i,
          fwmark: 0x100 * (i + 1),
          fwmask: 0xff00,
          requires: p,
        },
        {
          id: `source/${p}`,
          priority: 2000 + i,
          action: 'lookup' as const,
          table: 101 + i,
          from: { kind: 'provider-host' as const, provider: p },
          requires: p,
        },
      ]),
      { id: 'balance', priority: 30000, action: 'lookup', table: 200 },
    ],
    routes: [
      ...(
        [
          ['isp1', 'isp1', 101],
          ['isp2', 'ppp1', 102],
        ] as const
      ).map(([p, dev, table]) => ({
        id: `${p}/default`,
        table,
        dst: { kind: 'literal' as const, cidr: '0.0.0.0/0' },
        type: 'unicast' as const,
        dev,
        gateway: { kind: 'provider-gateway' as const, provider: p },
        requires: p,
        requiresUp: true,
      })),
      {
        id: 'balance/default',
        table: 200,
        dst: { kind: 'literal', cidr: '0.0.0.0/0' },
        type: 'unicast',
        nexthops: [
          {
            provider: 'isp1',
            dev: 'isp1',
            gateway: { kind: 'provider-gateway', provider: 'isp1' },
            weight: 8,
          },
          {
            provider: 'isp2',
            dev: 'ppp1',
            gateway: { kind: 'provider-gateway', provider: 'isp2' },
            weight: 2,
          },
        ],
      },
    ],
    nft: [
      { kind: 'track-save', provider: 'isp1', iif: 'isp1', mark: 0x100 },
      { kind: 'track-restore', chain: 'prerouting', provider: 'isp1', mark: 0x100 },
      { kind: 'track-restore', chain: 'output', provider: 'isp1', mark: 0x100 },
      { kind: 'masquerade', provider: 'isp1', oif: 'isp1' },
      { kind: 'masquerade', provider: 'isp2', oif: 'ppp1' },
    ],
    sysctls: { 'net.ipv4.conf.isp1.rp_filter': '2', 'net.ipv4.conf.ppp1.rp_filter': '2' },
  });
}

/** Bundles agent-drift-daemon.ts (once per process) into a temporary .mjs. */
let bundled: Promise<string> | undefined;
export function bundleDriftDaemon(): Promise<string> {
  bundled ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uplink-drift-bundle-'));
    const outfile = join(dir, 'drift-daemon.mjs');
    await build({
      entryPoints: [join(ROOT, 'test/agent-drift-daemon.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      logLevel: 'warning',
      banner: {
        js: "import { createRequire as __uplinkCreateRequire } from 'node:module';\nconst require = __uplinkCreateRequire(import.meta.url);",
      },
    });
    return outfile;
  })();
  return bundled;
}

/** The router namespace with its two uplinks; returns its name. */
export async function buildDriftRouter(lab: Lab): Promise<string> {
  const router = await lab.netns('router');
  const isp1 = await lab.netns('isp1');
  const isp2 = await lab.netns('isp2');
  await lab.veth(
    { ns: router, name: 'isp1', address: '198.51.100.2/29' },
    { ns: isp1, name: 'cust', address: '198.51.100.1/29' },
  );
  await lab.veth(
    { ns: router, name: 'ppp1', address: '203.0.113.5/32', peer: '203.0.113.1' },
    { ns: isp2, name: 'cust', address: '203.0.113.1/32', peer: '203.0.113.5' },
  );
  return router;
}

export class DriftDaemon {
  private constructor(
    readonly lab: Lab,
    readonly router: string,
    readonly dir: string,
    readonly process: LabProcess,
  ) {}

  static async start(lab: Lab, router: string, options: { fullCheckMs?: number } = {}): Promise<DriftDaemon> {
    const entry = await bundleDriftDaemon();
    const dir = await mkdtemp(join(tmpdir(), 'uplink-drift-'));
    await writeFile(join(dir, 'health.json'), '{}');
    const proc = lab.start(router, [
      process.execPath,
      entry,
      join(dir, 'state'),
      join(dir, 'agent.sock'),
      join(dir, 'health.json'),
      String(options.fullCheckMs ?? 1_000),
    ]);
    const daemon = new DriftDaemon(lab, router, dir, proc);
    await daemon.waitFor(() => proc.stderr.includes('listening on'), 20_000, 'the daemon to listen');
    return daemon;
  }

  get log(): string {
    return this.process.stderr;
  }

  async call<M extends Method>(
    method: M,
    params: unknown,
  ): Promise<ReturnType<(typeof resultSchemas)[M]['parse']>> {
    const result = await callOnSocket(join(this.dir, 'agent.sock'), method, params);
    return resultSchemas[method].parse(result) as ReturnType<(typeof resultSchemas)[M]['parse']>;
  }

  status(): Promise<StatusResult> {
    return this.call('status', {});
  }

  /** apply + confirm; returns the number of changes. */
  async applyConfirmed(desired: DesiredState, generation: string): Promise<number> {
    const applied = await this.call('apply', { desired, generation, confirmWithinMs: 60_000 });
    if (applied.pending !== null) await this.call('confirm', { generation });
    return applied.changes.length;
  }

  async setHealth(health: Record<string, 'up' | 'down'>): Promise<void> {
    await writeFile(join(this.dir, 'health.json'), JSON.stringify(health));
  }

  /** Runs argv in the router namespace. */
  async exec(...argv: string[]): Promise<string> {
    return (await this.lab.exec(this.router, argv)).stdout;
  }

  /** Polls `condition` until it holds; no timing is asserted, the deadline is only a safety net. */
  async waitFor(
    condition: () => boolean | Promise<boolean>,
    timeoutMs = 20_000,
    what = 'condition',
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (this.process.child.exitCode !== null) throw new Error(`the daemon exited:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; daemon log:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits for the daemon's first drift check (after the first apply). */
  waitForFirstCheck(): Promise<void> {
    return this.waitFor(async () => (await this.status()).drift?.checkedAt != null, 20_000, 'a first check');
  }

  async close(): Promise<void> {
    const child = this.process.child;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await this.process.exited;
    await rm(this.dir, { recursive: true, force: true });
  }
}
