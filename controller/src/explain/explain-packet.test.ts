import { describe, expect, it } from 'vitest';
import { loadSite, TWO_ISPS } from '../../../test/support/explain-sites.js';
import { explainPacket } from './explain-packet.js';
import { formatExplanation } from './format-explanation.js';
import type { ExplainRequest } from './parse-explain-request.js';

const site = loadSite(
  `${TWO_ISPS.replace('    balance: 1\npolicies:', '    balance: 1\n    track: true\npolicies:')}  - name: no-test-net
    to: 192.0.2.192/26
    action: unreachable
`,
);
const LAN = { src: '172.20.2.50', iif: 'lan0' };

function answer(request: Partial<ExplainRequest['packet']>, down: string[] = []) {
  const e = explainPacket(site, { packet: { dst: '203.0.113.25', ...request }, down });
  return [e.summary, e.decidedBy];
}

describe('explainPacket', () => {
  it.each<[string, Partial<ExplainRequest['packet']>, string[], string, string | null]>([
    [
      'a policy',
      { ...LAN, proto: 'tcp', dport: 25 },
      [],
      'tcp 172.20.2.50 → 203.0.113.25:25 (forwarded from lan0) leaves via isp1 (wan1), gateway 198.51.100.1, source 172.20.2.50 SNAT → 198.51.100.2 (masquerade)',
      'policy smtp via isp1 — rule 10000, table 100 (isp1)',
    ],
    [
      'a policy whose provider is down falls through',
      { ...LAN, proto: 'tcp', dport: 25 },
      ['isp1'],
      'tcp 172.20.2.50 → 203.0.113.25:25 (forwarded from lan0) leaves via isp2 (wan2), gateway 198.51.100.5, source 172.20.2.50 SNAT → 198.51.100.6 (masquerade)',
      'the balanced default route — rule 30000, table 200 (balance)',
    ],
    [
      'a reject policy is an answer too',
      { ...LAN, dst: '192.0.2.200' },
      [],
      'ip 172.20.2.50 → 192.0.2.200 (forwarded from lan0) is not routed: unreachable (ENETUNREACH): rule 10010 is unreachable',
      'policy no-test-net — rule 10010',
    ],
    [
      "the router's own traffic with an uplink's source address",
      { src: '198.51.100.6', proto: 'udp', dport: 53 },
      [],
      'udp 198.51.100.6 → 203.0.113.25:53 (sent by the router) leaves via isp2 (wan2), gateway 198.51.100.5, source 198.51.100.6',
      "the source address is isp2's, so it must leave by isp2 — rule 2001, table 101 (isp2)",
    ],
    [
      'a LAN host',
      { dst: '172.20.2.9' },
      [],
      'ip to 172.20.2.9 (sent by the router) leaves via lan0 (not an uplink), no gateway (on-link), source 172.20.2.1',
      "main table's specific routes: LAN, VPN and connected networks win before any uplink — rule 900, table main",
    ],
    [
      'the router itself',
      { src: '203.0.113.9', iif: 'wan1', dst: '198.51.100.2', proto: 'tcp', dport: 22 },
      [],
      'tcp 203.0.113.9 → 198.51.100.2:22 (arriving on wan1) is delivered to the router itself',
      'the local table (an address of this router) — rule 0, table local',
    ],
    [
      'every uplink down: all kept as the last resort',
      {},
      ['isp1', 'isp2'],
      'ip to 203.0.113.25 (sent by the router) is balanced: isp1 50%, isp2 50%',
      'the balanced default route — rule 30000, table 200 (balance)',
    ],
  ])('%s', (_, packet, down, summary, decidedBy) => {
    expect(answer(packet, down)).toEqual([summary, decidedBy]);
  });

  it('a connection tracked to isp2 stays there (track rule)', () => {
    const e = explainPacket(site, { packet: { ...LAN, dst: '203.0.113.25', mark: 0x200 }, down: [] });
    expect(e.decidedBy).toBe(
      "track (the connection is marked as isp2's, so it stays on isp2) — rule 1001, table 101 (isp2)",
    );
  });

  it('every uplink down: the answer says the last resort keeps them', () => {
    const e = explainPacket(site, { packet: { dst: '203.0.113.25' }, down: ['isp1', 'isp2'] });
    expect(e.notes.some((n) => n.startsWith('every provider is down'))).toBe(true);
    const one = explainPacket(site, { packet: { dst: '203.0.113.25' }, down: ['isp1'] });
    expect(one.notes.some((n) => n.startsWith('every provider is down'))).toBe(false);
  });

  it('balanced: every path with its share, simulated on its own', () => {
    const e = explainPacket(site, { packet: { ...LAN, dst: '203.0.113.25' }, down: [] });
    expect(e.uplink.kind).toBe('balanced');
    expect(e.paths.map((p) => [p.provider, p.share, p.verdict.dev, p.hop])).toEqual([
      ['isp1', 50, 'wan1', 'gateway 198.51.100.1, source 172.20.2.50 SNAT → 198.51.100.2 (masquerade)'],
      ['isp2', 50, 'wan2', 'gateway 198.51.100.5, source 172.20.2.50 SNAT → 198.51.100.6 (masquerade)'],
    ]);
    const text = formatExplanation(e);
    expect(text.split('\n').slice(0, 4)).toEqual([
      'ip 172.20.2.50 → 203.0.113.25 (forwarded from lan0) is balanced: isp1 50%, isp2 50%',
      '  50% isp1 (wan1), weight 1, gateway 198.51.100.1, source 172.20.2.50 SNAT → 198.51.100.2 (masquerade)',
      '  50% isp2 (wan2), weight 1, gateway 198.51.100.5, source 172.20.2.50 SNAT → 198.51.100.6 (masquerade)',
      'decided by the balanced default route — rule 30000, table 200 (balance)',
    ]);
    expect(e.notes).toContain(
      'the kernel hashes each flow onto one path; the shares are of flows, by weight',
    );
    expect(text).toContain('\ntrace:\n  ');
    expect(text).toContain(
      '\nnotes:\n  · no facts reported by the router: computed from the spec alone, with stand-ins for what only the router knows\n  · main table has no default route here',
    );
  });
});
