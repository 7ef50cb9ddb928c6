import { describe, expect, it } from 'vitest';
import { loadSite, TWO_ISPS } from '../../../test/support/explain-sites.js';
import { parseExplainRequest, parseMark, type RawExplainOptions } from './parse-explain-request.js';

const site = loadSite(TWO_ISPS);

describe('parseExplainRequest', () => {
  it('a forwarded TCP packet', () => {
    expect(
      parseExplainRequest(site, {
        dst: '203.0.113.25',
        src: '172.20.2.50',
        iif: 'lan0',
        proto: 'tcp',
        sport: '40000',
        dport: '25',
        mark: '0x100',
        down: ['isp1', 'isp1'],
      }),
    ).toEqual({
      ok: true,
      value: {
        packet: {
          dst: '203.0.113.25',
          src: '172.20.2.50',
          iif: 'lan0',
          proto: 'tcp',
          sport: 40000,
          dport: 25,
          mark: 0x100,
        },
        down: ['isp1'],
      },
    });
  });

  it('an IPv6 packet: addresses canonical, IPv6 DNAT target as [IP]:PORT or bare', () => {
    expect(
      parseExplainRequest(site, { dst: '2001:DB8:99::0010', src: '2001:db8:a1:1::10', iif: 'lan0' }),
    ).toEqual({
      ok: true,
      value: { packet: { dst: '2001:db8:99::10', src: '2001:db8:a1:1::10', iif: 'lan0' }, down: [] },
    });
    const inbound = (dnatTo: string) =>
      parseExplainRequest(site, {
        dst: '2001:db8:ffa1::2',
        src: '2001:db8:99::10',
        iif: 'wan1',
        proto: 'tcp',
        dport: '443',
        inbound: true,
        dnatTo,
      });
    expect(inbound('[2001:db8:a1:1::10]:8443')).toMatchObject({
      ok: true,
      value: { inbound: { dnatTo: '2001:db8:a1:1::10', dnatPort: 8443 } },
    });
    expect(inbound('2001:db8:a1:1::10')).toMatchObject({
      ok: true,
      value: { inbound: { dnatTo: '2001:db8:a1:1::10' } },
    });
    expect(inbound('172.20.2.10')).toMatchObject({ ok: false });
    expect(parseExplainRequest(site, { dst: '2001:db8::1', iif: 'lan0' })).toEqual({
      ok: false,
      message:
        '--src: required with --iif (a forwarded packet already has a source); write e.g. --src 2001:db8:99::10',
    });
  });

  it('an inbound connection: sport defaults, DNAT target with its port', () => {
    expect(
      parseExplainRequest(site, {
        dst: '198.51.100.2',
        src: '192.0.2.9',
        iif: 'wan1',
        proto: 'tcp',
        dport: '443',
        inbound: true,
        dnatTo: '172.20.2.10:8443',
      }),
    ).toEqual({
      ok: true,
      value: {
        packet: {
          dst: '198.51.100.2',
          src: '192.0.2.9',
          iif: 'wan1',
          proto: 'tcp',
          sport: 40000,
          dport: 443,
        },
        down: [],
        inbound: { dnatTo: '172.20.2.10', dnatPort: 8443 },
      },
    });
  });

  it("the router's own packet: no iif, source optional, uid applies", () => {
    expect(parseExplainRequest(site, { dst: '203.0.113.25', uid: '108', proto: 'ICMP' })).toEqual({
      ok: true,
      value: { packet: { dst: '203.0.113.25', uid: 108, proto: 'icmp' }, down: [] },
    });
  });

  const DST = { dst: '203.0.113.25' };
  it.each<[string, RawExplainOptions, string]>([
    ['no --dst', {}, '--dst: required; write the destination address, e.g. --dst 203.0.113.25'],
    [
      'bad --dst',
      { dst: '203.0.113.256' },
      '--dst: "203.0.113.256" is not an IPv4 address; write e.g. 198.51.100.1',
    ],
    [
      'IPv6 --dst with an IPv4 --src',
      { dst: '2001:db8::1', src: '172.20.2.50' },
      "--src 172.20.2.50: --dst 2001:db8::1 is IPv6; a packet's source and destination are one family, write an IPv6 source",
    ],
    [
      'IPv4 --dst with an IPv6 --src',
      { ...DST, src: '2001:db8::5' },
      "--src 2001:db8::5: --dst 203.0.113.25 is IPv4; a packet's source and destination are one family, write an IPv4 source",
    ],
    [
      '--down NAME:ipv6 of a provider without ipv6:',
      { ...DST, down: ['isp1:ipv6'] },
      '--down isp1:ipv6: not a provider of site s1; write one of isp1, isp2',
    ],
    ['bad --src', { ...DST, src: 'lan' }, '--src: "lan" is not an IPv4 address; write e.g. 198.51.100.1'],
    [
      '--iif without --src',
      { ...DST, iif: 'lan0' },
      '--src: required with --iif (a forwarded packet already has a source); write e.g. --src 172.20.2.50',
    ],
    [
      'unknown --iif',
      { ...DST, src: '172.20.2.50', iif: 'eth9' },
      '--iif eth9: not an interface of site s1; write one of lan0, wan1, wan2',
    ],
    [
      '--iif lo',
      { ...DST, iif: 'lo' },
      "--iif lo: leave --iif out to ask about the router's own traffic (the kernel uses iif lo for it)",
    ],
    ['bad --proto', { ...DST, proto: 'sctp' }, '--proto sctp: write tcp, udp, icmp (IPv4) or icmpv6 (IPv6)'],
    [
      'icmpv6 to an IPv4 address',
      { ...DST, proto: 'icmpv6' },
      '--proto icmpv6: ICMP for IPv6 needs an IPv6 packet; give an IPv6 --dst, or --proto icmp',
    ],
    [
      'icmp to an IPv6 address',
      { dst: '2001:db8:99::10', proto: 'icmp' },
      "--proto icmp: ICMPv4 is not an IPv6 packet's; write --proto icmpv6",
    ],
    [
      'port out of range',
      { ...DST, proto: 'tcp', dport: '65536' },
      '--dport 65536: write a port number from 1 to 65535',
    ],
    [
      'port not a number',
      { ...DST, proto: 'udp', sport: 'http' },
      '--sport http: write a port number from 1 to 65535',
    ],
    [
      'port without proto',
      { ...DST, dport: '25' },
      '--dport 25: only TCP and UDP have ports; add --proto tcp or --proto udp',
    ],
    [
      'port with icmp',
      { ...DST, proto: 'icmp', dport: '25' },
      '--dport 25: only TCP and UDP have ports; add --proto tcp or --proto udp',
    ],
    ['bad --uid', { ...DST, uid: '-1' }, '--uid -1: write a numeric user id, e.g. --uid 108'],
    [
      '--uid with --iif',
      { ...DST, src: '172.20.2.50', iif: 'lan0', uid: '108' },
      "--uid 108: only the router's own traffic has a uid (forwarded packets carry uid 0); leave out --iif or --uid",
    ],
    [
      'bad --mark',
      { ...DST, mark: '0xg' },
      '--mark 0xg: write a 32-bit mark in hex or decimal, e.g. 0x1 or 256',
    ],
    [
      '--dnat-to without --inbound',
      { ...DST, dnatTo: '172.20.2.10' },
      '--dnat-to 172.20.2.10: only for --inbound (a connection arriving on an uplink)',
    ],
    [
      '--inbound without --iif',
      { ...DST, inbound: true },
      '--inbound: write the interface it arrives on and the remote peer, e.g. --iif wan1 --src 203.0.113.9',
    ],
    [
      '--inbound without --dport',
      { ...DST, inbound: true, iif: 'wan1', src: '192.0.2.9', proto: 'tcp' },
      '--inbound: add --dport, the port the peer connected to',
    ],
    [
      'bad --dnat-to',
      {
        ...DST,
        inbound: true,
        iif: 'wan1',
        src: '192.0.2.9',
        proto: 'tcp',
        dport: '443',
        dnatTo: '172.20.2.10:0',
      },
      "--dnat-to 172.20.2.10:0: write the LAN host it is forwarded to, IP or IP:PORT (IPv6: [IP]:PORT), of the packet's family (IPv4), e.g. 172.20.40.10:443",
    ],
    [
      'unknown --down',
      { ...DST, down: ['isp3'] },
      '--down isp3: not a provider of site s1; write one of isp1, isp2',
    ],
  ])('%s', (_, raw, message) => {
    expect(parseExplainRequest(site, raw)).toEqual({ ok: false, message });
  });
});

describe('parseMark', () => {
  it.each([
    ['0x1', 1],
    ['0XfF00', 0xff00],
    ['256', 256],
    ['0', 0],
    ['0xffffffff', 0xffffffff],
    ['4294967295', 0xffffffff],
    ['0x100000000', undefined],
    ['4294967296', undefined],
    ['010', undefined],
    ['-1', undefined],
    ['', undefined],
  ])('%s → %s', (text, value) => {
    expect(parseMark(text)).toBe(value);
  });
});
