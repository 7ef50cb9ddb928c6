import { describe, expect, it } from 'vitest';
import { compileSite } from '../compile/compile-site.js';
import { loadFleet } from '../spec/load-fleet.js';
import { assembleFleetPlan, planExitCode } from './assemble-fleet-plan.js';
import { diffDesiredStates } from './diff-desired-states.js';
import { renderPlanMarkdown, summarizeChanges } from './render-plan.js';

const FLEET = 'rollout:\n  waves:\n    - name: canary\n      select: { sites: [a] }\n    - name: rest\n';
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ';

function site(name: string, body: string, address = '192.0.2.10'): string {
  return `name: ${name}
management: { address: ${address}, hostKey: ${HOST_KEY} }
lan: [{ interface: lan0, subnets: [172.20.1.0/24] }]
providers:
  - { name: isp1, interface: wan1, address: 198.51.100.2/30, gateway: 198.51.100.1, balance: 1 }
  - { name: isp2, interface: wan2, gateway: detect, balance: 1 }
${body}`;
}

function load(files: Record<string, string>) {
  return loadFleet(new Map(Object.entries({ 'fleet.yaml': FLEET, ...files })));
}

function compiled(body: string) {
  return compileSite(load({ 'sites/a.yaml': site('a', body) }).validSites[0]!);
}

describe('diffDesiredStates', () => {
  const base = compiled('');
  it.each([
    ['identical states', '', []],
    [
      'a policy added',
      'policies: [{ name: web, proto: tcp, dport: 443, via: [isp2] }]',
      ['create rule policy:web:isp2#0: priority 10000 from all ipproto tcp dport 443 lookup 101 proto 252'],
    ],
    [
      'a sysctl added',
      'sysctls: { net.ipv4.conf.all.rp_filter: "1" }',
      ['create sysctl net.ipv4.conf.all.rp_filter: 1'],
    ],
  ])('%s', (_name, body, expected) => {
    const changes = diffDesiredStates(base, compiled(body)).map(
      (c) => `${c.action} ${c.kind} ${c.key}: ${c.after ?? c.before}`,
    );
    expect(changes.map((c) => c.replace(/ \(only while .*\)$/, ''))).toEqual(expected);
  });

  it('a changed weight is one provider update (the changed field only) and one route update', () => {
    const after = compileSite(
      load({
        'sites/a.yaml': site('a', '').replace('gateway: detect, balance: 1', 'gateway: detect, balance: 3'),
      }).validSites[0]!,
    );
    const changes = diffDesiredStates(base, after);
    expect(changes.map((c) => [c.action, c.kind, c.key, c.before, c.after])).toEqual([
      ['update', 'provider', 'isp2', 'balance 1', 'balance 3'],
      [
        'update',
        'route',
        'table 200 default',
        'default proto 252 nexthop via 198.51.100.1 dev wan1 weight 1 nexthop via gateway(isp2) dev wan2 weight 1',
        'default proto 252 nexthop via 198.51.100.1 dev wan1 weight 1 nexthop via gateway(isp2) dev wan2 weight 3',
      ],
    ]);
    expect(summarizeChanges(changes)).toBe('1 provider changed, 1 route changed');
  });

  it('symbolic addresses stay symbolic: the source rule of a DHCP uplink', () => {
    const created = diffDesiredStates(null, base).find((c) => c.key === 'source:isp2');
    expect(created?.after).toBe(
      'priority 2001 from address(isp2) lookup 101 proto 252 (only while isp2 is available)',
    );
  });
});

describe('assembleFleetPlan', () => {
  const files = { 'sites/a.yaml': site('a', ''), 'sites/b.yaml': site('b', '', '192.0.2.11') };
  const rev = (name: string, f: Record<string, string>) => ({
    rev: name,
    commit: name,
    load: load(f),
    files: ['fleet.yaml', ...Object.keys(f)],
  });

  it('assigns each changed site its wave in the rollout of the change, lists unchanged sites, exits 1 on change and 0 without', () => {
    const head = {
      ...files,
      'sites/b.yaml': site(
        'b',
        'policies: [{ name: web, proto: tcp, dport: 443, via: [isp2] }]',
        '192.0.2.11',
      ),
    };
    const plan = assembleFleetPlan(rev('base', files), rev('head', head));
    expect(plan.sites.map((s) => [s.site, s.status, s.wave])).toEqual([
      ['a', 'unchanged', null],
      ['b', 'changed', 'rest'],
    ]);
    expect(plan.sites[1]!.moves).toEqual(['policy web: balanced: isp1 50%, isp2 50% → isp2 (wan2)']);
    expect(planExitCode(plan)).toBe(1);
    expect(planExitCode(assembleFleetPlan(rev('base', files), rev('head', files)))).toBe(0);
  });

  it('a site file that does not validate at head is invalid (exit 2), one that is gone is removed', () => {
    const head = { 'sites/a.yaml': site('a', 'policies: [{ name: web, via: [nope] }]') };
    const plan = assembleFleetPlan(rev('base', files), rev('head', head));
    expect(plan.sites.map((s) => [s.site, s.status])).toEqual([
      ['a', 'invalid'],
      ['b', 'removed'],
    ]);
    expect(plan.sites[0]!.diagnostics[0]).toMatchObject({ file: 'sites/a.yaml', severity: 'error' });
    expect(planExitCode(plan)).toBe(2);
  });

  it('Markdown leaves out per-site sections beyond its budget but keeps the whole table', () => {
    const head = {
      'sites/a.yaml': site('a', 'sysctls: { net.ipv4.conf.all.rp_filter: "1" }'),
      'sites/b.yaml': site('b', 'sysctls: { net.ipv4.conf.all.rp_filter: "1" }', '192.0.2.11'),
    };
    const plan = assembleFleetPlan(rev('base', files), rev('head', head));
    const whole = renderPlanMarkdown(plan);
    expect(whole.match(/<details>/g)).toHaveLength(2);
    const cut = renderPlanMarkdown(plan, { maxChars: whole.length - 50 });
    expect(cut.match(/<details>/g)).toHaveLength(1);
    expect(cut).toMatch(/\| b \|/);
    expect(cut).toMatch(/1 site section left out/);
  });
});
