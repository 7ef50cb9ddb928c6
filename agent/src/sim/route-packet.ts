import {
  type CompiledInterface,
  type CompiledNexthop,
  type CompiledRoute,
  type CompiledView,
  SCOPE_HOST,
  SCOPE_LINK,
} from './compile-view.js';
import type { Flow, Tracer } from './flow.js';
import { formatIpv4, hex, parseIpv4Fast } from './ipv4.js';
import { type FibOutcome, fibLookup, type TableHit } from './match-rules.js';
import type { Errno, VerdictKind } from './simulate-packet.js';
import type { Candidate, LookupPurpose } from './trace.js';

export function selectSourceAddress(
  cv: CompiledView,
  dev: string,
  gateway: number,
  scope: number,
): { address: number; reason: string } {
  const itf = cv.interfaces.get(dev);
  let first = 0;
  if (itf) {
    for (const a of itf.addresses) {
      if (a.secondary) continue;
      if (Math.min(a.scope, SCOPE_HOST) > scope) continue;
      if (gateway === 0 || ((a.match ^ gateway) & a.mask) === 0) {
        return {
          address: a.local,
          reason:
            gateway === 0
              ? `primary address of ${dev}`
              : `address of ${dev} in the subnet of gateway ${formatIpv4(gateway)}`,
        };
      }
      if (first === 0) first = a.local;
    }
  }
  if (first !== 0) {
    return {
      address: first,
      reason: `primary address of ${dev} (none is in the subnet of gateway ${formatIpv4(gateway)})`,
    };
  }
  for (const other of cv.interfaceOrder) {
    for (const a of other.addresses) {
      if (!a.secondary && a.scope !== SCOPE_LINK && a.scope <= scope) {
        return {
          address: a.local,
          reason: `${dev} has no usable address; first global address (on ${other.name})`,
        };
      }
    }
  }
  return { address: 0, reason: `no usable address on any interface` };
}

/** fib_result_prefsrc: the route's src, else inet_select_addr on the nexthop. */
export function prefsrcFor(
  cv: CompiledView,
  route: CompiledRoute,
  nh: CompiledNexthop,
): { address: number; reason: string } {
  if (route.prefsrc !== 0) return { address: route.prefsrc, reason: `the route's src` };
  return selectSourceAddress(cv, nh.dev, nh.gateway, route.scope);
}

/** fib_select_multipath: the first alive nexthop whose upper bound is ≥ the hash. */
export function pickNexthop(nexthops: readonly CompiledNexthop[], hash: number): number {
  for (let i = 0; i < nexthops.length; i++) if (hash <= nexthops[i]!.upperBound) return i;
  return nexthops.length - 1;
}

export interface PathOutcome {
  readonly kind: VerdictKind;
  readonly errno?: Errno;
  readonly fib: FibOutcome | null;
  readonly dev?: string;
  readonly gateway?: number;
  readonly src: number;
  readonly candidates?: readonly Candidate[];
  readonly reason?: string;
}

export function describeNexthops(
  cv: CompiledView,
  route: CompiledRoute,
  nexthops: readonly CompiledNexthop[],
  withSource: boolean,
): Candidate[] {
  return nexthops.map((nh) => ({
    dev: nh.dev,
    ...(nh.gateway ? { gateway: formatIpv4(nh.gateway) } : {}),
    weight: nh.weight,
    ...(withSource ? { src: formatIpv4(prefsrcFor(cv, route, nh).address) } : {}),
  }));
}

/** Chooses the path of a unicast result; multipath without a hash yields candidates only. */
export function choosePath(
  cv: CompiledView,
  hit: TableHit,
  hash: number | undefined,
  t: Tracer | null,
  withSource: boolean,
): { nh: CompiledNexthop | null; candidates?: Candidate[] } {
  const nexthops = hit.nexthops;
  if (nexthops.length === 1) return { nh: nexthops[0]! };
  const candidates = describeNexthops(cv, hit.route, nexthops, withSource);
  if (hash === undefined) {
    if (t) {
      t.push({
        step: 'nexthop',
        candidates,
        chosen: null,
        text: `multipath: ${candidates.map((c) => `${c.dev} weight ${c.weight}`).join(', ')} — the kernel picks by flow hash (pass multipathHash to pick one)`,
      });
    }
    return { nh: null, candidates };
  }
  const i = pickNexthop(nexthops, hash >>> 0);
  if (t) {
    t.push({
      step: 'nexthop',
      candidates,
      chosen: i,
      text: `multipath: hash ${hex(hash)} picks ${nexthops[i]!.dev} (of ${candidates.map((c) => `${c.dev} weight ${c.weight}`).join(', ')})`,
    });
  }
  return { nh: nexthops[i]!, candidates };
}

export function fibFailure(fib: FibOutcome): PathOutcome {
  return { kind: fib.kind, errno: fib.errno === 0 ? undefined : fib.errno, fib, src: 0, reason: fib.reason };
}

