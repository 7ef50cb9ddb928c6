/** IPv4 and IPv6 address and CIDR checks with messages that say what to write instead (ipaddr.js does the math). */
import ipaddr from 'ipaddr.js';

/** `ipv6` marks a well-formed IPv6 value, so callers do not offer IPv4 alternatives to it. */
export type Checked<T> = { ok: true; value: T } | { ok: false; message: string; ipv6?: true };

/** Canonical dotted quad (no leading zeros): the common case, checked without ipaddr's IPv6 attempt. */
const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function checkAddress(text: string): Checked<string> {
  if (DOTTED_QUAD.test(text)) return { ok: true, value: text };
  if (!ipaddr.isValid(text))
    return { ok: false, message: `"${text}" is not an IPv4 address; write e.g. 198.51.100.1` };
  const addr = ipaddr.parse(text);
  if (addr.kind() === 'ipv6')
    return {
      ok: false,
      message: `"${text}" is IPv6; this field takes an IPv4 address`,
      ipv6: true,
    };
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { ok: false, message: `"${text}" is not in dotted-quad form; write e.g. ${addr.toString()}` };
  }
  return { ok: true, value: addr.toString() };
}

/** A network: `192.0.2.0/24`; a bare address means /32. Host bits must be zero. */
export function checkNetwork(text: string): Checked<string> {
  if (!text.includes('/')) {
    const a = checkAddress(text);
    return a.ok ? { ok: true, value: `${a.value}/32` } : a;
  }
  const [addrText, lenText] = text.split('/', 2) as [string, string];
  const a = checkAddress(addrText);
  // Quote what was written (2001:db8::/32), not just its address part.
  if (!a.ok) return { ...a, message: a.message.replace(`"${addrText}"`, `"${text}"`) };
  const len = Number(lenText);
  if (!/^\d{1,2}$/.test(lenText) || len > 32) {
    return { ok: false, message: `"${text}" has an invalid prefix length; write /0 to /32` };
  }
  const network = ipaddr.IPv4.networkAddressFromCIDR(`${a.value}/${len}`).toString();
  if (network !== a.value) {
    return { ok: false, message: `"${text}" has host bits set; write ${network}/${len}` };
  }
  return { ok: true, value: `${network}/${len}` };
}

/** An interface address with prefix: `198.51.100.2/30` (host bits allowed, it is a host). */
export function checkInterfaceAddress(text: string): Checked<{ address: string; prefixLength: number }> {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return { ok: false, message: `"${text}" needs a prefix length; write e.g. 198.51.100.2/30` };
  const a = checkAddress(m[1]!);
  if (!a.ok) return a;
  const prefixLength = Number(m[2]);
  if (prefixLength > 32)
    return { ok: false, message: `"${text}" has an invalid prefix length; write /0 to /32` };
  return { ok: true, value: { address: a.value, prefixLength } };
}

export function networkOf(address: string, prefixLength: number): string {
  return `${ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefixLength}`).toString()}/${prefixLength}`;
}

/** Whether the IPv4 `address` lies in `cidr` (both already checked): integer math, it runs per provider. */
export function contains(cidr: string, address: string): boolean {
  const [net, len] = cidr.split('/') as [string, string];
  const mask = Number(len) === 0 ? 0 : (~0 << (32 - Number(len))) >>> 0;
  return (ipv4ToInt(address) & mask) >>> 0 === (ipv4ToInt(net) & mask) >>> 0;
}

function ipv4ToInt(address: string): number {
  const [a, b, c, d] = address.split('.').map(Number) as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function overlaps(a: string, b: string): boolean {
  const [na, la] = ipaddr.parseCIDR(a);
  const [nb, lb] = ipaddr.parseCIDR(b);
  return la <= lb ? nb.match(na, la) : na.match(nb, lb);
}

/** An IPv6 address in canonical (RFC 5952) form; `%zone` suffixes are the caller's business. */
export function checkAddress6(text: string): Checked<string> {
  if (!ipaddr.IPv6.isValid(text)) {
    return ipaddr.IPv4.isValid(text)
      ? { ok: false, message: `"${text}" is IPv4; write an IPv6 address, e.g. 2001:db8::1` }
      : { ok: false, message: `"${text}" is not an IPv6 address; write e.g. 2001:db8::1` };
  }
  return { ok: true, value: ipaddr.IPv6.parse(text).toRFC5952String() };
}

/** An IPv6 network `2001:db8::/48`; a bare address is a /128. Host bits must be zero. */
export function checkNetwork6(text: string): Checked<string> {
  const [addrText, lenText = '128'] = text.split('/', 2) as [string, string | undefined];
  const a = checkAddress6(addrText);
  if (!a.ok) return { ...a, message: a.message.replace(`"${addrText}"`, `"${text}"`) };
  const len = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || len > 128) {
    return { ok: false, message: `"${text}" has an invalid prefix length; write /0 to /128` };
  }
  const network = networkOf6(a.value, len);
  if (network !== `${a.value}/${len}`)
    return { ok: false, message: `"${text}" has host bits set; write ${network}` };
  return { ok: true, value: network };
}

/** An IPv6 interface address with prefix: `2001:db8:ff01::2/64`. */
export function checkInterfaceAddress6(text: string): Checked<{ address: string; prefixLength: number }> {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return { ok: false, message: `"${text}" needs a prefix length; write e.g. 2001:db8:ff01::2/64` };
  const a = checkAddress6(m[1]!);
  if (!a.ok) return a;
  const prefixLength = Number(m[2]);
  if (prefixLength > 128)
    return { ok: false, message: `"${text}" has an invalid prefix length; write /0 to /128` };
  return { ok: true, value: { address: a.value, prefixLength } };
}

/** A network of either family (policies, LAN subnets): IPv4 first, then IPv6. */
export function checkNetworkAny(text: string): Checked<string> & { family?: 'ipv4' | 'ipv6' } {
  if (text.includes(':')) {
    const c = checkNetwork6(text);
    return c.ok ? { ...c, family: 'ipv6' } : c;
  }
  const c = checkNetwork(text);
  return c.ok ? { ...c, family: 'ipv4' } : c;
}

export function networkOf6(address: string, prefixLength: number): string {
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${address}/${prefixLength}`).toString()}/${prefixLength}`;
}

/** Whether an IPv6 `address` lies in `cidr` (both checked). */
export function contains6(cidr: string, address: string): boolean {
  const [net, len] = ipaddr.IPv6.parseCIDR(cidr);
  return ipaddr.IPv6.parse(address).match(net, len);
}

export function isLinkLocal6(address: string): boolean {
  return ipaddr.IPv6.parse(address).range() === 'linkLocal';
}
