/**
 * A provider's `ipv6:` block (D180): one family per object, so every value here is IPv6 —
 * the address (static or `learned`), the gateway (global, link-local on the provider's own
 * interface, or `detect`), the prefixes the ISP routes to the site, and IPv6 probe targets.
 * Prefix sanity across providers (one ISP per prefix, a same-length prefix to map onto for
 * NPTv6) is `checkIpv6Prefixes`, run once the whole site's providers are known.
 */
import { LIMITS } from '#agent/model';
import {
  checkAddress6,
  checkInterfaceAddress6,
  checkNetwork6,
  contains6,
  isLinkLocal6,
  networkOf6,
  overlaps,
} from './addresses.js';
import type { Origin } from './merge-groups.js';
import type { ProviderIpv6Spec } from './spec-schema.js';
import type { ValidProvider, ValidProviderIpv6 } from './valid-site.js';

export function checkProviderIpv6(
  spec: ProviderIpv6Spec,
  context: { readonly label: string; readonly interface: string },
  at: (...path: (string | number)[]) => Origin,
  err: (origin: Origin, message: string) => void,
): ValidProviderIpv6 {
  const label = `${context.label}: ipv6`;
  let address: ValidProviderIpv6['address'] = null;
  if (spec.address !== undefined && spec.address !== 'learned') {
    const c = checkInterfaceAddress6(spec.address);
    if (!c.ok) err(at('address'), `${label}.address ${c.message}, or learned (SLAAC/DHCPv6)`);
    else if (isLinkLocal6(c.value.address))
      err(
        at('address'),
        `${label}.address ${c.value.address} is link-local; write the uplink's global address, or learned`,
      );
    else address = c.value;
  }

  let gateway: ValidProviderIpv6['gateway'] = { kind: 'detect' };
  if (spec.gateway === undefined) {
    err(
      at(),
      `${label}: gateway is required; write an address (2001:db8:ff01::1 or fe80::1) or detect (the router advertisement's)`,
    );
  } else if (spec.gateway !== 'detect') {
    const [text, zone] = spec.gateway.split('%', 2) as [string, string | undefined];
    const c = checkAddress6(text);
    if (!c.ok) err(at('gateway'), `${label}.gateway ${c.message}, or detect`);
    else if (isLinkLocal6(c.value)) {
      // A link-local next hop means nothing without its link: it is the provider's interface.
      if (zone !== undefined && zone !== context.interface)
        err(
          at('gateway'),
          `${label}.gateway ${spec.gateway} names interface ${zone}, but the provider's interface is ${context.interface}; write ${c.value} (or ${c.value}%${context.interface})`,
        );
      else gateway = { kind: 'static', address: c.value };
    } else if (zone !== undefined) {
      err(
        at('gateway'),
        `${label}.gateway ${spec.gateway}: only a link-local address takes %interface; write ${c.value}`,
      );
    } else {
      gateway = { kind: 'static', address: c.value };
      if (address !== null) {
        const net = networkOf6(address.address, address.prefixLength);
        if (!contains6(net, c.value) || c.value === address.address)
          err(
            at('gateway'),
            `${label}.gateway ${c.value} is not a neighbour inside ${net} (the subnet of address ${address.address}/${address.prefixLength}); write the ISP router's address there or its link-local address`,
          );
      }
    }
  }

  const prefixes: string[] = [];
  let prefixErrors = 0;
  const prefixError = (origin: Origin, message: string) => {
    prefixErrors++;
    err(origin, message);
  };
  for (const [i, text] of (spec.prefixes ?? []).entries()) {
    const c = checkNetwork6(text.includes('/') ? text : `${text}/128`);
    if (!c.ok) {
      prefixError(at('prefixes', i), `${label}.prefixes ${c.message}`);
      continue;
    }
    const problem = prefixProblem(c.value, Number(c.value.split('/')[1]));
    if (problem !== undefined) {
      prefixError(at('prefixes', i), `${label}.prefixes ${c.value} ${problem}`);
      continue;
    }
    const twin = prefixes.find((p) => overlaps(p, c.value));
    if (twin !== undefined) {
      err(
        at('prefixes', i),
        `${label}.prefixes ${c.value} overlaps ${twin}, listed before it; list each once`,
      );
      continue;
    }
    prefixes.push(c.value);
  }
  if (prefixes.length > LIMITS.ipv6Prefixes.max)
    err(
      at('prefixes'),
      `${label}.prefixes: ${prefixes.length} prefixes; the agent takes at most ${LIMITS.ipv6Prefixes.max}`,
    );

  const healthTargets: string[] = [];
  (spec.health?.targets ?? []).forEach((text, i) => {
    const c = checkAddress6(text);
    if (c.ok) healthTargets.push(c.value);
    else err(at('health', 'targets', i), `${label}.health.targets: ${c.message}`);
  });

  // A prefix already reported is left out of the NPTv6 check rather than reported twice.
  return { address, gateway, prefixes, npt: (spec.npt ?? true) && prefixErrors === 0, healthTargets };
}