/** ip_route_output_key_hash_rcu for a flow whose src may be 0 (unbound). */
export function routeOutput(
  cv: CompiledView,
  f: Flow,
  t: Tracer | null,
  hash: number | undefined,
  purpose: LookupPurpose,
): PathOutcome {
  const fib = fibLookup(cv, f, t, purpose);
  if (fib.errno !== 0) {
    if (f.oif !== null) {
      // "Apparently, routing tables are wrong. Assume that the destination is on link."
      if (isLoopback(f.src)) return loopbackSourceOut(fib, f.src, f.oif, t);
      const src = f.src !== 0 ? f.src : selectSourceAddress(cv, f.oif, 0, SCOPE_LINK).address;
      if (t)
        t.push({
          step: 'note',
          text: `no route, but the socket is bound to ${f.oif}: the kernel assumes the destination is on-link`,
        });
      return { kind: 'forward', fib, dev: f.oif, src };
    }
    return fibFailure(fib);
  }
  const hit = fib.hit!;
  if (hit.route.type === 'local') {
    const src = f.src !== 0 ? f.src : hit.route.prefsrc !== 0 ? hit.route.prefsrc : f.dst;
    return { kind: 'local', fib, dev: 'lo', src };
  }
  if (hit.route.type === 'broadcast') {
    const dev = hit.nexthops[0]!.dev;
    const src = f.src !== 0 ? f.src : hit.route.prefsrc;
    if (isLoopback(src) && dev !== 'lo') return loopbackSourceOut(fib, src, dev, t);
    return { kind: 'broadcast', fib, dev, src, reason: broadcastReason(f.dst, dev) };
  }
  const path = f.oif !== null ? { nh: hit.nexthops[0]! } : choosePath(cv, hit, hash, t, f.src === 0);
  if (!path.nh) {
    if (isLoopback(f.src)) return loopbackSourceOut(fib, f.src, path.candidates![0]!.dev, t);
    const srcs = new Set(path.candidates!.map((c) => c.src));
    const src =
      f.src !== 0
        ? f.src
        : srcs.size === 1 && hit.route.prefsrc === 0
          ? parseIpv4Fast([...srcs][0]!)
          : hit.route.prefsrc;
    return { kind: 'forward', fib, src, candidates: path.candidates };
  }
  // __mkroute_output: a loopback source may only leave by a loopback device.
  if (isLoopback(f.src) && path.nh.dev !== 'lo') return loopbackSourceOut(fib, f.src, path.nh.dev, t);
  let src = f.src;
  if (src === 0) {
    const chosen = prefsrcFor(cv, hit.route, path.nh);
    src = chosen.address;
    if (t)
      t.push({
        step: 'source',
        address: formatIpv4(src),
        text: `source ${formatIpv4(src)}: ${chosen.reason}`,
      });
  }
  return {
    kind: 'forward',
    fib,
    dev: path.nh.dev,
    gateway: path.nh.gateway,
    src,
    ...(path.candidates ? { candidates: path.candidates } : {}),
  };
}

/**
 * ip_route_input_slow / ip_route_output_key_hash_rcu: multicast, limited broadcast and
 * 0.0.0.0 are never a source. Since Linux 5.3 the rest of 0.0.0.0/8 is ordinary unicast
 * (ipv4_is_zeronet tests 0.0.0.0 only), and so is 240.0.0.0/4.
 */
export function isMartianSource(a: number): boolean {
  return a === 0 || a >>> 28 === 14 || a === 0xffffffff;
}

export function isLoopback(a: number): boolean {
  return a >>> 24 === 127;
}

export function loopbackSourceOut(fib: FibOutcome, src: number, dev: string, t: Tracer | null): PathOutcome {
  const reason = `source ${formatIpv4(src)} is a loopback address and may not leave by ${dev}`;
  if (t) t.push({ step: 'check', check: 'martian', passed: false, text: reason });
  return { kind: 'invalid', errno: 'EINVAL', fib, src, reason };
}

export function broadcastReason(dst: number, dev: string): string {
  return `${formatIpv4(dst)} is the broadcast address of ${dev}'s subnet`;
}

/**
 * fib_validate_source for a packet arriving on `itf`; `reverseIif` is the output device
 * of the forward route (`lo` for local delivery), which the reverse lookup sees as iif.
 */
