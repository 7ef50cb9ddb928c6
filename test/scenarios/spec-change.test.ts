/**
 * A small spec change makes a small plan, and apply does exactly the plan: on branch-adsl-vpn,
 * ISP1's balance weight 8 → 5 is one route update (table 200's multipath route, replaced in
 * place), and SMTP's port 25 → 587 is that policy's one rule deleted and one created. Nothing
 * else in `ip rule`, `ip route show table all` or the nft ruleset moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, requireRoot, type SiteTopology, useLab } from '../lab/index.js';
import { buildSiteLab, compileExampleSite, kernelText, routeGet, SiteAgent } from './site-lab.js';

/** Lines of `after` not in `before`, and of `before` not in `after`. */
function lineDiff(before: string, after: string): { added: string[]; removed: string[] } {
  const b = before.split('\n');
  const a = after.split('\n');
  return { added: a.filter((line) => !b.includes(line)), removed: b.filter((line) => !a.includes(line)) };
}

describe.skipIf(!requireRoot())('a spec change touches only what changed (branch-adsl-vpn)', () => {
  const lab = useLab('change');
  let l: Lab;
  let topo: SiteTopology;
  let agent: SiteAgent;

  beforeAll(async () => {
    l = lab.current;
    topo = await buildSiteLab(l, 'branch-adsl-vpn');
    const desired = await compileExampleSite('branch-adsl-vpn');
    agent = await SiteAgent.create(topo.router, desired.settings.markMask);
    expect((await agent.apply(desired)).verified).toBe(true);
  });
  afterAll(async () => {
    await agent?.dispose();
  });

  it('balance 8 → 5 on isp1: exactly one route update, and only table 200 changes', async () => {
    const desired = await compileExampleSite('branch-adsl-vpn', (text) =>
      text.replace('    balance: 8\n', '    balance: 5\n'),
    );
    const plan = await agent.plan(desired);
    expect(plan.problems).toEqual([]);
    expect(plan.conflicts).toEqual([]);
    expect(plan.changes.map((c) => `${c.action} ${c.kind} ${c.key}`)).toEqual([
      'update route route table 200 default',
    ]);
    expect(plan.steps.map((s) => s.op)).toEqual(['route-replace']);

    const before = await kernelText(l, topo.router);
    const spawns = agent.dataplane.commandCount;
    const report = await agent.apply(desired);
    expect(report.changes).toEqual(plan.changes);
    expect(report.steps).toEqual(plan.steps);
    // Read (one ip -batch for addresses, rules and routes; ip -6 rules; nft; sysctl), one ip -batch,
    // verify (4).
    expect(agent.dataplane.commandCount - spawns).toBe(9);
    const after = await kernelText(l, topo.router);
    expect(after.rules).toBe(before.rules);
    expect(after.nft).toBe(before.nft);
    const routes = lineDiff(before.routes, after.routes);
    expect(routes.removed).toEqual(['\tnexthop via 198.51.100.1 dev wan1 weight 8 ']);
    expect(routes.added).toEqual(['\tnexthop via 198.51.100.1 dev wan1 weight 5 ']);
  });

  it('smtp dport 25 → 587: exactly that policy’s rule deleted and created', async () => {
    const desired = await compileExampleSite('branch-adsl-vpn', (text) =>
      text.replace('    balance: 8\n', '    balance: 5\n').replace('    dport: 25\n', '    dport: 587\n'),
    );
    const plan = await agent.plan(desired);
    expect(plan.changes.map((c) => `${c.action} ${c.kind}`).sort()).toEqual(['create rule', 'delete rule']);
    expect(plan.changes.every((c) => c.kind === 'rule' && c.key.includes('10010'))).toBe(true);
    expect(plan.steps.map((s) => s.op).sort()).toEqual(['rule-add', 'rule-delete']);

    const before = await kernelText(l, topo.router);
    const report = await agent.apply(desired);
    expect(report.changes).toEqual(plan.changes);
    expect(report.steps).toEqual(plan.steps);
    const after = await kernelText(l, topo.router);
    expect(after.routes).toBe(before.routes);
    expect(after.nft).toBe(before.nft);
    expect(lineDiff(before.rules, after.rules)).toEqual({
      removed: ['10010:\tfrom all ipproto tcp dport 25 lookup 100 proto 252'],
      added: ['10010:\tfrom all ipproto tcp dport 587 lookup 100 proto 252'],
    });
    const r = topo.router;
    expect(await routeGet(l, r, '203.0.113.10', { ipproto: 'tcp', dport: 587 })).toMatchObject({
      dev: 'wan1',
    });
    // Port 25 is no longer special: it takes the balanced default like everything else.
    expect((await l.run(['ip', '-n', r, 'rule', 'show', 'priority', '10010'])).stdout).not.toContain(
      'dport 25 ',
    );
  });

  it('revert goes back one apply: port 25 again, weight 5 stays', async () => {
    await agent.revert();
    const rules = (await l.run(['ip', '-n', topo.router, 'rule', 'show', 'priority', '10010'])).stdout;
    expect(rules).toMatch(/dport 25 lookup 100/);
    const table = (await l.run(['ip', '-n', topo.router, 'route', 'show', 'table', '200'])).stdout;
    expect(table).toContain('dev wan1 weight 5');
  });
});
