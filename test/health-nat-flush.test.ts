/**
 * LAN connections NATed through a dead uplink are flushed (D84), proven in namespaces with
 * the built agent daemon: a LAN host holds established TCP connections that left by the
 * balanced route, one out of isp1 (source-NATed to isp1's address), one out of isp2. Those
 * carry no ct mark, so the mark flush (D34) never touched them. isp1's upstream then drops
 * everything (only the probes can see it): the entry NATed to isp1's address is gone, the
 * one through isp2 is the same entry as before, and a new connection from the LAN host
 * reaches the server from isp2's address. Every wait is a poll with a deadline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from './build-dist.js';
import {
  compileFailoverSite,
  dropUpstream,
  type HealthDaemon,
  PROBE_TARGET,
  startHealthDaemon,
  until,
} from './health-lab.js';
import { buildRouterTopology, requireRoot, useLab } from './lab/index.js';
import type { RouterTopology } from './lab/router-topology.js';

requireRoot();
const lab = useLab('hnat');
/** Servers on the internet's lo; the balanced route spreads LAN flows to them over both ISPs. */
// 32 destinations: the chance the multipath hash sends every one the same way is 2^-31.
const HOSTS = Array.from({ length: 32 }, (_, i) => `203.0.113.${20 + i}`);
const WHOAMI = 8081;
const HOLD = 8082;
let topo: RouterTopology;
let dir: string;
let agent: HealthDaemon | undefined;

const inRouter = (argv: string[]) => lab.current.exec(topo.router, argv);
const inLan = (argv: string[]) => lab.current.exec(topo.lan!.ns, argv);

const health = (name: string) => agent!.health(name);

/** The uplink the kernel picks for a new LAN connection to `dst`. */
async function lanRoute(dst: string): Promise<string> {
  const { stdout } = await inRouter([
    'ip',
    '-j',
    'route',
    'get',
    dst,
    'from',
    topo.lan!.hostAddress,
    'iif',
    'lan0',
  ]);
  return (JSON.parse(stdout) as { dev: string }[])[0]!.dev;
}

/** The source address the server sees for a new connection from the LAN host. */
async function seenFrom(dst: string): Promise<string> {
  const { stdout } = await inLan(['socat', '-T2', '-u', `TCP4:${dst}:${WHOAMI},connect-timeout=2`, 'STDOUT']);
  return stdout.trim();
}

interface Entry {
  readonly origDst: string;
  readonly sport: string;
  readonly replyDst: string;
  readonly mark: string;
}

/** The router's conntrack entries of the LAN host's held connections. */
async function held(): Promise<Entry[]> {
  const { stdout } = await inRouter(['conntrack', '-L', '-f', 'ipv4', '-p', 'tcp', '--dport', String(HOLD)]);
  return stdout
    .split('\n')
    .filter((line) => line.includes('ESTABLISHED'))
    .map((line) => {
      const all = (key: string) => [...line.matchAll(new RegExp(`\\b${key}=(\\S+)`, 'g'))].map((m) => m[1]!);
      return {
        origDst: all('dst')[0]!,
        sport: all('sport')[0]!,
        replyDst: all('dst')[1]!,
        mark: all('mark')[0] ?? '0',
      };
    });
}

beforeAll(async () => {
  buildDist();
  topo = await buildRouterTopology(lab.current, {
    isps: 2,
    internetHosts: [PROBE_TARGET, ...HOSTS],
    mainDefaultVia: 1,
  });
  dir = await mkdtemp(join(tmpdir(), 'uplink-hnat-'));
  const l = lab.current;
  // Answers with the client's address as the server sees it (after the router's SNAT).
  l.start(topo.internet, ['socat', `TCP4-LISTEN:${WHOAMI},fork,reuseaddr`, 'SYSTEM:echo $SOCAT_PEERADDR']);
  // Holds a connection open, silently, until the client goes away.
  l.start(topo.internet, ['socat', `TCP4-LISTEN:${HOLD},fork,reuseaddr`, 'EXEC:cat']);
  agent = await startHealthDaemon(l, topo.router, dir, compileFailoverSite());
}, 60_000);

afterAll(async () => {
  agent?.process.child.kill('SIGTERM');
  await agent?.process.exited;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('LAN connections NATed through a dead uplink', () => {
  it('are flushed when it goes down; those through the live uplink stay; new ones leave by it', async () => {
    const isp1 = topo.isps[0]!;
    const isp2 = topo.isps[1]!;
    // One server the balanced route reaches by isp1 and one by isp2 (the multipath hash is
    // the kernel's; ask it).
    const routes = await Promise.all(HOSTS.map(async (h) => [h, await lanRoute(h)] as const));
    const viaIsp1 = routes.find(([, dev]) => dev === 'isp1')?.[0];
    const viaIsp2 = routes.find(([, dev]) => dev === 'isp2')?.[0];
    if (viaIsp1 === undefined || viaIsp2 === undefined)
      throw new Error(
        `the balanced route sends all of ${HOSTS.join(', ')} one way: ${JSON.stringify(routes)}`,
      );
    expect(await seenFrom(viaIsp1)).toBe(isp1.routerAddress);
    expect(await seenFrom(viaIsp2)).toBe(isp2.routerAddress);

    // The LAN host's long-lived connections (PIPE: nothing is sent, nothing ends them).
    for (const dst of [viaIsp1, viaIsp2])
      lab.current.start(topo.lan!.ns, ['socat', `TCP4:${dst}:${HOLD}`, 'PIPE']);
    const before = await until(async () => {
      const entries = await held();
      return entries.length === 2 ? entries : undefined;
    }, 'two held connections');
    const through1 = before.find((e) => e.origDst === viaIsp1)!;
    const through2 = before.find((e) => e.origDst === viaIsp2)!;
    expect(through1.replyDst).toBe(isp1.routerAddress);
    expect(through2.replyDst).toBe(isp2.routerAddress);
    // Unmarked: the flush by isp1's mark (D34) cannot be what removes it.
    expect([through1.mark, through2.mark]).toEqual(['0', '0']);

    await dropUpstream(lab.current, isp1.ns, true);
    try {
      await until(async () => (await health('isp1')).state === 'down', 'isp1 down');
      await until(async () => (await lanRoute(viaIsp1)) === 'isp2', 'the balanced route without isp1');
      const after = await until(
        async () => {
          const entries = await held();
          return entries.some((e) => e.replyDst === isp1.routerAddress) ? undefined : entries;
        },
        "the entry NATed to isp1's address to go",
        10_000,
      );
      expect(after).toContainEqual(through2);
      expect(agent!.process.stderr).toMatch(
        new RegExp(
          `isp1 down: flushed [1-9]\\d* conntrack entries NATed to ${isp1.routerAddress.replaceAll('.', '\\.')}`,
        ),
      );
      expect(agent!.process.stderr).not.toContain(`NATed to ${isp2.routerAddress}`);
      // A new connection to the same server now leaves by isp2, with its address.
      expect(await seenFrom(viaIsp1)).toBe(isp2.routerAddress);
    } finally {
      await dropUpstream(lab.current, isp1.ns, false);
    }
    await until(async () => (await health('isp1')).state === 'up', 'isp1 up again');
    await until(async () => (await lanRoute(viaIsp1)) === 'isp1', 'isp1 back in the balanced route');
    expect(await seenFrom(viaIsp1)).toBe(isp1.routerAddress);
  });
});
