/**
 * Routes one IPv4 packet the way Linux does (IPv6 packets: simulate-packet6.ts): netfilter mark logic of table inet uplink
 * (prerouting/output/postrouting), fib rules in priority order, longest-prefix match
 * per table, multipath, source selection and source validation. Pure; see
 * agent/src/sim/README.md for the kernel semantics modelled and their sources.
 */
import type { KernelNftRule } from '../model/kernel-state.js';
import { type CompiledView, compileView, tableName } from './compile-view.js';
import { EMPTY, type Flow, invalid, PROTO_BY_NAME, Tracer } from './flow.js';
import { formatIpv4, parseIpv4Fast } from './ipv4.js';
import { isMartianSource, type PathOutcome, routeInput, routeOutput } from './route-packet.js';
import type { RoutingView } from './routing-view.js';
import { type CtState, runMarkRules, runNat } from './run-netfilter.js';
import { simulatePacket6 } from './simulate-packet6.js';
import type { Candidate, TraceStep } from './trace.js';

/** `icmpv6` is ICMP for IPv6 (58): an IPv6 packet's only ICMP. */
export type ProtoName = 'tcp' | 'udp' | 'icmp' | 'icmpv6';

export interface Packet {
  /** Absent for a locally generated packet from an unbound socket: the kernel picks one. */
  readonly src?: string;
  readonly dst: string;
  /** Incoming interface; absent = locally generated (the kernel then uses iif `lo`). */
  readonly iif?: string;
  /** Output interface the socket is bound to (SO_BINDTODEVICE, `ip route get oif`); locally generated only. */
  readonly oif?: string;
  readonly proto?: ProtoName;
  readonly sport?: number;
  readonly dport?: number;
  /** Socket uid for locally generated packets (default 0, as `ip route get` run by root). Forwarded packets always carry uid 0. */
  readonly uid?: number;
  /** Packet mark on arrival (forwarded) or the socket mark (SO_MARK) for locally generated packets. */
  readonly mark?: number;
  /** The IPv4 TOS/DS byte. */
  readonly tos?: number;
  /** Conntrack mark of the connection this packet belongs to; absent = a new connection (ct mark 0). */
  readonly ctMark?: number;
  /** Direction within its connection (default `original`). */
  readonly direction?: 'original' | 'reply';
  /** Conntrack state; default `new` for an original-direction packet without ctMark, else `established`. */
  readonly ctState?: 'new' | 'established';
  /** connect() semantics (two lookups, the second with the chosen source). Default: TCP without src. */
  readonly connected?: boolean;
  /** The site firewall DNATs this packet to this address in prerouting (Uplink writes no DNAT). */
  readonly dnatTo?: string;
  /** For a reply of a connection that was DNAT'd inbound: conntrack restores this source in postrouting. */
  readonly replyNatSrc?: string;
}

export interface SimulateOptions {
  /** Record the trace (default true). Off, simulation allocates almost nothing per packet. */
  readonly trace?: boolean;
  /**
   * 31-bit multipath hash (0 … 2^31-1). The kernel hashes the flow with a per-boot
   * secret, so a simulator cannot reproduce its choice; without a hash the verdict lists
   * every path as candidates and names no single dev.
   */
  readonly multipathHash?: number;
}

export type VerdictKind =
  | 'forward'
  | 'local'
  | 'broadcast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'no-route'
  | 'martian'
  | 'invalid';

/** What `ip route get` would print as "RTNETLINK answers: …". */
export type Errno = 'ENETUNREACH' | 'EHOSTUNREACH' | 'EINVAL' | 'EACCES' | 'EXDEV' | 'ENODEV';

export interface Snat {
  readonly from: string;
  readonly to: string;
  /** `conntrack-reply`: no rule, the reply of a DNAT'd connection is un-NATed by conntrack. */
  readonly reason: 'snat' | 'masquerade' | 'npt' | 'conntrack-reply';
  readonly rule?: KernelNftRule;
}

export interface Verdict {
  /**
   * `forward`: the packet leaves the router by `dev` (forwarded or locally generated —
   * see `origin`); `local`: delivered to this host.
   */
  readonly kind: VerdictKind;
  readonly origin: 'forwarded' | 'local-out';
  readonly errno?: Errno;
  /** The table and the rule that decided. */
  readonly table?: number;
  readonly rulePriority?: number;
  /** The route that decided, `ip route` style. */
  readonly route?: string;
  readonly dev?: string;
  readonly gateway?: string;
  /** Source address on the wire after NAT. */
  readonly src?: string;
  readonly snat?: Snat;
  /** Multipath: every alive path with its weight. */
  readonly candidates?: readonly Candidate[];
  /** Packet mark when it leaves (after nft restores). */
  readonly mark: number;
  readonly ctMark: number;
  /** nft changed the packet mark. */
  readonly markSet: boolean;
  readonly reason?: string;
}

