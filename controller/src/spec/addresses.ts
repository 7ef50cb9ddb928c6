/** IPv4 address and CIDR checks with messages that say what to write instead (ipaddr.js does the math). */
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
    return { ok: false, message: `"${text}" is IPv6; Uplink supports IPv4 only for now`, ipv6: true };
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
