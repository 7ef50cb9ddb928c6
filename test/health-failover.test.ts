/**
 * Failover end to end: the built agent daemon (dist/uplink-agent.mjs) runs in the router
 * namespace with its probes, a site with two balanced ISPs and a `via: [isp2, isp1]` policy is
 * applied and confirmed over its socket, and uplinks are killed for real — carrier lost, or
 * upstream silently dropping (only the probes can see that). Checked with real traffic from
 * the LAN and the router, `ip route get`, conntrack, status and the operator hook. Every
 * wait is a poll with a deadline; timing is measured in bench/failover.ts, not here.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import {
  buildFailoverLab,
  compileFailoverSite,
  dropUpstream,
  type HealthDaemon,
  POLICY_DST,
  SERVER,
  startHealthDaemon,
  until,
} from './health-lab.js';
import { requireRoot, useLab } from './lab/index.js';
import type { RouterTopology } from './lab/router-topology.js';

requireRoot();
const lab = useLab('hfail');
let topo: RouterTopology;
let dir: string;
let agent: HealthDaemon | undefined;
let hookLog: string;

const status = () => agent!.status();
const health = (name: string) => agent!.health(name);

const inRouter = (argv: string[]) => lab.current.exec(topo.router, argv);

/** The devices of the balanced default route (table 200), sorted; [] when there is none. */
async function balanceDevs(): Promise<string[]> {
  const { stdout } = await inRouter(['ip', '-j', 'route', 'show', 'table', '200']);
  const routes = JSON.parse(stdout) as { dst: string; dev?: string; nexthops?: { dev: string }[] }[];
  const def = routes.find((r) => r.dst === 'default');
  if (def === undefined) return [];
  return (def.nexthops?.map((n) => n.dev) ?? [def.dev!]).sort();
}

/** Where the kernel sends a new LAN connection to `dst`. */
async function lanRoute(dst: string): Promise<string> {
  const { stdout } = await inRouter(['ip', '-j', 'route', 'get', dst, 'from', '172.20.1.10', 'iif', 'lan0']);
  return (JSON.parse(stdout) as { dev: string }[])[0]!.dev;
}

async function ctCount(mark: number): Promise<number> {
  const { stdout } = await inRouter(['conntrack', '-L', '-f', 'ipv4', '-m', `0x${mark.toString(16)}/0xff00`]);
  return stdout.split('\n').filter((l) => l.trim() !== '').length;
}

/** Connections that arrived on each uplink: pings from the internet to the router's addresses. */
async function pinConnections(): Promise<void> {
  for (const isp of topo.isps) {
    await lab.current.exec(topo.internet, ['ping', '-n', '-c1', '-W1', isp.routerAddress]);
  }
}

/** New traffic from the LAN (ping and a TCP connect) and from the router itself gets through. */
async function trafficFlows(dst = SERVER): Promise<void> {
  await lab.current.exec(topo.lan!.ns, ['ping', '-n', '-c1', '-W1', dst]);
  await lab.current.exec(topo.router, ['ping', '-n', '-c1', '-W1', dst]);
  await lab.current.exec(topo.lan!.ns, [
    'socat',
    '-T2',
    '-u',
    'OPEN:/dev/null',
    `TCP4:${dst}:8080,connect-timeout=2`,
  ]);
}

async function linkDown(isp: number, down: boolean): Promise<void> {
  await lab.current.exec(topo.isps[isp - 1]!.ns, ['ip', 'link', 'set', 'cust', down ? 'down' : 'up']);
}

const eq = (a: string[], b: string[]) => JSON.stringify(a) === JSON.stringify(b);

beforeAll(async () => {
  buildDist();
  topo = await buildFailoverLab(lab.current);
  dir = await mkdtemp(join(tmpdir(), 'uplink-hfail-'));
  hookLog = join(dir, 'transitions');
  const hook = join(dir, 'hook.sh');
  await writeFile(hook, `#!/bin/sh\necho "$SITE $PROVIDER $PREVIOUS $STATE" >> ${hookLog}\n`);
  await chmod(hook, 0o755);
  for (const dst of [SERVER, POLICY_DST]) {
    lab.current.start(topo.internet, ['socat', `TCP4-LISTEN:8080,bind=${dst},fork,reuseaddr`, 'SYSTEM:true']);
  }
  agent = await startHealthDaemon(lab.current, topo.router, dir, compileFailoverSite(), [
    '--on-transition',
    hook,
  ]);
}, 60_000);

afterAll(async () => {
  agent?.process.child.kill('SIGTERM');
  await agent?.process.exited;
  await rm(dir, { recursive: true, force: true });
});