export function validateSource(
  cv: CompiledView,
  f: Flow,
  itf: CompiledInterface,
  reverseIif: string,
  t: Tracer | null,
): { ok: true } | { ok: false; errno: Errno; reason: string } {
  const rpf = itf.rpFilter;
  if (rpf === 0 && !cv.customRules) {
    if (cv.configuredAddresses.has(f.src)) {
      return {
        ok: false,
        errno: 'EINVAL',
        reason: `source ${formatIpv4(f.src)} is one of this router's addresses`,
      };
    }
    return { ok: true };
  }
  const reverse: Flow = {
    src: f.dst,
    dst: f.src,
    iif: reverseIif,
    oif: null,
    mark: itf.srcValidMark ? f.mark : 0,
    uid: 0,
    proto: f.proto,
    sport: f.dport,
    dport: f.sport,
    tos: f.tos,
  };
  if (t) t.depth++;
  const fib = fibLookup(cv, reverse, t, 'reverse-path');
  if (t) t.depth--;
  const mode = rpf === 1 ? 'rp_filter=1 (strict)' : rpf === 2 ? 'rp_filter=2 (loose)' : 'rp_filter=0';
  if (fib.errno !== 0) {
    return rpf !== 0
      ? { ok: false, errno: 'EXDEV', reason: `${mode}: no route back to ${formatIpv4(f.src)}` }
      : { ok: true };
  }
  const route = fib.hit!.route;
  if (route.type !== 'unicast') {
    return {
      ok: false,
      errno: 'EINVAL',
      reason: `source ${formatIpv4(f.src)} routes back as ${route.type} (${route.text}): martian source`,
    };
  }
  if (route.nexthops.some((n) => n.dev === itf.name)) return { ok: true };
  if (itf.addresses.length === 0) {
    return rpf !== 0
      ? { ok: false, errno: 'EXDEV', reason: `${mode}: ${itf.name} has no address` }
      : { ok: true };
  }
  if (rpf === 1) {
    return {
      ok: false,
      errno: 'EXDEV',
      reason: `${mode}: the route back to ${formatIpv4(f.src)} leaves by ${route.nexthops.map((n) => n.dev).join('/')}, not ${itf.name}`,
    };
  }
  return { ok: true };
}

/** ip_route_input_slow for a flow arriving on f.iif. */
export function routeInput(
  cv: CompiledView,
  f: Flow,
  itf: CompiledInterface,
  t: Tracer | null,
  hash: number | undefined,
): PathOutcome {
  const martian = (reason: string): PathOutcome => {
    if (t) t.push({ step: 'check', check: 'martian', passed: false, text: reason });
    return { kind: 'martian', errno: 'EINVAL', fib: null, src: f.src, reason };
  };
  if (isMartianSource(f.src)) return martian(`martian source ${formatIpv4(f.src)}`);
  if (f.dst === 0) return martian(`martian destination ${formatIpv4(f.dst)}`);
  if (f.dst >>> 24 === 127)
    return martian(`martian destination ${formatIpv4(f.dst)} (loopback from ${itf.name})`);
  if (f.src >>> 24 === 127) return martian(`martian source ${formatIpv4(f.src)} (loopback on ${itf.name})`);
  if (f.dst >>> 28 === 14 || f.dst === 0xffffffff) {
    return {
      kind: 'invalid',
      errno: 'EINVAL',
      fib: null,
      src: f.src,
      reason: 'multicast and broadcast are not simulated',
    };
  }
  const fib = fibLookup(cv, f, t, 'route');
  if (fib.errno !== 0) {
    const failed = fibFailure(fib);
    return cv.view.forwarding ? failed : { ...failed, errno: 'EHOSTUNREACH' };
  }
  const hit = fib.hit!;
  if (hit.route.type === 'local') {
    const v = validateSource(cv, f, itf, 'lo', t);
    if (!v.ok) {
      if (t) t.push({ step: 'check', check: 'rp-filter', passed: false, text: v.reason });
      return { kind: 'martian', errno: v.errno, fib, src: f.src, reason: v.reason };
    }
    return { kind: 'local', fib, dev: 'lo', src: f.src };
  }
  if (hit.route.type === 'broadcast') {
    // brd_input: validated like local delivery (reverse lookup with iif lo), then delivered.
    const v = validateSource(cv, f, itf, 'lo', t);
    if (!v.ok) {
      if (t) t.push({ step: 'check', check: 'rp-filter', passed: false, text: v.reason });
      return { kind: 'martian', errno: v.errno, fib, src: f.src, reason: v.reason };
    }
    return {
      kind: 'broadcast',
      fib,
      dev: 'lo',
      src: f.src,
      reason: broadcastReason(f.dst, hit.nexthops[0]!.dev),
    };
  }
  if (!cv.view.forwarding) {
    const reason = 'net.ipv4.ip_forward is 0: the router does not forward';
    if (t) t.push({ step: 'check', check: 'forwarding', passed: false, text: reason });
    return { kind: 'unreachable', errno: 'EHOSTUNREACH', fib, src: f.src, reason };
  }
  const path = choosePath(cv, hit, hash, t, false);
  const outDev = path.nh?.dev ?? hit.nexthops[0]!.dev;
  const v = validateSource(cv, f, itf, outDev, t);
  if (!v.ok) {
    if (t) t.push({ step: 'check', check: 'rp-filter', passed: false, text: v.reason });
    return { kind: 'martian', errno: v.errno, fib, src: f.src, reason: v.reason };
  }
  if (!path.nh) return { kind: 'forward', fib, src: f.src, candidates: path.candidates };
  return {
    kind: 'forward',
    fib,
    dev: path.nh.dev,
    gateway: path.nh.gateway,
    src: f.src,
    ...(path.candidates ? { candidates: path.candidates } : {}),
  };
}
