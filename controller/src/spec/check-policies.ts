/**
 * A site's policies: each checked on its own (selectors, marks, via), then laid out in the
 * policy band — consecutive rule priorities per policy, each block starting on a multiple of
 * POLICY_STRIDE so editing one policy rarely renumbers the next.
 */
import { checkNetworkAny } from './addresses.js';
import type { Merged, Origin } from './merge-groups.js';
import type { SiteCheck } from './site-check.js';
import type { PolicySpec } from './spec-schema.js';
import type { FleetDefaults, ValidPolicy } from './valid-site.js';

/** Policy blocks start on multiples of this, so editing one policy rarely renumbers the next. */
const POLICY_STRIDE = 10;
/** One policy's selector combinations × providers, as ip rules. */
export const MAX_RULES_PER_POLICY = 1000;

export function checkPolicies(
  check: SiteCheck,
  defaults: FleetDefaults,
  providerNames: ReadonlySet<string>,
  /** Some provider has a balance weight: `action: balance` has a route to go to. */
  balanced: boolean,
  lan: readonly { interface: string }[],
  markMask: number,
  /** Providers with an IPv6 half: a policy has IPv6 rules only through them (D180). */
  ipv6Providers: ReadonlySet<string> = new Set(),
  /** IPv6-only providers (`ipv4: false`, D165): a policy has no IPv4 rules through them. */
  ipv6OnlyProviders: ReadonlySet<string> = new Set(),
): ValidPolicy[] {
  const { site, err, field } = check;
  const [bandStart, bandEnd] = defaults.priorities.policy;
  let cursor = bandStart;
  const blocks: { name: string; start: number; end: number; explicit: boolean }[] = [];
  const policies: ValidPolicy[] = [];
  for (const item of site.policies) {
    const policy = checkPolicy(
      item,
      providerNames,
      balanced,
      lan,
      markMask,
      { ipv6: ipv6Providers, ipv6Only: ipv6OnlyProviders },
      (o, m) => err(o, m),
    );
    if (!policy) continue;
    const start = item.value.priority ?? cursor;
    const end = start + policy.ruleCount - 1;
    const outside = start < bandStart || end > bandEnd;
    if (outside && item.value.priority !== undefined) {
      // One message: the policies after it are laid out as if it were not there.
      err(
        field(item, 'priority'),
        `policies ${policy.name}: priority ${start}${end > start ? `–${end}` : ''} is outside the policy band ${bandStart}–${bandEnd} (fleet.yaml defaults.priorities.policy); choose a priority inside it, or leave priority out to place it after the policy before it`,
      );
      continue;
    }
    if (outside) {
      err(
        field(item, 'priority'),
        blocks.at(-1)?.explicit
          ? `policies ${policy.name}: follows policy ${blocks.at(-1)!.name} (priority ${blocks.at(-1)!.start}), which leaves no room after it in the band ${bandStart}–${bandEnd}; give ${policy.name} a priority: or move it before ${blocks.at(-1)!.name}`
          : `policies ${policy.name}: the policies need more rule priorities than the band ${bandStart}–${bandEnd} holds; widen defaults.priorities.policy in fleet.yaml`,
      );
    }
    for (const b of blocks) {
      if (start <= b.end && end >= b.start) {
        err(
          field(item, 'priority'),
          `policies ${policy.name}: ${span(start, end)} collide${start === end ? 's' : ''} with policy ${b.name} (${span(b.start, b.end)}); choose a priority after ${b.end}`,
        );
      }
    }
    blocks.push({ name: policy.name, start, end, explicit: item.value.priority !== undefined });
    cursor = Math.ceil((end + 1) / POLICY_STRIDE) * POLICY_STRIDE;
    policies.push({ ...policy, priority: start });
  }
  return policies;
}

function span(start: number, end: number): string {
  return start === end ? `priority ${start}` : `priorities ${start}–${end}`;
}

