/**
 * IPv4 addresses as unsigned 32-bit integers. View construction parses with ipaddr.js
 * (strict four-part decimal); the per-packet path uses `parseIpv4Fast`, which accepts
 * exactly the same strings without allocating.
 */
import ipaddr from 'ipaddr.js';

export class AddressError extends Error {
  override readonly name = 'AddressError';
}

/** Parse a dotted-quad IPv4 address with ipaddr.js; throws AddressError on anything else. */
export function parseIpv4(text: string): number {
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
    throw new AddressError(`${text}: not an IPv4 address (write four decimal octets, e.g. 192.0.2.1)`);
  }
  const b = ipaddr.IPv4.parse(text).toByteArray();
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/** Parse `a.b.c.d/len` into network (host bits must be zero) and mask. */
export function parseIpv4Cidr(text: string): { network: number; mask: number; length: number } {
  const slash = text.indexOf('/');
  if (slash < 0) {
    throw new AddressError(`${text}: not an IPv4 CIDR (write e.g. 192.0.2.0/24)`);
  }
  const address = parseIpv4(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  const length = Number(lengthText);
  if (!/^\d{1,2}$/.test(lengthText) || length > 32) {
    throw new AddressError(`${text}: prefix length must be 0–32`);
  }
  const mask = prefixMask(length);
  if ((address & mask) >>> 0 !== address) {
    throw new AddressError(`${text}: host bits set (write ${formatIpv4((address & mask) >>> 0)}/${length})`);
  }
  return { network: address, mask, length };
}

export function prefixMask(length: number): number {
  return length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
}

/**
 * Hot-path parser for packet addresses: strict dotted decimal (no leading zeros, as
 * ipaddr.js's four-part form), returns -1 when invalid.
 */
export function parseIpv4Fast(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let leadingZero = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (leadingZero) return -1;
      if (digits === 0 && c === 48) leadingZero = true;
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return -1;
      continue;
    } else {
      return -1;
    }
    leadingZero = false;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

export function formatCidr(network: number, length: number): string {
  return length === 0 ? 'default' : `${formatIpv4(network)}/${length}`;
}

export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}
