import { describe, expect, it } from 'vitest';
import { loadSite, TWO_ISPS } from '../../../test/support/explain-sites.js';
import { explainClasses, trafficClassesOf } from './explain-classes.js';

const before = loadSite(TWO_ISPS);

function moves(afterBody: string): string[] {
  const after = loadSite(afterBody);
  return explainClasses(before, after, trafficClassesOf(before, after))
    .filter((c) => c.moved)
    .map((c) => c.text);
}

describe('trafficClassesOf', () => {
  it('one packet per policy of either site, default traffic per LAN subnet, the router itself', () => {
    const after = loadSite(
      TWO_ISPS.replace('subnets: [172.20.2.0/24]', 'subnets: [172.20.2.0/24, 172.20.3.0/24]') +
        '  - name: backup-user\n    uid: 34\n    via: [isp2]\n  - name: guests\n    from: 172.20.3.0/24\n    via: [isp2]\n',
    );
    expect(trafficClassesOf(before, after)).toEqual([
      {
        name: 'policy smtp',
        packet: { dst: '203.0.113.25', src: '172.20.2.50', iif: 'lan0', proto: 'tcp', dport: 25 },
      },
      { name: 'policy backup-user', packet: { dst: '203.0.113.25', uid: 34 } },
      { name: 'policy guests', packet: { dst: '203.0.113.25', src: '172.20.3.50', iif: 'lan0' } },
      {
        name: 'default traffic from 172.20.2.0/24 (lan0)',
        packet: { dst: '203.0.113.25', src: '172.20.2.50', iif: 'lan0' },
      },
      // 172.20.3.0/24's default packet is the guests policy's packet: listed once.
      { name: "the router's own traffic", packet: { dst: '203.0.113.25' } },
    ]);
  });

  it('keeps a changed policy under both versions', () => {
    const after = loadSite(TWO_ISPS.replace('dport: 25', 'dport: 587'));
    expect(trafficClassesOf(before, after).map((c) => [c.name, c.packet.dport])).toEqual([
      ['policy smtp', 587],
      ['policy smtp (as before)', 25],
      ['default traffic from 172.20.2.0/24 (lan0)', undefined],
      ["the router's own traffic", undefined],
    ]);
  });

  it('picks a destination no network or policy of the sites covers', () => {
    const after = loadSite(TWO_ISPS.replace('  - name: smtp\n', '  - name: smtp\n    to: 203.0.113.0/24\n'));
    expect(trafficClassesOf(before, after).at(-1)).toEqual({
      name: "the router's own traffic",
      packet: { dst: '198.51.100.25' },
    });
  });
});

describe('explainClasses', () => {
  it('nothing moves when the spec is the same', () => {
    expect(moves(TWO_ISPS)).toEqual([]);
  });

  it('re-pinning a policy moves its class only', () => {
    expect(moves(TWO_ISPS.replace('via: [isp1]', 'via: [isp2]'))).toEqual([
      'policy smtp: isp1 (wan1) → isp2 (wan2)',
    ]);
  });

  it('new weights change the shares of default traffic; the same ratio is no move', () => {
    expect(moves(TWO_ISPS.replaceAll('balance: 1', 'balance: 2'))).toEqual([]);
    expect(moves(TWO_ISPS.replace('balance: 1', 'balance: 3'))).toEqual([
      'default traffic from 172.20.2.0/24 (lan0): balanced: isp1 50%, isp2 50% → balanced: isp1 75%, isp2 25%',
      "the router's own traffic: balanced: isp1 50%, isp2 50% → balanced: isp1 75%, isp2 25%",
    ]);
  });

  it('a removed policy and a dropped provider from the balance', () => {
    const after = TWO_ISPS.replace(/policies:[\s\S]*$/, '').replace(
      /(isp2[\s\S]*?)balance: 1/,
      '$1fallback: true',
    );
    // SMTP stays on isp1: it is now the only balanced uplink.
    expect(moves(after)).toEqual([
      'default traffic from 172.20.2.0/24 (lan0): balanced: isp1 50%, isp2 50% → isp1 (wan1)',
      "the router's own traffic: balanced: isp1 50%, isp2 50% → isp1 (wan1)",
    ]);
  });

  it('reports unchanged classes too, for a complete picture', () => {
    const after = loadSite(TWO_ISPS);
    const all = explainClasses(before, after, trafficClassesOf(before, after));
    expect(all.map((c) => c.text)).toEqual([
      'policy smtp: isp1 (wan1) (unchanged)',
      'default traffic from 172.20.2.0/24 (lan0): balanced: isp1 50%, isp2 50% (unchanged)',
      "the router's own traffic: balanced: isp1 50%, isp2 50% (unchanged)",
    ]);
  });
});
