/**
 * Following, against the real kernel: the running daemon (in a router namespace) moves
 * Uplink's objects by itself when an uplink is readdressed (PPP-like) or a provider's
 * health changes, and neither is reported as drift.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDriftRouter, DriftDaemon, driftDesired } from './agent-drift-lab.js';
import { requireRoot, useLab } from './lab/index.js';

describe.skipIf(!requireRoot())('the daemon follows addresses and health', () => {
  const lab = useLab('follow');
  let daemon: DriftDaemon;

  beforeAll(async () => {
    const router = await buildDriftRouter(lab.current);
    daemon = await DriftDaemon.start(lab.current, router);
    await daemon.applyConfirmed(driftDesired('report'), 'f1');
    await daemon.waitForFirstCheck();
  });
  afterAll(async () => {
    await daemon?.close();
  });

  it('a PPP-like readdress moves the from rule, with no drift reported', async () => {
    expect(await daemon.exec('ip', 'rule', 'show', 'priority', '2001')).toContain(
      'from 203.0.113.5 lookup 102',
    );
    await daemon.exec('ip', 'addr', 'del', '203.0.113.5', 'peer', '203.0.113.1', 'dev', 'ppp1');
    await daemon.exec('ip', 'addr', 'add', '203.0.113.77', 'peer', '203.0.113.1', 'dev', 'ppp1');
    await daemon.waitFor(
      async () =>
        (await daemon.exec('ip', 'rule', 'show', 'priority', '2001')).includes(
          'from 203.0.113.77 lookup 102',
        ),
      20_000,
      'the from rule to follow the address',
    );
    expect(await daemon.exec('ip', 'rule', 'show', 'priority', '2001')).not.toContain('203.0.113.5');
    // The default route in table 102 and the balance route came back with the address.
    await daemon.waitFor(
      async () =>
        (await daemon.exec('ip', 'route', 'show', 'table', '102')).includes('default via 203.0.113.1'),
      20_000,
      'table 102 default',
    );
    const status = await daemon.status();
    await daemon.waitFor(
      async () => ((await daemon.status()).drift?.checkedAt ?? 0) > status.drift!.checkedAt!,
      20_000,
      'a later check',
    );
    expect((await daemon.status()).drift).toMatchObject({ items: [], shadowed: [], heals: 0 });
    expect(daemon.log).toMatch(/follow: re-applied the confirmed state of drift-lab/);
    expect(daemon.log).not.toMatch(/uplink-agent: drift: /);
  });

  it('a provider going down moves routes (failover), then back, with no drift reported', async () => {
    await daemon.setHealth({ isp2: 'down' });
    await daemon.waitFor(
      async () => !(await daemon.exec('ip', 'route', 'show', 'table', '102')).includes('default'),
      20_000,
      'table 102 to lose its default route',
    );
    const balance = await daemon.exec('ip', 'route', 'show', 'table', '200');
    expect(balance).toContain('default via 198.51.100.1 dev isp1');
    expect(balance).not.toContain('ppp1');
    await daemon.waitFor(
      () => daemon.log.includes('health: settled {"isp2":"down"}'),
      20_000,
      'settled(down)',
    );
    // Rules stay: traffic for isp2 falls through to the next table.
    expect(await daemon.exec('ip', 'rule', 'show', 'priority', '1001')).toContain('lookup 102');

    await daemon.setHealth({});
    await daemon.waitFor(
      async () =>
        (await daemon.exec('ip', 'route', 'show', 'table', '200')).includes(
          'nexthop via 203.0.113.1 dev ppp1 weight 2',
        ),
      20_000,
      'isp2 back in the balance route',
    );
    await daemon.waitFor(() => daemon.log.includes('health: settled {}'), 20_000, 'settled(up)');
    const status = await daemon.status();
    await daemon.waitFor(
      async () => ((await daemon.status()).drift?.checkedAt ?? 0) > status.drift!.checkedAt!,
      20_000,
      'a later check',
    );
    expect((await daemon.status()).drift).toMatchObject({ items: [], shadowed: [], heals: 0 });
    expect(daemon.log).not.toMatch(/uplink-agent: drift: /);
  });
});
