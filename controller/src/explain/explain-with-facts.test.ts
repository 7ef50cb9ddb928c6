import { describe, expect, it } from 'vitest';
import { type FactsRecord, type RouterFacts, routerFactsHash } from '#agent/model';
import { loadSite } from '../../../test/support/explain-sites.js';
import { explainPacket } from './explain-packet.js';
import { formatExplanation } from './format-explanation.js';
import { parseExplainRequest } from './parse-explain-request.js';

/** A PPP uplink with a dynamic address, balanced with a static one; a VPN in main. */
const SITE = `lan:
  - interface: lan0
    subnets: [172.20.1.0/24]
providers:
  - name: isp1
    interface: wan1
    address: 198.51.100.2/29
    gateway: 198.51.100.1
    balance: 1
  - name: ppp1
    interface: ppp1
    gateway: point-to-point
    balance: 1
`;
const site = loadSite(SITE);

const FACTS: RouterFacts = {
  interfaces: {
    lan0: { exists: true, up: true, addresses: [{ address: '172.20.1.1', prefixLength: 24 }] },
    wan1: {
      exists: true,
      up: true,
      // A server DNAT'd on the /29: a secondary address.
      addresses: [
        { address: '198.51.100.2', prefixLength: 29 },
        { address: '198.51.100.3', prefixLength: 29 },
      ],
    },
    ppp1: {
      exists: true,
      up: true,
      addresses: [{ address: '203.0.113.77', prefixLength: 32, peer: '203.0.113.1' }],
    },
    tun0: {
      exists: true,
      up: true,
      addresses: [{ address: '10.9.0.2', prefixLength: 32, peer: '10.9.0.1' }],
    },
  },
  rules: [],
  routes: [
    { table: 254, dst: '10.9.0.0/16', type: 'unicast', dev: 'tun0', gateway: '10.9.0.1', protocol: 4 },
  ],
  sysctls: { 'net.ipv4.ip_forward': '1' },
};
/** 2026-12-04 10:41Z. */
const READ_AT = 1_796_380_860_000;
const record: FactsRecord = {
  site: 's1',
  hash: routerFactsHash(FACTS),
  readAt: READ_AT,
  reportedAt: READ_AT + 60_000,
  facts: FACTS,
};
const withFacts = { facts: { record, from: 'from facts.json' }, now: READ_AT + 13 * 60_000 };

describe('explain with the router facts', () => {
  it("a source that is the PPP link's address leaves by it; without facts the answer is unknown, not ENETUNREACH", () => {
    const request = { packet: { dst: '192.0.2.25', src: '203.0.113.77', proto: 'tcp' as const }, down: [] };
    const known = explainPacket(site, request, withFacts);
    expect(known.unknown).toBeNull();
    expect(known.summary).toBe(
      'tcp 203.0.113.77 → 192.0.2.25 (sent by the router) leaves via ppp1, no gateway (point-to-point), source 203.0.113.77',
    );
    expect(known.notes[0]).toBe(
      `computed with facts reported by the router at 2026-12-04 10:42Z (12 min before this answer; from facts.json, read on the router at 2026-12-04 10:41Z; hash ${record.hash.slice(0, 12)})`,
    );
    expect(known.basis).toMatchObject({ kind: 'router', hash: record.hash });

    const offline = explainPacket(site, request);
    expect(offline.unknown).toMatch(/^203\.0\.113\.77 may be an address of ppp1 that only the router knows/);
    expect(offline.summary).toMatch(/ is unknown offline: /);
    expect(offline.basis).toEqual({ kind: 'spec', standIns: ['ppp1'] });
    expect(offline.notes[0]).toMatch(/^no facts reported by the router: computed from the spec alone/);
    expect(formatExplanation(offline)).toContain('ppp1 has a dynamic address; 100.64.0.6 stands in for it');
  });

  it('a secondary address of an uplink is the uplink’s; offline it is unknown', () => {
    const request = { packet: { dst: '192.0.2.25', src: '198.51.100.3', proto: 'tcp' as const }, down: [] };
    expect(explainPacket(site, request, withFacts).summary).toBe(
      // Masquerade takes the interface's primary address, as the kernel's does.
      'tcp 198.51.100.3 → 192.0.2.25 (sent by the router) leaves via isp1 (wan1), gateway 198.51.100.1, source 198.51.100.3 SNAT → 198.51.100.2 (masquerade)',
    );
    expect(explainPacket(site, request).unknown).toMatch(
      /may be an address of isp1 or ppp1 that only the router knows/,
    );
  });

  it("main's own routes decide where they are more specific: the VPN route wins over the balance", () => {
    const request = { packet: { dst: '10.9.4.4', src: '172.20.1.50', iif: 'lan0' }, down: [] };
    const known = explainPacket(site, request, withFacts);
    expect(known.summary).toMatch(
      /^ip 172\.20\.1\.50 → 10\.9\.4\.4 \(forwarded from lan0\) leaves via tun0 \(not an uplink\), gateway 10\.9\.0\.1/,
    );
    expect(explainPacket(site, request).uplink.kind).toBe('balanced');
  });

  it('the stand-in note is gone with facts, and an address that is nobody’s is a confident answer', () => {
    const request = { packet: { dst: '192.0.2.25', src: '192.0.2.99' }, down: [] };
    const known = explainPacket(site, request, withFacts);
    expect(known.unknown).toBeNull();
    expect(known.verdict.kind).toBe('invalid');
    expect(known.notes.some((n) => n.includes('stands in'))).toBe(false);
  });
});