export interface SimResult {
  readonly verdict: Verdict;
  readonly trace: TraceStep[];
}

/**
 * Route one packet through the view. `view` may be a RoutingView (compiled once and
 * cached per object) or a CompiledView.
 */
export function simulatePacket(
  view: RoutingView | CompiledView,
  packet: Packet,
  options: SimulateOptions = {},
): SimResult {
  const compiled = 'rules' in view && 'tables' in view;
  // An IPv6 destination (or source) is the IPv6 pipeline's, over the view's inet6 objects.
  if (packet.dst.includes(':') || (packet.src?.includes(':') ?? false))
    return simulatePacket6(compiled ? (view as CompiledView).view : (view as RoutingView), packet, options);
  const cv = compiled ? (view as CompiledView) : compileView(view as RoutingView);
  const t = options.trace === false ? null : new Tracer();
  const origin: Verdict['origin'] = packet.iif === undefined ? 'local-out' : 'forwarded';
  const dst0 = parseIpv4Fast(packet.dst);
  if (dst0 < 0) return invalid(`destination ${packet.dst}: not an IPv4 address`, origin, t);
  let src = 0;
  if (packet.src !== undefined) {
    src = parseIpv4Fast(packet.src);
    if (src < 0) return invalid(`source ${packet.src}: not an IPv4 address`, origin, t);
  }
  const proto = packet.proto ? PROTO_BY_NAME[packet.proto] : 0;
  // The kernel dissects ports for port-based protocols only (ICMP has none).
  const ported = proto === 6 || proto === 17;
  const reply = packet.direction === 'reply';
  const ct: CtState = {
    ctMark: (packet.ctMark ?? 0) >>> 0,
    isNew: packet.ctState ? packet.ctState === 'new' : !reply && packet.ctMark === undefined,
    reply,
  };
  const mark0 = (packet.mark ?? 0) >>> 0;
  const flow: Flow = {
    src,
    dst: dst0,
    iif: packet.iif ?? 'lo',
    oif: null,
    mark: mark0,
    uid: 0,
    proto,
    sport: ported ? (packet.sport ?? 0) : 0,
    dport: ported ? (packet.dport ?? 0) : 0,
    tos: (packet.tos ?? 0) & 0xff,
  };
  const replyNatSrc = packet.replyNatSrc ? parseIpv4Fast(packet.replyNatSrc) : 0;

  let path: PathOutcome;
  if (packet.iif !== undefined) {
    const itf = cv.interfaces.get(packet.iif);
    if (!itf) return invalid(`iif ${packet.iif}: no such interface`, origin, t, 'ENODEV');
    if (packet.src === undefined) return invalid('a packet with iif needs a source address', origin, t);
    if (t && packet.uid !== undefined && packet.uid !== 0) {
      t.push({
        step: 'note',
        text: `uid ${packet.uid} ignored: forwarded packets carry uid 0 in the routing lookup`,
      });
    }
    if (t && packet.oif !== undefined)
      t.push({
        step: 'note',
        text: `oif ${packet.oif} ignored: forwarded packets have no output interface before routing`,
      });
    flow.mark = runMarkRules(cv, cv.nft.prerouting, 'prerouting', packet.iif, flow.mark, ct, t);
    if (packet.dnatTo !== undefined) {
      const to = parseIpv4Fast(packet.dnatTo);
      if (to < 0) return invalid(`dnatTo ${packet.dnatTo}: not an IPv4 address`, origin, t);
      if (t)
        t.push({
          step: 'nat',
          kind: 'dnat',
          from: packet.dst,
          to: packet.dnatTo,
          text: `prerouting: the site firewall DNATs ${packet.dst} → ${packet.dnatTo}`,
        });
      flow.dst = to;
    }
    path = routeInput(cv, flow, itf, t, options.multipathHash);
  } else {
    flow.uid = (packet.uid ?? 0) >>> 0;
    if (packet.oif !== undefined) {
      const itf = cv.interfaces.get(packet.oif);
      if (!itf) return invalid(`oif ${packet.oif}: no such interface`, origin, t, 'ENODEV');
      if (!itf.up) return invalid(`oif ${packet.oif}: interface is down`, origin, t, 'ENETUNREACH');
      flow.oif = packet.oif;
    }
    if (src !== 0 && isMartianSource(src))
      return invalid(`source ${packet.src} is not a usable source`, origin, t);
    // ip_route_output_key_hash_rcu: a source that is none of our addresses → ENETUNREACH.
    if (src !== 0 && !cv.configuredAddresses.has(src)) {
      return invalid(
        `source ${packet.src} is not an address of this router (a socket cannot bind to it)`,
        origin,
        t,
        'ENETUNREACH',
      );
    }
    const connected = packet.connected ?? (proto === 6 && src === 0);
    if (connected && src === 0) {
      // ip_route_connect: the unbound socket has no source port yet either.
      const sport = flow.sport;
      flow.sport = 0;
      const first = routeOutput(cv, flow, t, options.multipathHash, 'connect-first');
      flow.sport = sport;
      if (first.kind !== 'forward' && first.kind !== 'local') {
        path = first;
      } else if (first.src === 0) {
        if (t)
          t.push({
            step: 'note',
            text: 'the source depends on the multipath choice: pass multipathHash to follow connect() further',
          });
        path = first;
      } else {
        flow.src = first.src;
        path = routeOutput(cv, flow, t, options.multipathHash, 'connect-second');
      }
    } else {
      path = routeOutput(cv, flow, t, options.multipathHash, 'route');
    }
    if (path.kind === 'forward' || path.kind === 'local') {
      flow.src = path.src;
      const before = flow.mark;
      flow.mark = runMarkRules(cv, cv.nft.output, 'output', 'lo', flow.mark, ct, t);
      if (flow.mark !== before) {
        // nft output chain of type route: a changed mark re-routes (ip_route_me_harder), keeping
        // the now-fixed local source and the socket's bound device; the flow carries no uid.
        flow.uid = 0;
        path = routeOutput(cv, flow, t, options.multipathHash, 'reroute');
      }
    }
  }

  let finalSrc = path.src;
  let snat: Snat | undefined;
  if (path.kind === 'forward') {
    const nat = runNat(cv, path, path.src, flow.dst, ct, replyNatSrc, t);
    finalSrc = nat.src;
    snat = nat.snat;
  }
  const fib = path.fib;
  const verdict: Verdict = {
    kind: path.kind,
    origin,
    ...(path.errno ? { errno: path.errno } : {}),
    ...(fib?.rule ? { table: fib.rule.table, rulePriority: fib.rule.priority } : {}),
    ...(fib?.hit ? { route: fib.hit.route.text } : {}),
    ...(path.dev !== undefined ? { dev: path.dev } : {}),
    ...(path.gateway ? { gateway: formatIpv4(path.gateway) } : {}),
    ...(finalSrc !== 0 ? { src: formatIpv4(finalSrc) } : {}),
    ...(snat ? { snat } : {}),
    ...(path.candidates ? { candidates: path.candidates } : {}),
    mark: flow.mark,
    ctMark: ct.ctMark,
    markSet: flow.mark !== mark0,
    ...(path.reason ? { reason: path.reason } : {}),
  };
  return { verdict, trace: t ? t.steps : EMPTY };
}

/** One line: what happens to the packet. */
export function formatVerdict(v: Verdict): string {
  switch (v.kind) {
    case 'forward': {
      const via = v.dev
        ? `dev ${v.dev}${v.gateway ? ` via ${v.gateway}` : ''}`
        : `one of ${(v.candidates ?? []).map((c) => `${c.dev}${c.gateway ? ` via ${c.gateway}` : ''} (weight ${c.weight})`).join(', ')}`;
      const nat = v.snat ? ` (${v.snat.reason} ${v.snat.from} → ${v.snat.to})` : '';
      return `leaves by ${via}${v.src ? ` from ${v.src}` : ''}${nat}${v.table !== undefined ? `, table ${tableName(v.table)} (rule ${v.rulePriority})` : ''}`;
    }
    case 'local':
      return `delivered locally${v.src ? ` (source ${v.src})` : ''}`;
    default:
      return `${v.kind}${v.errno ? ` (${v.errno})` : ''}${v.reason ? `: ${v.reason}` : ''}`;
  }
}
