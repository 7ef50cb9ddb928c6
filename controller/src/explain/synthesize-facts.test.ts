import { describe, expect, it } from 'vitest';
import { loadSite, MIXED } from '../../../test/support/explain-sites.js';
import { clientAddressIn, synthesizeFacts } from './synthesize-facts.js';

describe('synthesizeFacts', () => {
  const { facts, notes, standIns } = synthesizeFacts(loadSite(MIXED));

  it('gives LAN interfaces the first host of each subnet, LAN first, every interface up', () => {
    expect(Object.keys(facts.interfaces)).toEqual(['lan0', 'wan1', 'ppp0', 'wan2', 'wan3', 'wan4']);
    expect(facts.interfaces.lan0).toEqual({
      exists: true,
      up: true,
      addresses: [
        { address: '172.20.1.1', prefixLength: 24 },
        { address: '172.20.9.1', prefixLength: 28 },
      ],
    });
    expect(Object.values(facts.interfaces).every((i) => i.exists && i.up)).toBe(true);
  });

  it.each([
    // [provider interface, expected facts] — stand-ins are the provider's /30 in 100.64.0.0/10 by position
    ['wan1', { addresses: [{ address: '198.51.100.2', prefixLength: 30 }] }],
    ['ppp0', { addresses: [{ address: '100.64.0.6', prefixLength: 32, peer: '100.64.0.5' }] }],
    ['wan2', { addresses: [{ address: '100.64.0.10', prefixLength: 30 }], detectedGateway: '100.64.0.9' }],
    ['wan3', { addresses: [{ address: '203.0.113.10', prefixLength: 29 }], detectedGateway: '203.0.113.9' }],
    ['wan4', { addresses: [{ address: '192.0.2.76', prefixLength: 31 }] }],
  ])('%s', (name, expected) => {
    expect(facts.interfaces[name]).toEqual({ exists: true, up: true, ...expected });
  });

  it('says which addresses are stand-ins', () => {
    expect(notes).toEqual([
      'ppp has a dynamic address; 100.64.0.6 stands in for it (peer 100.64.0.5)',
      'dhcp has a dynamic address and gateway; 100.64.0.10 stands in for it, gateway 100.64.0.9',
      "fixed's gateway is detected on the router; 203.0.113.9 stands in for it",
      'gwonly has a dynamic address; 192.0.2.76 stands in for it (on-link with its gateway 192.0.2.77)',
    ]);
    // A detected gateway is a stand-in too, but the address is the spec's own.
    expect(standIns).toEqual(['ppp', 'dhcp', 'gwonly']);
  });

  it('is deterministic', () => {
    expect(synthesizeFacts(loadSite(MIXED))).toEqual({ facts, notes, standIns });
  });
});

describe('clientAddressIn', () => {
  it.each([
    ['172.20.1.0/24', '172.20.1.50'],
    ['172.20.9.0/28', '172.20.9.2'],
    ['192.0.2.8/31', '192.0.2.8'],
    ['192.0.2.9/32', '192.0.2.9'],
  ])('%s → %s', (subnet, address) => {
    expect(clientAddressIn(subnet)).toBe(address);
  });
});
