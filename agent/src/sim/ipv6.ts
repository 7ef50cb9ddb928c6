/**
 * IPv6 addresses as unsigned 128-bit bigints, parsed and formatted with ipaddr.js (the
 * project's address library; formatting is RFC 5952, as `ip -6` prints).
 */
import ipaddr from 'ipaddr.js';
import { AddressError } from './ipv4.js';

const ALL = (1n << 128n) - 1n;

/** The address, or -1n when `text` is not an IPv6 address (zone ids are refused). */
export function tryParseIpv6(text: string): bigint {
  if (text.includes('%') || !ipaddr.IPv6.isValid(text)) return -1n;
  let value = 0n;
  for (const b of ipaddr.IPv6.parse(text).toByteArray()) value = (value << 8n) | BigInt(b);
  return value;
}

export function parseIpv6(text: string): bigint {
  const value = tryParseIpv6(text);
  if (value < 0n) throw new AddressError(`${text}: not an IPv6 address (write e.g. 2001:db8::1)`);
  return value;
}

export function prefixMask6(length: number): bigint {
  return length === 0 ? 0n : (ALL << BigInt(128 - length)) & ALL;
}

/** Parse `addr/len` into network (host bits must be zero) and mask. */
export function parseIpv6Cidr(text: string): { network: bigint; mask: bigint; length: number } {
  const slash = text.indexOf('/');
  if (slash < 0) throw new AddressError(`${text}: not an IPv6 CIDR (write e.g. 2001:db8::/32)`);
  const address = parseIpv6(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  const length = Number(lengthText);
  if (!/^\d{1,3}$/.test(lengthText) || length > 128) {
    throw new AddressError(`${text}: prefix length must be 0–128`);
  }
  const mask = prefixMask6(length);
  if ((address & mask) !== address) {
    throw new AddressError(`${text}: host bits set (write ${formatIpv6(address & mask)}/${length})`);
  }
  return { network: address, mask, length };
}

export function formatIpv6(value: bigint): string {
  const bytes: number[] = new Array(16);
  let v = value;
  for (let i = 15; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

export function formatCidr6(network: bigint, length: number): string {
  return length === 0 ? 'default' : `${formatIpv6(network)}/${length}`;
}

/** Leading bits `a` and `b` have in common (ipv6_addr_diff). */
export function commonPrefixLength(a: bigint, b: bigint): number {
  const x = a ^ b;
  if (x === 0n) return 128;
  return 128 - x.toString(2).length;
}

export function isLinkLocal6(a: bigint): boolean {
  return a >> 118n === 0x3fan;
}

export function isMulticast6(a: bigint): boolean {
  return a >> 120n === 0xffn;
}

export const LOOPBACK6 = 1n;