/** The low byte's bits outside Uplink's mask (or all bits outside it): a mask to suggest for policy marks. */
function lowByteOutside(markMask: number): number {
  const outside = ~markMask >>> 0;
  return outside & 0xff || outside;
}

function checkPolicy(
  item: Merged<PolicySpec>,
  providers: ReadonlySet<string>,
  balanced: boolean,
  lan: readonly { interface: string }[],
  markMask: number,
  families: { readonly ipv6: ReadonlySet<string>; readonly ipv6Only: ReadonlySet<string> },
  err: (origin: Origin, message: string) => void,
): Omit<ValidPolicy, 'priority'> | undefined {
  const ipv6Providers = families.ipv6;
  const p = item.value;
  const label = `policies ${p.name}`;
  const at = (name: string, ...rest: (string | number)[]): Origin => {
    const o = item.fields[name] ?? item.origin;
    return { parsed: o.parsed, path: [...o.path, ...rest] };
  };
  let ok = true;
  const fail = (origin: Origin, message: string) => {
    ok = false;
    err(origin, message);
  };
  const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

  const nets = (key: 'from' | 'to') =>
    list(p[key]).flatMap((text, i) => {
      const c = checkNetworkAny(text);
      if (c.ok) return [c.value];
      fail(at(key, ...(Array.isArray(p[key]) ? [i] : [])), `${label}: ${key} ${c.message}`);
      return [];
    });
  const from = nets('from');
  const to = nets('to');

  const ports = (key: 'dport' | 'sport') =>
    list(p[key]).flatMap((v, i) => {
      const origin = at(key, ...(Array.isArray(p[key]) ? [i] : []));
      const [a, b] = String(v).split('-').map(Number) as [number, number | undefined];
      const range = { start: a, end: b ?? a };
      if (!(range.start >= 1 && range.end <= 65535 && range.start <= range.end)) {
        fail(origin, `${label}: ${key} ${v} is not a port 1–65535 or a range low-high`);
        return [];
      }
      return [range];
    });
  const dport = ports('dport');
  const sport = ports('sport');
  if ((dport.length > 0 || sport.length > 0) && p.proto !== 'tcp' && p.proto !== 'udp') {
    fail(
      at(dport.length > 0 ? 'dport' : 'sport'),
      `${label}: ports need a protocol; add proto: tcp or proto: udp`,
    );
  }

  let uid: ValidPolicy['uid'] = null;
  if (p.uid !== undefined) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(String(p.uid));
    const start = m ? Number(m[1]) : Number.NaN;
    const end = m?.[2] !== undefined ? Number(m[2]) : start;
    if (!m || start > end || end > 0xffffffff)
      fail(at('uid'), `${label}: uid ${p.uid} must be a uid (108) or a range ("1000-1999")`);
    else uid = { start, end };
    if (p.traffic === 'forwarded')
      fail(
        at('uid'),
        `${label}: uid only matches traffic the router itself sends; remove uid or use traffic: local`,
      );
  }

  let mark: ValidPolicy['mark'] = null;
  if (p.mark !== undefined) {
    const m = /^(0x[0-9a-f]+|\d+)(?:\/(0x[0-9a-f]+|\d+))?$/i.exec(String(p.mark));
    if (!m) fail(at('mark'), `${label}: mark ${p.mark} must be a number or value/mask, e.g. 0x1/0xff`);
    else {
      const value = Number(m[1]);
      const mask = m[2] !== undefined ? Number(m[2]) : ~markMask >>> 0;
      // Bitwise operators truncate to 32 bits; refuse what they would silently wrap.
      if (value > 0xffffffff || mask > 0xffffffff) {
        fail(at('mark'), `${label}: mark ${p.mark} does not fit in 32 bits; a fwmark is 0–0xffffffff`);
      } else if ((mask & markMask) >>> 0 !== 0) {
        fail(
          at('mark'),
          `${label}: mark mask 0x${mask.toString(16)} overlaps Uplink's mark mask 0x${markMask.toString(16)}; match only bits outside it (0x${(~markMask >>> 0).toString(16)}), e.g. mark: 0x1/0x${lowByteOutside(markMask).toString(16)}`,
        );
      } else if ((value & ~mask) >>> 0 !== 0) {
        fail(at('mark'), `${label}: mark value ${m[1]} has bits outside its mask 0x${mask.toString(16)}`);
      } else mark = { value, mask };
    }
  }

  if (p.tos !== undefined && (p.tos < 0 || p.tos > 255 || (p.tos & 3) !== 0)) {
    fail(
      at('tos'),
      `${label}: tos ${p.tos} must be a DS field byte 0–252 with the two ECN bits clear (e.g. 0x10)`,
    );
  }

  const action = p.action ?? 'route';
  const via = p.via ?? [];
  if (action === 'route') {
    if (via.length === 0)
      fail(
        item.origin,
        `${label}: via is required; list the providers in order of preference, e.g. via: [isp1, isp2]`,
      );
    via.forEach((name, i) => {
      if (!providers.has(name)) {
        fail(
          at('via', i),
          `${label}: via names unknown provider "${name}"; known providers: ${[...providers].join(', ')}`,
        );
      }
    });
    if (new Set(via).size !== via.length)
      fail(at('via'), `${label}: via lists a provider twice; list each once`);
  } else if (via.length > 0) {
    fail(
      at('via'),
      `${label}: action ${action} does not route via providers; remove via or use action: route`,
    );
  } else if (action === 'balance' && !balanced) {
    fail(
      at('action'),
      `${label}: action balance sends the class to the balanced default route, but no provider has balance; give a provider balance: 1, or use action: main`,
    );
  }

  let iif: string[] = p.iif !== undefined ? [p.iif] : [];
  const traffic = p.traffic ?? 'all';
  if (traffic === 'local') {
    if (p.iif !== undefined)
      fail(at('iif'), `${label}: traffic: local means the router's own traffic (iif lo); remove iif`);
    iif = ['lo'];
  } else if (traffic === 'forwarded' && p.iif === undefined) {
    if (lan.length === 0)
      fail(at('traffic'), `${label}: traffic: forwarded needs LAN interfaces; declare lan: or set iif:`);
    iif = lan.map((l) => l.interface);
  }

  if (!ok) return undefined;
  // One family per rule (D180): each family's rules combine only its own addresses. With no
  // address selector a policy is about both; with some, about the families every listed
  // selector has addresses of.
  const v6 = (cidr: string) => cidr.includes(':');
  const count = (fromN: number, toN: number, viaN: number) =>
    Math.max(1, fromN) *
    Math.max(1, toN) *
    Math.max(1, iif.length) *
    Math.max(1, dport.length) *
    Math.max(1, sport.length) *
    (action === 'route' ? viaN : 1);
  const has = (list: readonly string[], ipv6: boolean) =>
    list.length === 0 || list.some((c) => v6(c) === ipv6);
  const addressed = from.length + to.length > 0;
  // `proto: icmp` is ICMPv4 (IP protocol 1), `icmpv6` ICMP for IPv6 (58): each matches one family.
  const icmp = p.proto === 'icmp';
  const icmp6 = p.proto === 'icmpv6';
  const wants4 = has(from, false) && has(to, false) && !(icmp6 && !addressed);
  const wants6 = has(from, true) && has(to, true) && !(icmp && !addressed);
  if (icmp6 && addressed && (from.some((c) => !v6(c)) || to.some((c) => !v6(c)))) {
    err(
      at(from.some((c) => !v6(c)) ? 'from' : 'to'),
      `${label}: proto icmpv6 is ICMP for IPv6 and matches no IPv4 packet; list IPv6 addresses only, or use proto: icmp for IPv4`,
    );
    return undefined;
  }
  if (icmp6 && ipv6Providers.size === 0) {
    err(
      at('proto'),
      `${label}: proto icmpv6 matches IPv6 packets, but no provider has ipv6:; add an ipv6: block to the providers that carry IPv6, or use proto: icmp`,
    );
    return undefined;
  }
  if (icmp && addressed && (from.some(v6) || to.some(v6))) {
    err(
      at(from.some(v6) ? 'from' : 'to'),
      `${label}: proto icmp is ICMPv4 and matches no IPv6 packet; list IPv4 addresses only, or leave proto out for IPv6`,
    );
    return undefined;
  }
  const via6 = via.filter((name) => ipv6Providers.has(name));
  const some6 = ipv6Providers.size > 0 && (action !== 'route' || via6.length > 0);
  const via4 = via.filter((name) => !families.ipv6Only.has(name));
  const with4 = [...providers].filter((name) => !families.ipv6Only.has(name));
  const some4 = with4.length > 0 && (action !== 'route' || via4.length > 0);
  if (addressed && !wants4 && !wants6) {
    err(
      at(from.length > 0 ? 'to' : 'from'),
      `${label}: from and to are of different families (IPv4 and IPv6); a rule matches one family, so list addresses of the same family in both (or split the policy in two)`,
    );
    return undefined;
  }
  if (addressed && wants6 && !wants4 && !some6) {
    err(
      at(from.some(v6) ? 'from' : 'to'),
      ipv6Providers.size === 0
        ? `${label}: IPv6 addresses, but no provider has ipv6:; add an ipv6: block to the providers that carry IPv6`
        : `${label}: IPv6 addresses, but none of via (${via.join(', ')}) has ipv6:; route it via ${[...ipv6Providers].join(', ')}`,
    );
    return undefined;
  }
  if (addressed && wants4 && !wants6 && !some4) {
    err(
      at(from.length > 0 ? 'from' : 'to'),
      `${label}: IPv4 addresses, but ${via.join(', ')} ${via.length === 1 ? 'is' : 'are'} IPv6-only (ipv4: false); ${with4.length > 0 ? `route it via ${with4.join(', ')}` : 'no provider carries IPv4'}`,
    );
    return undefined;
  }
  const ruleFamilies: ('inet' | 'inet6')[] = [];
  if (wants4 && some4) ruleFamilies.push('inet');
  if (wants6 && some6) ruleFamilies.push('inet6');
  if (ruleFamilies.length === 0 && icmp6) {
    err(
      at('via'),
      `${label}: proto icmpv6 matches IPv6 packets, but none of via (${via.join(', ')}) has ipv6:; route it via ${[...ipv6Providers].join(', ')}`,
    );
    return undefined;
  }
  if (ruleFamilies.length === 0) {
    err(
      at(action === 'route' ? 'via' : 'action'),
      `${label}: matches IPv4 packets only, but ${via.join(', ')} ${via.length === 1 ? 'is' : 'are'} IPv6-only (ipv4: false); route it via ${with4.join(', ') || 'a provider with IPv4'}`,
    );
    return undefined;
  }
  const rules4 = ruleFamilies.includes('inet')
    ? count(from.filter((c) => !v6(c)).length, to.filter((c) => !v6(c)).length, via4.length)
    : 0;
  const rules6 = ruleFamilies.includes('inet6')
    ? count(from.filter(v6).length, to.filter(v6).length, via6.length)
    : 0;
  const ruleCount = Math.max(rules4, rules6);
  if (ruleCount > MAX_RULES_PER_POLICY) {
    err(
      item.origin,
      `${label}: expands to ${ruleCount} ip rules; split it or use wider prefixes (at most ${MAX_RULES_PER_POLICY} per policy)`,
    );
    return undefined;
  }
  return {
    name: p.name,
    from,
    to,
    iif,
    uid,
    proto: p.proto ?? null,
    dport,
    sport,
    tos: p.tos ?? null,
    mark,
    via,
    action,
    ruleCount,
    ...(ruleFamilies.length === 1 && ruleFamilies[0] === 'inet' ? {} : { families: ruleFamilies }),
  };
}
