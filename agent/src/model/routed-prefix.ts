/**
 * What makes an IPv6 prefix one an ISP can route to a site — for a prefix the spec lists and
 * for one a DHCPv6 client reports as delegated (D155), so the controller's validation and the
 * agent refuse the same ones (D89). Pure.
 */
import ipaddr from 'ipaddr.js';

/** Why `cidr` (canonical `address/length`) cannot be a prefix routed to a site, or undefined. */
export function routedPrefixProblem(cidr: string): string | undefined {
  const slash = cidr.indexOf('/');
  const address = cidr.slice(0, slash);
  const length = Number(cidr.slice(slash + 1));
  if (length === 0)
    return 'is the whole IPv6 space; write the prefix the ISP routes to you, e.g. 2001:db8:1::/48';
  const range = ipaddr.IPv6.parse(address).range();
  if (range === 'linkLocal') return 'is link-local; routed prefixes are global (e.g. 2001:db8:1::/48)';
  if (range === 'multicast') return 'is multicast; routed prefixes are global unicast';
  if (length > 64)
    return `is a /${length}; a LAN needs at least a /64, write the prefix the ISP routes (e.g. /48 or /56)`;
  return undefined;
}
