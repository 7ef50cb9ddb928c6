/**
 * Delegated (DHCPv6-PD) prefixes followed as facts (D155), with real daemons: ISC dhcpd -6 at
 * ISP 1 delegates a /56, the ISC client (dhclient -6 -P) on the router runs Uplink's hook
 * (deploy/agent/dhclient-exit-hook.sh), and the running agent alone installs the prefix's
 * ip -6 source rule and the NPTv6 mapping of it onto ISP 2; a LAN host numbered from it
 * reaches the internet through ISP 1. Then the ISP delegates another prefix and the agent
 * follows: the old rule and mapping gone, the new ones in, no drift.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import { compileSite } from '../controller/src/compile/compile-site.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import { type AgentDaemon, startAgentDaemon } from './branch-uplinks-lab.js';
import { buildDist, ROOT } from './build-dist.js';
import { buildDualStackLab, forwarded6, SERVER6, settleDad } from './dual-stack-lab.js';
import { startDhcp6PdClient, startDhcp6PdServer } from './lab/dhcp.js';
import { requireRoot, useLab } from './lab/index.js';
import type { RouterTopology } from './lab/router-topology.js';

const POOL_A = '2001:db8:1:100::/56';
const POOL_B = '2001:db8:1:200::/56';
/** A LAN host numbered from each delegated prefix (its first /64), and the router's address there. */
const HOST_A = '2001:db8:1:100::10';
const HOST_B = '2001:db8:1:200::10';

const SITE = `name: pd
management:
  address: 192.0.2.200
  hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIML+nVa7QnPvbuqqJyg0QS0zd7Kx0gwdg6IYe6JF5Ts4
settings:
  drift: report
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
    fallback: true
    ipv6:
      address: 2001:db8:ff1::2/64
      gateway: fe80::1
      prefixes: [delegated/56]
  - name: isp2
    interface: isp2
    address: 198.51.100.10/29
    gateway: 198.51.100.9
    table: 102
    mark: 0x200
    balance: 1
    ipv6:
      address: learned
      gateway: detect
      prefixes: [2001:db8:2::/56]
`;

function compile(): DesiredState {
  const load = loadFleet(
    new Map([
      ['fleet.yaml', 'rollout:\n  waves:\n    - name: all\n'],
      ['sites/pd.yaml', SITE],
    ]),
  );
  const errors = load.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`site does not validate: ${JSON.stringify(errors, null, 2)}`);
  return compileSite(load.validSites[0]!);
}

