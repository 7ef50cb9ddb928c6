import { describe, expect, it } from 'vitest';
import { type FactsRecord, type RouterFacts, routerFactsHash } from '#agent/model';
import { loadFleet } from '../spec/load-fleet.js';
import { assembleFleetPlan } from './assemble-fleet-plan.js';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from './render-plan.js';

const FLEET = 'rollout:\n  waves:\n    - name: all\n';
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClCAdEERgnqBDzVhMqPG0LAf3+DKdSb5Eq9Z+ShyIxQ';

/** A router managed over mgmt0, whose default route (main's, not Uplink's) leads to the controller. */
function siteFile(isp1: string, dport: number): string {
  return `name: a
management: { address: 10.77.0.2, hostKey: ${HOST_KEY} }
lan: [{ interface: lan0, subnets: [172.20.1.0/24] }]
providers:
  - name: isp1
    interface: wan1
    address: 198.51.100.2/30
    gateway: 198.51.100.1
${isp1}  - name: isp2
    interface: wan2
    gateway: point-to-point
policies:
  - name: smtp
    proto: tcp
    dport: ${dport}
    via: [isp1]
`;
}

const FACTS: RouterFacts = {
  interfaces: {
    lan0: { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
    mgmt0: { exists: true, up: true, addresses: [{ address: '10.77.0.2', prefixLength: 24 }] },
    wan1: { exists: true, up: true, addresses: [{ address: '198.51.100.2', prefixLength: 30 }] },
    wan2: {
      exists: true,
      up: true,
      addresses: [{ address: '203.0.113.77', prefixLength: 32, peer: '203.0.113.1' }],
    },
  },
  rules: [
    { priority: 0, action: 'lookup', table: 255, protocol: 2 },
    { priority: 32766, action: 'lookup', table: 254, protocol: 2 },
    { priority: 32767, action: 'lookup', table: 253, protocol: 2 },
  ],
  routes: [
    { table: 254, dst: '0.0.0.0/0', type: 'unicast', dev: 'mgmt0', gateway: '10.77.0.1', protocol: 4 },
    {
      table: 254,
      dst: '10.77.0.0/24',
      type: 'unicast',
      dev: 'mgmt0',
      src: '10.77.0.2',
      scope: 'link',
      protocol: 2,
    },
  ],
  sysctls: { 'net.ipv4.ip_forward': '1' },
  connection: { controller: '192.0.2.1', router: '10.77.0.2', routerPort: 22 },
};
const record: FactsRecord = { site: 'a', hash: routerFactsHash(FACTS), readAt: 1_000, facts: FACTS };

function rev(name: string, isp1: string, dport = 25) {
  const files = { 'fleet.yaml': FLEET, 'sites/a.yaml': siteFile(isp1, dport) };
  return {
    rev: name,
    commit: name,
    load: loadFleet(new Map(Object.entries(files))),
    files: Object.keys(files),
  };
}

const withFacts = { facts: new Map([['a', { facts: { record, from: 'from a.json' }, now: 61_000 }]]) };

describe("uplink plan with the router's facts: the management-path guard offline", () => {
  it('a balanced default route would capture the replies to the controller: flagged in text, Markdown and JSON', () => {
    const plan = assembleFleetPlan(rev('base', ''), rev('head', '    balance: 1\n'), withFacts);
    const site = plan.sites[0]!;
    expect(site.status).toBe('changed');
    expect(site.managementPath).toMatchObject({
      checked: true,
      refused: true,
      check: { controller: '192.0.2.1', current: { dev: 'mgmt0' }, next: { dev: 'wan1' }, unchanged: false },
    });
    const message = site.managementPath?.checked ? site.managementPath.message : null;
    expect(message).toBe(
      'would be refused: rule 30000 `from all lookup 200` would send replies to the controller 192.0.2.1 out wan1 instead of mgmt0',
    );
    expect(renderPlanText(plan)).toContain(`\nwarning: site a: ${message}\n`);
    expect(renderPlanMarkdown(plan)).toContain(
      '> ⚠️ **site a: would be refused: rule 30000 \\`from all lookup 200\\`',
    );
    expect(JSON.parse(renderPlanJson(plan)).sites[0].managementPath.refused).toBe(true);
    expect(site.notes[0]).toMatch(
      /^computed with facts reported by the router at 1970-01-01 00:00Z \(1 min before/,
    );
  });

  it('a change that keeps the path is not flagged; without facts nothing is checked, and says so', () => {
    const kept = assembleFleetPlan(rev('base', ''), rev('head', '', 587), withFacts).sites[0]!;
    expect(kept.status).toBe('changed');
    expect(kept.managementPath).toMatchObject({ checked: true, refused: false, message: null });
    const none = assembleFleetPlan(rev('base', ''), rev('head', '    balance: 1\n'), {
      facts: new Map([['a', { noFacts: 'none for a in /var/lib/uplink' }]]),
    }).sites[0]!;
    expect(none.managementPath).toEqual({ checked: false, reason: 'no facts reported by the router' });
    expect(none.notes).toContain('management path not checked: no facts reported by the router');
    // Asked without facts at all, the plan is the spec's alone, as before.
    expect(assembleFleetPlan(rev('base', ''), rev('head', '    balance: 1\n')).sites[0]!.managementPath).toBe(
      undefined,
    );
  });
});
