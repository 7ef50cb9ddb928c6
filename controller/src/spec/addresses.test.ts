import { describe, expect, it } from 'vitest';
import { checkAddress, checkInterfaceAddress, checkNetwork, contains } from './addresses.js';

describe('checkAddress', () => {
  it.each([
    ['198.51.100.1', { ok: true, value: '198.51.100.1' }],
    ['0.0.0.0', { ok: true, value: '0.0.0.0' }],
    ['255.255.255.255', { ok: true, value: '255.255.255.255' }],
    [
      '198.51.100.256',
      { ok: false, message: '"198.51.100.256" is not an IPv4 address; write e.g. 198.51.100.1' },
    ],
    [
      '198.51.100',
      { ok: false, message: '"198.51.100" is not in dotted-quad form; write e.g. 198.51.0.100' },
    ],
    [
      '0xc6.51.100.1',
      { ok: false, message: '"0xc6.51.100.1" is not in dotted-quad form; write e.g. 198.51.100.1' },
    ],
    [
      '2001:db8::1',
      { ok: false, message: '"2001:db8::1" is IPv6; this field takes an IPv4 address', ipv6: true },
    ],
    [
      'gw.example.net',
      { ok: false, message: '"gw.example.net" is not an IPv4 address; write e.g. 198.51.100.1' },
    ],
  ])('%s', (text, expected) => {
    expect(checkAddress(text)).toEqual(expected);
  });
});

describe('checkNetwork', () => {
  it.each([
    ['203.0.113.0/24', { ok: true, value: '203.0.113.0/24' }],
    ['203.0.113.7', { ok: true, value: '203.0.113.7/32' }],
    ['0.0.0.0/0', { ok: true, value: '0.0.0.0/0' }],
    ['203.0.113.7/24', { ok: false, message: '"203.0.113.7/24" has host bits set; write 203.0.113.0/24' }],
    [
      '203.0.113.0/33',
      { ok: false, message: '"203.0.113.0/33" has an invalid prefix length; write /0 to /32' },
    ],
    [
      '2001:db8::/32',
      { ok: false, message: '"2001:db8::/32" is IPv6; this field takes an IPv4 address', ipv6: true },
    ],
  ])('%s', (text, expected) => {
    expect(checkNetwork(text)).toEqual(expected);
  });
});

describe('checkInterfaceAddress', () => {
  it('keeps host bits: an interface address is a host in its subnet', () => {
    expect(checkInterfaceAddress('198.51.100.2/30')).toEqual({
      ok: true,
      value: { address: '198.51.100.2', prefixLength: 30 },
    });
  });
});

describe('contains', () => {
  it.each([
    ['198.51.100.0/30', '198.51.100.1', true],
    ['198.51.100.0/30', '198.51.100.3', true],
    ['198.51.100.0/30', '198.51.100.4', false],
    ['192.0.2.128/25', '192.0.2.255', true],
    ['192.0.2.128/25', '192.0.2.127', false],
    ['203.0.113.7/32', '203.0.113.7', true],
    ['203.0.113.7/32', '203.0.113.6', false],
    ['0.0.0.0/0', '255.255.255.255', true],
    ['128.0.0.0/1', '127.255.255.255', false],
  ])('%s ∋ %s: %s', (cidr, address, expected) => {
    expect(contains(cidr, address)).toBe(expected);
  });
});
