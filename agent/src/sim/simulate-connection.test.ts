import { describe, expect, it } from 'vitest';
import { siteView, TRACK_NFT } from '../../../test/support/sim-fixtures.js';
import { diffVerdicts, formatUplinkChoice, mapVerdictToProvider } from './map-verdict-to-provider.js';
import { simulateConnection } from './simulate-connection.js';
import { simulatePacket } from './simulate-packet.js';

const PROVIDERS = [
  { name: 'isp1', interface: 'eth1' },
  { name: 'isp2', interface: 'ppp0' },
];

describe('simulateConnection', () => {
  it('a local service answers by the uplink the connection arrived on', () => {
    const result = simulateConnection(
      siteView(),
      { src: '203.0.113.50', dst: '198.51.100.20', iif: 'ppp0', proto: 'tcp', sport: 40000, dport: 22 },
      { multipathHash: 0 },
    );
    expect(result.inbound.verdict.kind).toBe('local');
    expect(result.ctMark).toBe(0x200);
    expect(result.reply?.verdict).toMatchObject({ kind: 'forward', dev: 'ppp0', src: '198.51.100.20' });
  });

  it('a DNAT’d LAN server answers by the uplink the connection arrived on, despite a source policy', () => {
    // siteView has `from 172.20.1.0/24 lookup 101` (isp1) at 10020; the track rule at 1001 wins.
    const result = simulateConnection(siteView(), {
      src: '203.0.113.50',
      dst: '198.51.100.20',
      iif: 'ppp0',
      proto: 'tcp',
      sport: 40000,
      dport: 443,
      dnatTo: '172.20.1.10',
    });
    expect(result.inbound.verdict).toMatchObject({ kind: 'forward', dev: 'eth0', ctMark: 0x200 });
    expect(result.replyPacket).toMatchObject({
      iif: 'eth0',
      src: '172.20.1.10',
      sport: 443,
      replyNatSrc: '198.51.100.20',
    });
    expect(result.reply?.verdict).toMatchObject({
      kind: 'forward',
      dev: 'ppp0',
      src: '198.51.100.20',
      rulePriority: 1001,
    });
    expect(mapVerdictToProvider(result.reply!.verdict, PROVIDERS)).toEqual({
      kind: 'provider',
      provider: 'isp2',
      dev: 'ppp0',
    });
  });

  it('without track the DNAT’d reply follows the source policy and leaves by the wrong uplink', () => {
    const view = siteView({ nft: TRACK_NFT.filter((r) => r.kind !== 'track-save') });
    const result = simulateConnection(view, {
      src: '203.0.113.50',
      dst: '198.51.100.20',
      iif: 'ppp0',
      proto: 'tcp',
      sport: 40000,
      dport: 443,
      dnatTo: '172.20.1.10',
    });
    expect(result.reply?.verdict).toMatchObject({ dev: 'eth1', src: '198.51.100.20' });
  });

  it('a dropped first packet has no reply', () => {
    const view = siteView({
      interfaces: siteView().interfaces.map((i) => (i.name === 'ppp0' ? { ...i, rpFilter: 1 as const } : i)),
    });
    const result = simulateConnection(view, {
      src: '203.0.113.50',
      dst: '172.20.1.10',
      iif: 'ppp0',
      proto: 'udp',
      sport: 5000,
      dport: 53,
    });
    expect(result.inbound.verdict.kind).toBe('martian');
    expect(result.reply).toBeNull();
  });
});

describe('mapVerdictToProvider', () => {
  const view = siteView();
  it.each([
    {
      name: 'single uplink',
      packet: { iif: 'eth0', src: '172.20.1.5', dst: '198.51.100.7' },
      text: 'isp1 (eth1)',
    },
    {
      name: 'balanced',
      packet: { iif: 'eth3', src: '172.20.2.5', dst: '198.51.100.7' },
      text: 'balanced: isp1 80%, isp2 20%',
    },
    { name: 'LAN', packet: { iif: 'eth3', src: '172.20.2.5', dst: '172.20.1.9' }, text: 'no uplink (eth0)' },
    { name: 'local', packet: { iif: 'eth3', src: '172.20.2.5', dst: '172.20.1.1' }, text: 'this router' },
  ])('$name', ({ packet, text }) => {
    expect(formatUplinkChoice(mapVerdictToProvider(simulatePacket(view, packet).verdict, PROVIDERS))).toBe(
      text,
    );
  });

  it('dropped', () => {
    const v = simulatePacket(view, { dst: '198.51.100.7', iif: 'eth9', src: '172.20.1.5' }).verdict;
    expect(mapVerdictToProvider(v, PROVIDERS)).toEqual({ kind: 'dropped', verdict: 'invalid' });
  });
});

describe('diffVerdicts', () => {
  it('is empty for the same path and names what changed otherwise', () => {
    const packet = { dst: '203.0.113.50', proto: 'udp' as const, uid: 108 };
    const before = simulatePacket(siteView(), packet).verdict;
    expect(diffVerdicts(before, simulatePacket(siteView(), packet).verdict)).toEqual([]);
    const withoutUidRule = siteView();
    const after = simulatePacket(
      { ...withoutUidRule, rules: withoutUidRule.rules.filter((r) => r.priority !== 10000) },
      packet,
      { multipathHash: 0 },
    ).verdict;
    expect(diffVerdicts(before, after)).toEqual([
      'dev: ppp0 → eth1',
      'gateway: (none) → 192.0.2.1',
      'source: 198.51.100.20 → 192.0.2.10',
    ]);
  });
});
