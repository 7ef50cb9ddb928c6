/**
 * A provider's `ipv6:` block (D180): one family per object, so every value here is IPv6 —
 * the address (static or `learned`), the gateway (global, link-local on the provider's own
 * interface, or `detect`), the prefixes the ISP routes to the site, and IPv6 probe targets.
 * Prefix sanity across providers (one ISP per prefix, a same-length prefix to map onto for
 * NPTv6) is `checkIpv6Prefixes`, run once the whole site's providers are known.
 */
import { LIMITS, routedPrefixProblem } from '#agent/model';
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
  let delegated: ValidProviderIpv6['delegated'] = null;
  for (const [i, text] of (spec.prefixes ?? []).entries()) {
    if (/^delegated\b/.test(text)) {
      // DHCPv6-PD (D155): the router's client learns the prefix; the agent follows it.
      const match = /^delegated(?:\/(\d{1,3}))?$/.exec(text);
      const length = match?.[1] === undefined ? null : Number(match[1]);
      if (match === null || (length !== null && (length < 1 || length > 64)))
        prefixError(
          at('prefixes', i),
          `${label}.prefixes ${text}: write delegated (any length) or delegated/LEN with the length the ISP delegates, /1–/64 (e.g. delegated/56)`,
        );
      else if (delegated !== null)
        err(at('prefixes', i), `${label}.prefixes lists delegated twice; list it once`);
      else delegated = { length };
      continue;
    }
    const c = checkNetwork6(text.includes('/') ? text : `${text}/128`);
    if (!c.ok) {
      prefixError(at('prefixes', i), `${label}.prefixes ${c.message}`);
      continue;
    }
    const problem = routedPrefixProblem(c.value);
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
  return {
    address,
    gateway,
    prefixes,
    delegated,
    npt: (spec.npt ?? true) && prefixErrors === 0,
    healthTargets,
  };
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
    const own = p.ipv6!.delegated;
    const lengths = new Set(p.ipv6!.prefixes.map((c) => c.split('/')[1]));
    if (own !== null && own.length !== null) lengths.add(String(own.length));
    const hasPrefixes = p.ipv6!.prefixes.length > 0 || own !== null;
    for (const other of dual) {
      if (other === p) continue;
      const theirs = other.ipv6!.delegated;
      if (theirs !== null && theirs.length === null) {
        err(
          prefixOrigin(other.name),
          `providers ${other.name}: ipv6.prefixes delegated has no length, so NPTv6 onto ${p.name} cannot be checked or mapped; write delegated/LEN with the length the ISP delegates (e.g. delegated/56), or write ipv6.npt: false on ${p.name}`,
        );
        continue;
      }
      const wanted = [
        ...other.ipv6!.prefixes.map((prefix) => ({ prefix, length: prefix.split('/')[1]! })),
        ...(theirs === null ? [] : [{ prefix: `delegated/${theirs.length}`, length: String(theirs.length) }]),
      ];
      for (const { prefix, length } of wanted) {
        if (lengths.has(length)) continue;
        if (own !== null && own.length === null) {
          err(
            prefixOrigin(p.name),
            `providers ${p.name}: ipv6.prefixes delegated has no length, so NPTv6 cannot map ${other.name}'s ${prefix} onto it; write delegated/${length} if that is what the ISP delegates, or write ipv6.npt: false`,
          );
          continue;
        }
        err(
          prefixOrigin(p.name),
          !hasPrefixes
            ? `providers ${p.name}: ipv6 has no prefixes, so hosts numbered from ${other.name}'s ${prefix} cannot fail over to it; list the prefix ${p.name} routes to the site under ipv6.prefixes, or write ipv6.npt: false`
            : `providers ${p.name}: NPTv6 maps ${other.name}'s ${prefix} onto a prefix of the same length, and ${p.name}'s (${[...p.ipv6!.prefixes, ...(own === null ? [] : [`delegated/${own.length}`])].join(', ')}) are not /${length}; list a /${length} of ${p.name}'s, or write ipv6.npt: false`,
        );
      }
    }
  }
}