/** Why a routed prefix cannot be one an ISP routes to a site, or undefined. */
function prefixProblem(cidr: string, length: number): string | undefined {
  if (length === 0)
    return 'is the whole IPv6 space; write the prefix the ISP routes to you, e.g. 2001:db8:1::/48';
  const address = cidr.split('/')[0]!;
  if (
    address.startsWith('fe8') ||
    address.startsWith('fe9') ||
    address.startsWith('fea') ||
    address.startsWith('feb')
  )
    return 'is link-local; routed prefixes are global (e.g. 2001:db8:1::/48)';
  if (address.startsWith('ff')) return 'is multicast; routed prefixes are global unicast';
  if (length > 64)
    return `is a /${length}; a LAN needs at least a /64, write the prefix the ISP routes (e.g. /48 or /56)`;
  return undefined;
}

/**
 * Across providers: a prefix comes from one ISP, and with NPTv6 on (the default) every other
 * provider's prefix needs a prefix of the same length here to be mapped onto — else LAN
 * hosts numbered from it lose IPv6 when their ISP fails (D181).
 */
export function checkIpv6Prefixes(
  providers: readonly ValidProvider[],
  prefixOrigin: (provider: string) => Origin,
  err: (origin: Origin, message: string) => void,
): void {
  const dual = providers.filter((p) => p.ipv6 !== undefined);
  for (const [i, p] of dual.entries()) {
    for (const other of dual.slice(0, i)) {
      for (const prefix of p.ipv6!.prefixes) {
        const clash = other.ipv6!.prefixes.find((o) => overlaps(o, prefix));
        if (clash !== undefined)
          err(
            prefixOrigin(p.name),
            `providers ${p.name}: ipv6.prefixes ${prefix} overlaps ${clash}, routed by provider ${other.name}; a prefix comes from one ISP`,
          );
      }
    }
  }
  for (const p of dual) {
    if (!p.ipv6!.npt) continue;
    const lengths = new Set(p.ipv6!.prefixes.map((c) => c.split('/')[1]));
    for (const other of dual) {
      if (other === p) continue;
      for (const prefix of other.ipv6!.prefixes) {
        const length = prefix.split('/')[1]!;
        if (lengths.has(length)) continue;
        err(
          prefixOrigin(p.name),
          p.ipv6!.prefixes.length === 0
            ? `providers ${p.name}: ipv6 has no prefixes, so hosts numbered from ${other.name}'s ${prefix} cannot fail over to it; list the prefix ${p.name} routes to the site under ipv6.prefixes, or write ipv6.npt: false`
            : `providers ${p.name}: NPTv6 maps ${other.name}'s ${prefix} onto a prefix of the same length, and ${p.name}'s (${p.ipv6!.prefixes.join(', ')}) are not /${length}; list a /${length} of ${p.name}'s, or write ipv6.npt: false`,
        );
      }
    }
  }
}