describe('inbound questions: a connection arriving on an uplink, and where its replies leave', () => {
  const ssh = {
    packet: {
      src: '192.0.2.9',
      dst: '203.0.113.77',
      iif: 'ppp1',
      proto: 'tcp' as const,
      sport: 40000,
      dport: 22,
    },
    down: [],
    inbound: {},
  };

  it("to the PPP link's own address: the replies leave by it, from it; offline that address is unknown", () => {
    const known = explainPacket(site, ssh, withFacts);
    expect(known.summary).toBe(
      'tcp 192.0.2.9:40000 → 203.0.113.77:22 (arriving on ppp1) reaches the router; replies leave via ppp1, no gateway (point-to-point), source 203.0.113.77, mark set to 0x200',
    );
    expect(known.uplink).toMatchObject({ kind: 'provider', provider: 'ppp1' });
    expect(explainPacket(site, ssh).unknown).toMatch(
      /^203\.0\.113\.77 may be an address of ppp1 that only the router knows/,
    );
  });

  it('DNAT to a LAN server on a secondary address: track brings the replies back to the uplink, un-NATed to that address', () => {
    const web = {
      packet: {
        src: '192.0.2.9',
        dst: '198.51.100.3',
        iif: 'wan1',
        proto: 'tcp' as const,
        sport: 40000,
        dport: 443,
      },
      down: [],
      inbound: { dnatTo: '172.20.1.10' },
    };
    const e = explainPacket(site, web, withFacts);
    expect(e.summary).toBe(
      'tcp 192.0.2.9:40000 → 198.51.100.3:443 (arriving on wan1 DNAT → 172.20.1.10) is forwarded to lan0; replies leave via isp1 (wan1), gateway 198.51.100.1, source 172.20.1.10 SNAT → 198.51.100.3 (conntrack-reply), mark set to 0x100',
    );
    expect(e.decidedBy).toMatch(/^track \(the connection is marked as isp1's/);
    expect(e.notes.some((n) => n.includes('asymmetric'))).toBe(false);
    // Without track, the replies would follow the balance: half of them out ppp1.
    const untracked = loadSite(SITE.replaceAll('    balance: 1\n', '    balance: 1\n    track: false\n'));
    const asym = explainPacket(untracked, web, withFacts);
    expect(asym.summary).toMatch(/; replies are balanced: ppp1 50%, isp1 50%$/);
    expect(asym.decidedBy).toBe('the balanced default route — rule 30000, table 200 (balance)');
    expect(asym.notes).toContain(
      'the replies may leave by ppp1, not by wan1 where the connection arrived: the peer will likely drop them (asymmetric path); track: true on the uplink keeps them on it',
    );
  });
});

describe('the router facts name interfaces the spec does not', () => {
  it('--iif tun0 is a question only with facts that have it', () => {
    const raw = { dst: '172.20.1.50', src: '10.9.0.1', iif: 'tun0' };
    expect(parseExplainRequest(site, raw)).toEqual({
      ok: false,
      message: '--iif tun0: not an interface of site s1; write one of lan0, wan1, ppp1',
    });
    const parsed = parseExplainRequest(site, raw, Object.keys(FACTS.interfaces));
    expect(parsed.ok).toBe(true);
    if (parsed.ok)
      expect(explainPacket(site, parsed.value, withFacts).verdict).toMatchObject({
        kind: 'forward',
        dev: 'lan0',
      });
  });
});