describe('failover with the agent daemon', () => {
  it('both up: balanced over both, policy via isp2, probing reported', async () => {
    expect(await balanceDevs()).toEqual(['isp1', 'isp2']);
    expect(await lanRoute(POLICY_DST)).toBe('isp2');
    const s = await status();
    expect(s.health.map((h) => [h.name, h.state, h.probing])).toEqual([
      ['isp1', 'up', true],
      ['isp2', 'up', true],
    ]);
    expect(s.health[0]!.latencyMs).not.toBeNull();
    await trafficFlows();
  });

  for (const kind of ['carrier lost', 'upstream drops'] as const) {
    it(`isp1 dies (${kind}): traffic moves to isp2, isp1's conntrack entries go, isp2's stay; then it returns`, async () => {
      const hookLines = async () =>
        (await readFile(hookLog, 'utf8').catch(() => ''))
          .split('\n')
          .filter((l) => l === 'failover isp1 up down').length;
      const hooksBefore = await hookLines();
      await pinConnections();
      expect(await ctCount(0x100)).toBeGreaterThan(0);
      const isp2Before = await ctCount(0x200);
      expect(isp2Before).toBeGreaterThan(0);
      if (kind === 'carrier lost') await linkDown(1, true);
      else await dropUpstream(lab.current, topo.isps[0]!.ns, true);

      await until(async () => (await health('isp1')).state === 'down', 'isp1 down');
      await until(async () => eq(await balanceDevs(), ['isp2']), 'balanced route on isp2 only');
      expect(await lanRoute(SERVER)).toBe('isp2');
      await trafficFlows();
      await until(async () => (await ctCount(0x100)) === 0, "isp1's conntrack entries flushed", 10_000);
      expect(await ctCount(0x200)).toBeGreaterThanOrEqual(isp2Before);
      // The drift check that follows the health change has run, and found nothing.
      const s = await until(async () => {
        const st = await status();
        const downAt = st.health.find((h) => h.name === 'isp1')!.since!;
        return st.drift !== null && st.drift.checkedAt !== null && st.drift.checkedAt >= downAt
          ? st
          : undefined;
      }, 'a drift check after the failover');
      const isp1 = s.health.find((h) => h.name === 'isp1')!;
      expect(isp1.transitions.at(-1)).toMatchObject({ from: 'up', to: 'down' });
      expect(isp1.transitions.at(-1)!.reason).toMatch(/failed rounds in a row/);
      expect(isp1.loss).toBeGreaterThan(0);
      expect(s.drift!.items).toEqual([]);
      await until(async () => (await hookLines()) > hooksBefore, 'the hook to report isp1 down');

      if (kind === 'carrier lost') await linkDown(1, false);
      else await dropUpstream(lab.current, topo.isps[0]!.ns, false);
      await until(async () => (await health('isp1')).state === 'up', 'isp1 up again');
      await until(async () => eq(await balanceDevs(), ['isp1', 'isp2']), 'balanced over both again');
      await trafficFlows();
      expect((await status()).drift?.items ?? []).toEqual([]);
    });
  }

  it('policy via [isp2, isp1] moves to isp1 while isp2 is down, and back', async () => {
    expect(await lanRoute(POLICY_DST)).toBe('isp2');
    await dropUpstream(lab.current, topo.isps[1]!.ns, true);
    try {
      await until(async () => (await lanRoute(POLICY_DST)) === 'isp1', 'policy traffic on isp1');
      await trafficFlows(POLICY_DST);
    } finally {
      await dropUpstream(lab.current, topo.isps[1]!.ns, false);
    }
    await until(async () => (await lanRoute(POLICY_DST)) === 'isp2', 'policy traffic back on isp2');
    await trafficFlows(POLICY_DST);
  });

  it('a link flapping faster than the thresholds does not flap the routes', async () => {
    const before = (await health('isp1')).transitions.length;
    const samples: string[][] = [];
    // 500 ms dead, 700 ms alive: at most two rounds (500 ms apart) are lost in a row, fewer
    // than failAfter (3).
    for (let i = 0; i < 6; i++) {
      await dropUpstream(lab.current, topo.isps[0]!.ns, true);
      const until = Date.now() + 500;
      while (Date.now() < until) {
        samples.push(await balanceDevs());
        await new Promise((r) => setTimeout(r, 50));
      }
      await dropUpstream(lab.current, topo.isps[0]!.ns, false);
      await new Promise((r) => setTimeout(r, 700));
      samples.push(await balanceDevs());
    }
    expect(samples.filter((s) => !eq(s, ['isp1', 'isp2']))).toEqual([]);
    const isp1 = await health('isp1');
    expect(isp1.state).toBe('up');
    expect(isp1.transitions.length).toBe(before);
    expect(isp1.loss).toBeGreaterThan(0);
  });

  it('all down: last resort keeps both routes; one back: only it; both back', async () => {
    await dropUpstream(lab.current, topo.isps[0]!.ns, true);
    await dropUpstream(lab.current, topo.isps[1]!.ns, true);
    try {
      await until(
        async () => (await health('isp1')).state === 'down' && (await health('isp2')).state === 'down',
        'both down',
      );
      // D32: with every provider down, none is removed.
      await until(
        async () => eq(await balanceDevs(), ['isp1', 'isp2']),
        'last resort: both in the balanced route',
      );
      const { stdout } = await inRouter(['ip', '-j', 'route', 'show', 'table', '101']);
      expect(stdout).toContain('"dst":"default"');

      await dropUpstream(lab.current, topo.isps[1]!.ns, false);
      await until(async () => (await health('isp2')).state === 'up', 'isp2 up');
      await until(async () => eq(await balanceDevs(), ['isp2']), 'isp2 alone');
      await trafficFlows();
    } finally {
      await dropUpstream(lab.current, topo.isps[0]!.ns, false).catch(() => {});
      await dropUpstream(lab.current, topo.isps[1]!.ns, false).catch(() => {});
    }
    await until(async () => (await health('isp1')).state === 'up', 'isp1 up');
    await until(async () => eq(await balanceDevs(), ['isp1', 'isp2']), 'both balanced');
    await trafficFlows();
  });
});
