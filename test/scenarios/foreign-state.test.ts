/**
 * Uplink coexists with what it does not own (branch-adsl-vpn, the site that uses marks):
 * foreign rules (one matching fwmark bits outside Uplink's 0xff00 mask), foreign routes in
 * main and in a foreign table, and the site's own nft table with a rule and a named counter.
 * They are untouched while Uplink's state is applied and byte-identical after revert; and
 * foreign objects where Uplink would write make it refuse, changing nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../agent/src/errors.js';
import type { DesiredState } from '../../agent/src/model/desired-state.js';
import { type Lab, requireRoot, type SiteTopology, useLab } from '../lab/index.js';
import {
  buildSiteLab,
  compileExampleSite,
  type KernelText,
  kernelText,
  routeGet,
  ruleLines,
  SiteAgent,
} from './site-lab.js';

/** The site's own firewall: it sets mark 0x1 (which the site's policy routes via the VPN) and counts SSH. */
const SITE_FILTER = `table inet filter {
  counter ssh_in {}
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport 22 counter name "ssh_in" accept
  }
  chain prerouting {
    type filter hook prerouting priority mangle - 5; policy accept;
    ip saddr 172.20.2.128/25 meta mark set meta mark | 0x00000001
  }
}
`;

const FOREIGN_RULES = [
  ['priority', '500', 'from', '100.64.9.0/24', 'lookup', '50'],
  ['priority', '501', 'fwmark', '0x1/0xff', 'lookup', '50'],
];
const FOREIGN_ROUTES = [
  ['100.64.9.0/24', 'via', '198.51.100.1', 'dev', 'wan1'],
  ['default', 'via', '198.51.100.1', 'dev', 'wan1', 'metric', '50'],
  ['default', 'via', '198.51.100.5', 'dev', 'wan2', 'table', '50'],
  ['100.64.8.0/24', 'via', '198.51.100.1', 'dev', 'wan1', 'table', '50'],
];

describe.skipIf(!requireRoot())('foreign state survives apply and revert (branch-adsl-vpn)', () => {
  const lab = useLab('foreign');
  let l: Lab;
  let topo: SiteTopology;
  let agent: SiteAgent;
  let desired: DesiredState;
  let before: KernelText;

  beforeAll(async () => {
    l = lab.current;
    desired = await compileExampleSite('branch-adsl-vpn');
    topo = await buildSiteLab(l, 'branch-adsl-vpn');
    agent = await SiteAgent.create(topo.router, desired.settings.markMask);
    const r = topo.router;
    for (const rule of FOREIGN_RULES) await l.run(['ip', '-n', r, 'rule', 'add', ...rule]);
    for (const route of FOREIGN_ROUTES) await l.run(['ip', '-n', r, 'route', 'add', ...route]);
    await l.exec(r, ['nft', '-f', '-'], { stdin: SITE_FILTER });
    before = await kernelText(l, r, Object.keys(desired.sysctls));
  });
  afterAll(async () => {
    await agent?.dispose();
  });

  it('applies beside the foreign objects and leaves every one of them as it was', async () => {
    const r = topo.router;
    const report = await agent.apply(desired);
    expect(report.verified).toBe(true);
    const during = await kernelText(l, r);
    const rules = await ruleLines(l, r);
    expect(rules).toEqual(
      expect.arrayContaining([
        '500: from 100.64.9.0/24 lookup 50',
        '501: from all fwmark 0x1/0xff lookup 50',
      ]),
    );
    const foreignRoutes = (text: string) =>
      text
        .split('\n')
        .filter(
          (line) =>
            line.includes('table 50') || line.startsWith('100.64.9.0/24') || line.includes('metric 50'),
        );
    expect(foreignRoutes(during.routes)).toEqual(foreignRoutes(before.routes));
    expect(foreignRoutes(before.routes)).toHaveLength(4);
    const filter = (await l.exec(r, ['nft', 'list', 'table', 'inet', 'filter'])).stdout;
    expect(before.nft).toContain(filter);
    // Marks: Uplink's rules look only at 0xff00, so a track mark with a foreign bit set still
    // routes by Uplink's table unless a foreign rule for that bit sits earlier — here 501 does.
    expect(await routeGet(l, r, '203.0.113.10', { mark: 0x100 })).toMatchObject({ dev: 'wan1' });
    expect(await routeGet(l, r, '203.0.113.10', { mark: 0x101 })).toMatchObject({ dev: 'wan2' });
    expect(await routeGet(l, r, '203.0.113.10', { mark: 0x200 })).toMatchObject({ dev: 'wan2' });
  });

  it('revert brings back ip rule, ip route table all, nft ruleset and sysctls byte for byte', async () => {
    await agent.revert();
    const after = await kernelText(l, topo.router, Object.keys(desired.sysctls));
    expect(after.rules).toBe(before.rules);
    expect(after.routes).toBe(before.routes);
    expect(after.nft).toBe(before.nft);
    expect(after.sysctls).toBe(before.sysctls);
  });

  it('refuses, changing nothing, when foreign objects sit where Uplink would write', async () => {
    const r = topo.router;
    await l.run(['ip', '-n', r, 'route', 'add', '100.64.7.0/24', 'via', '198.51.100.5', 'table', '101']);
    await l.run(['ip', '-n', r, 'rule', 'add', 'priority', '10010', 'from', '100.64.7.0/24', 'lookup', '50']);
    const blocked = await kernelText(l, r, Object.keys(desired.sysctls));
    const error = await agent.apply(desired).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).conflicts.map((c) => c.kind).sort()).toEqual(['route', 'rule']);
    expect(await kernelText(l, r, Object.keys(desired.sysctls))).toEqual(blocked);
    await l.run(['ip', '-n', r, 'rule', 'del', 'priority', '10010']);
    await l.run(['ip', '-n', r, 'route', 'del', '100.64.7.0/24', 'table', '101']);
  });
});