describe.skipIf(!requireRoot())('a delegated prefix, followed by the agent', () => {
  const lab = useLab('pd17');
  let topo: RouterTopology;
  let daemon: AgentDaemon;
  let dir: string;
  const agent = [process.execPath, join(ROOT, 'dist/uplink-agent.mjs')];
  const rules6 = () => daemon.exec('ip', '-6', 'rule', 'show');
  const npt = () => daemon.exec('nft', 'list', 'table', 'inet', 'uplink');
  const isp1 = () => topo.isps[0]!;
  /** Stands in for the site's own LAN numbering (radvd, a PD-aware LAN config): not Uplink's. */
  const numberLan = async (host: string) => {
    const router = host.replace(/::10$/, '::1');
    await lab.current.run([
      'ip',
      '-n',
      topo.router,
      '-6',
      'addr',
      'add',
      `${router}/64`,
      'dev',
      'lan0',
      'nodad',
    ]);
    await lab.current.run([
      'ip',
      '-n',
      topo.lan!.ns,
      '-6',
      'addr',
      'add',
      `${host}/64`,
      'dev',
      'eth0',
      'nodad',
    ]);
    await settleDad(lab.current, [topo.router, topo.lan!.ns]);
  };
  const ping = (from: string) =>
    lab.current.exec(topo.lan!.ns, ['ping', '-6', '-n', '-c', '1', '-W', '2', '-I', from, SERVER6], {
      allowFailure: true,
    });

  beforeAll(async () => {
    buildDist();
    dir = await mkdtemp(join(tmpdir(), 'uplink-pd-'));
    topo = await buildDualStackLab(lab.current);
    daemon = await startAgentDaemon(lab.current, topo.router);
    await daemon.applyConfirmed(compile(), 'g1');
    await daemon.waitFor('a first drift check', async () => (await daemon.status()).drift?.checkedAt != null);
  }, 120_000);
  afterAll(async () => {
    await daemon?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('learns the delegated prefix from the DHCPv6 client, routes it by ISP 1 and maps it onto ISP 2', async () => {
    expect(await rules6()).not.toMatch(/from 2001:db8:1:\d00::\/56/);
    const server = await startDhcp6PdServer(lab.current, isp1().ns, 'cust', join(dir, 'dhcpd-a'), {
      subnet: '2001:db8:ff1::/64',
      delegate: POOL_A,
    });
    const client = await startDhcp6PdClient(
      lab.current,
      topo.router,
      isp1().routerIf,
      join(dir, 'client-a'),
      {
        agent,
        stateDir: daemon.stateDir,
      },
    );
    await daemon.waitFor(
      'the delegation',
      async () => (await client.events()).some((e) => e.reason === 'BOUND6' && e.prefix === POOL_A),
      30_000,
    );
    await daemon.waitFor('the source rule of the delegated prefix', async () =>
      (await rules6()).includes(`2000:\tfrom ${POOL_A} lookup 101 proto 252`),
    );
    expect(await npt()).toContain(`oifname "isp2" ip6 saddr ${POOL_A} snat ip6 prefix to 2001:db8:2::/56`);
    // The router's facts carry it, as the agent reads them for status and explain.
    const facts = JSON.parse(
      await daemon.exec(...agent, 'show', '--facts', '--state-dir', daemon.stateDir),
    ) as { facts: { interfaces: Record<string, { delegated6?: { prefix: string }[] }> } };
    expect(facts.facts.interfaces.isp1!.delegated6?.map((p) => p.prefix)).toEqual([POOL_A]);

    // A LAN host numbered from it reaches the internet by ISP 1 (the balanced route is ISP 2's).
    await numberLan(HOST_A);
    const before1 = await forwarded6(lab.current, topo, 1);
    const before2 = await forwarded6(lab.current, topo, 2);
    const reply = await ping(HOST_A);
    expect(reply.exitCode, reply.stdout + reply.stderr).toBe(0);
    expect(await forwarded6(lab.current, topo, 1)).toBeGreaterThan(before1);
    expect(await forwarded6(lab.current, topo, 2)).toBe(before2);

    await client.stop();
    await server.stop();
  }, 90_000);

  it('another prefix delegated: the agent follows (old rule and mapping gone, new ones in), not drift', async () => {
    const checkedAt = (await daemon.status()).drift!.checkedAt!;
    const server = await startDhcp6PdServer(lab.current, isp1().ns, 'cust', join(dir, 'dhcpd-b'), {
      subnet: '2001:db8:ff1::/64',
      delegate: POOL_B,
    });
    const client = await startDhcp6PdClient(
      lab.current,
      topo.router,
      isp1().routerIf,
      join(dir, 'client-b'),
      {
        agent,
        stateDir: daemon.stateDir,
      },
    );
    await daemon.waitFor(
      'the new delegation',
      async () => (await client.events()).some((e) => e.reason === 'BOUND6' && e.prefix === POOL_B),
      30_000,
    );
    // The follow adds the new rule and deletes the old one, one step after the other: wait for both.
    await daemon.waitFor('the source rule to follow the new prefix', async () => {
      const now = await rules6();
      return now.includes(`2000:\tfrom ${POOL_B} lookup 101 proto 252`) && !now.includes(POOL_A);
    });
    const table = await npt();
    expect(table).toContain(`ip6 saddr ${POOL_B} snat ip6 prefix to 2001:db8:2::/56`);
    expect(table).not.toContain(POOL_A);

    await numberLan(HOST_B);
    const before1 = await forwarded6(lab.current, topo, 1);
    const reply = await ping(HOST_B);
    expect(reply.exitCode, reply.stdout + reply.stderr).toBe(0);
    expect(await forwarded6(lab.current, topo, 1)).toBeGreaterThan(before1);

    await daemon.waitFor(
      'a later drift check',
      async () => ((await daemon.status()).drift?.checkedAt ?? 0) > checkedAt,
    );
    expect((await daemon.status()).drift).toMatchObject({ items: [], shadowed: [] });
    expect(daemon.process.stderr).toMatch(/follow: re-applied the confirmed state of pd/);
    await client.stop();
    await server.stop();
  }, 90_000);

  it('a prefix of another length than the spec expects is refused (logged, in status); --clear removes what was routed', async () => {
    const wrong = '2001:db8:1:300::/60';
    await daemon.exec(
      ...agent,
      'delegated',
      '--state-dir',
      daemon.stateDir,
      '--interface',
      'isp1',
      '--prefix',
      wrong,
    );
    const refused = async () =>
      (await daemon.status()).facts.providers.find((p) => p.name === 'isp1:ipv6')?.refused ?? [];
    await daemon.waitFor('the refusal in status', async () => (await refused()).length > 0);
    expect(await refused()).toEqual([
      `delegated prefix ${wrong} is a /60; the spec expects a /56 (ipv6.prefixes: [delegated/56]): write delegated/60, or ask the ISP for a /56`,
    ]);
    // Logged by the daemon's next check, which may come after status answered.
    await daemon.waitFor('the refusal in the log', async () =>
      daemon.process.stderr.includes(`delegated: pd: provider isp1: the delegated prefix ${wrong} is a /60`),
    );
    // The record replaced the old prefix: its rule went, and nothing is routed from the refused one.
    await daemon.waitFor('the old rule to go', async () => !(await rules6()).includes(POOL_B));
    expect(await rules6()).not.toContain('2001:db8:1:300::');
    expect(await npt()).not.toMatch(/2001:db8:1:[23]00::/);

    await daemon.exec(
      ...agent,
      'delegated',
      '--state-dir',
      daemon.stateDir,
      '--interface',
      'isp1',
      '--clear',
    );
    await daemon.waitFor('the refusal to clear', async () => (await refused()).length === 0);
    expect((await daemon.status()).drift).toMatchObject({ items: [], shadowed: [] });
  }, 60_000);
});
