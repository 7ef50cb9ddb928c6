/**
 * The uplinks branch offices really have, followed by the running daemon alone (no
 * controller): a cable line on real DHCP (dnsmasq at the ISP, the ISC client on the router)
 * whose ISP renumbers it, a PPPoE-style link that re-dials to another address, and an LTE
 * modem plugged in and pulled out. None of it is drift; connections on the other uplinks
 * carry on. How fast the daemon follows is measured in bench/follow-latency.ts, not here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState } from '../agent/src/model/desired-state.js';
import {
  type AgentDaemon,
  type BranchLab,
  buildBranchLab,
  compileBranchSite,
  INTERNET_HOST,
  LAN_HOST,
  plugLte,
  renumberCable,
  startAgentDaemon,
  unplugLte,
} from './branch-uplinks-lab.js';
import { buildDist } from './build-dist.js';
import { requireRoot, useLab } from './lab/index.js';
import { routeGet } from './scenarios/site-lab.js';

describe.skipIf(!requireRoot())('the daemon follows DHCP, re-dials and hotplug', () => {
  const lab = useLab('follow15');
  let branch: BranchLab;
  let daemon: AgentDaemon;
  let desired: DesiredState;
  const tableOf = (name: string) => String(desired.providers.find((p) => p.name === name)!.table);
  const rules = () => daemon.exec('ip', 'rule', 'show');
  /** A provider table's routes; '' while the table does not exist (the kernel makes it on first use). */
  const table = async (name: string) =>
    (
      await lab.current.exec(branch.router, ['ip', 'route', 'show', 'table', tableOf(name)], {
        allowFailure: true,
      })
    ).stdout;
  const provider = async (name: string) =>
    (await daemon.status()).facts.providers.find((p) => p.name === name)!;

  beforeAll(async () => {
    buildDist();
    branch = await buildBranchLab(lab.current);
    desired = compileBranchSite();
    daemon = await startAgentDaemon(lab.current, branch.router);
    await daemon.applyConfirmed(desired, 'g1');
    await daemon.waitFor('a first drift check', async () => (await daemon.status()).drift?.checkedAt != null);
  }, 120_000);
  afterAll(async () => {
    await daemon?.close();
  });

  it('the DHCP lease decides the cable table; the client default route in main decides nothing', async () => {
    await daemon.waitFor('a lease', async () =>
      (await branch.dhcpClient.events()).some((e) => e.reason === 'BOUND'),
    );
    const lease = (await branch.dhcpClient.events()).find((e) => e.reason === 'BOUND')!;
    expect(lease.router).toBe('198.51.100.129');
    await daemon.waitFor('the cable table to follow the lease', async () =>
      (await table('cable')).includes('default via 198.51.100.129 dev enp2s0'),
    );
    expect(await rules()).toContain(`from ${lease.address} lookup ${tableOf('cable')}`);
    expect((await provider('cable')).available).toBe(true);
    // The client's own default route is in main …
    expect(await daemon.exec('ip', 'route', 'show', 'default')).toMatch(
      /default via 198\.51\.100\.129 dev enp2s0 proto dhcp metric 100/,
    );
    // … yet LAN traffic takes the balanced route (fibre or PPPoE), not the fallback cable line,
    const lanOut = await routeGet(lab.current, branch.router, INTERNET_HOST, { from: LAN_HOST, iif: 'lan0' });
    expect(['enp1s0.100', 'ppp0']).toContain(lanOut.dev);
    // and replies from the leased address leave by the cable line.
    expect((await routeGet(lab.current, branch.router, INTERNET_HOST, { from: lease.address! })).dev).toBe(
      'enp2s0',
    );
  });

  it('a renumbered lease (new address, new gateway) is followed without the controller, and is not drift', async () => {
    const before = (await branch.dhcpClient.events()).find((e) => e.reason === 'BOUND')!;
    const checkedAt = (await daemon.status()).drift!.checkedAt!;
    await renumberCable(lab.current, branch, 1);
    await daemon.waitFor(
      'a new lease',
      async () =>
        (await branch.dhcpClient.events()).some((e) => e.address !== null && e.address !== before.address),
      60_000,
    );
    const lease = (await branch.dhcpClient.events()).find(
      (e) => e.address !== null && e.address !== before.address,
    )!;
    expect(lease.router).toBe('198.51.100.1');
    await daemon.waitFor('the cable table to follow the new gateway', async () =>
      (await table('cable')).includes('default via 198.51.100.1 dev enp2s0'),
    );
    await daemon.waitFor('the source rule to follow the new address', async () =>
      (await rules()).includes(`from ${lease.address} lookup ${tableOf('cable')}`),
    );
    expect(await rules()).not.toContain(`from ${before.address} `);
    await daemon.waitFor(
      'a later drift check',
      async () => ((await daemon.status()).drift?.checkedAt ?? 0) > checkedAt,
    );
    expect((await daemon.status()).drift).toMatchObject({ items: [], shadowed: [], heals: 0 });
    expect(daemon.process.stderr).toMatch(/follow: re-applied the confirmed state of branch/);
  });

  it('a PPP re-dial to another address moves its rule and route; a TCP connection on the fibre line carries on', async () => {
    // A long-lived connection from the LAN to the internet, pinned to the fibre line by a policy.
    const server = lab.current.start(branch.topo.internet, [
      'socat',
      '-u',
      'TCP-LISTEN:9000,bind=203.0.113.10,reuseaddr',
      'OPEN:/dev/null',
    ]);
    await daemon.waitFor('the server to listen', async () =>
      (await lab.current.exec(branch.topo.internet, ['ss', '-ltn'])).stdout.includes('203.0.113.10:9000'),
    );
    const client = lab.current.start(branch.topo.lan!.ns, [
      'socat',
      '-u',
      'SYSTEM:while true; do echo ping; sleep 0.2; done',
      'TCP:203.0.113.10:9000,sourceport=40000,reuseaddr',
    ]);
    const flow = async () =>
      (
        await lab.current.exec(branch.router, ['conntrack', '-L', '-p', 'tcp', '--sport', '40000'], {
          allowFailure: true,
        })
      ).stdout;
    await daemon.waitFor('the connection to be tracked', async () => (await flow()).includes('ESTABLISHED'));
    // Masqueraded to the fibre address: it left by the fibre line.
    expect(await flow()).toMatch(/dst=198\.51\.100\.250 sport=9000/);
    /** The entry without its countdown: the same connection, whatever its timer says. */
    const entry = async () => (await flow()).split('\n')[0]!.replace(/^tcp\s+6\s+\d+\s+/, '');
    const tracked = await entry();

    const checkedAt = (await daemon.status()).drift!.checkedAt!;
    await branch.topo.readdress('ppp0', '10.101.7.2', '10.101.7.1');
    await daemon.waitFor('the dsl rule to follow the re-dial', async () =>
      (await rules()).includes(`from 10.101.7.2 lookup ${tableOf('dsl')}`),
    );
    await daemon.waitFor('the dsl table to come back', async () =>
      (await table('dsl')).includes('default dev ppp0'),
    );
    expect(await rules()).not.toContain('from 10.101.2.2 ');
    // The connection is the same one (same conntrack entry, still established) and still flowing.
    expect(await flow()).toContain('ESTABLISHED');
    expect(await entry()).toBe(tracked);
    expect(client.child.exitCode).toBeNull();
    await daemon.waitFor(
      'a later drift check',
      async () => ((await daemon.status()).drift?.checkedAt ?? 0) > checkedAt,
    );
    expect((await daemon.status()).drift).toMatchObject({ items: [], shadowed: [] });
    await client.stop();
    await server.stop();
  });

  it('an LTE modem not plugged in is unavailable, with the reason; plugged in it joins; pulled out it leaves cleanly', async () => {
    expect(await provider('lte')).toMatchObject({
      available: false,
      reason: 'interface wwan0 does not exist',
    });
    expect(await rules()).not.toContain(`lookup ${tableOf('lte')}`);

    await plugLte(lab.current, branch);
    await daemon.waitFor('lte to join', async () => (await provider('lte')).available);
    await daemon.waitFor('the lte table', async () =>
      (await table('lte')).includes('default via 10.100.9.1 dev wwan0'),
    );
    expect(await rules()).toContain(`from 10.100.9.2 lookup ${tableOf('lte')}`);
    expect(await daemon.exec('cat', '/proc/sys/net/ipv4/conf/wwan0/rp_filter')).toBe('2\n');

    const logBefore = daemon.process.stderr.length;
    await unplugLte(lab.current, branch);
    await daemon.waitFor('lte to leave', async () => !(await provider('lte')).available);
    expect(await provider('lte')).toMatchObject({ reason: 'interface wwan0 does not exist' });
    await daemon.waitFor(
      'its rules to go',
      async () => !(await rules()).includes(`lookup ${tableOf('lte')}`),
    );
    // No error loop, no flood: a few seconds without the modem add a handful of lines at most.
    await new Promise((r) => setTimeout(r, 3_000));
    const added = daemon.process.stderr
      .slice(logBefore)
      .split('\n')
      .filter((l) => l.trim() !== '');
    expect(added.length, added.join('\n')).toBeLessThanOrEqual(4);
    expect(added.join('\n')).not.toMatch(/failed|error/i);
    expect((await daemon.status()).drift).toMatchObject({ items: [] });
  });
});
