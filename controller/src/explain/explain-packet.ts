/**
 * One packet through a site's router, offline: the verdict in operator words, the uplink
 * it leaves by (every path of a balanced route, with its share) and the simulator's trace.
 */
import type { DesiredRule, DesiredState } from '#agent/model';
import {
  type Candidate,
  type InboundConnection,
  mapVerdictToProvider,
  type Packet,
  type RoutingView,
  simulateConnection,
  simulatePacket,
  type TraceStep,
  tableName,
  type UplinkChoice,
  type Verdict,
} from '#agent/sim';
import { contains6, networkOf6 } from '../spec/addresses.js';
import type { ValidSite } from '../spec/valid-site.js';
import { buildSiteView, type FactsBasis, type SiteView, type SiteViewOptions } from './build-site-view.js';
import type { ExplainRequest } from './parse-explain-request.js';

/** One path of a balanced route, simulated as if the kernel's hash had picked it. */
export interface ExplainedPath {
  readonly provider: string | null;
  readonly dev: string;
  readonly gateway?: string;
  readonly weight: number;
  /** Percent of new flows, by weight. */
  readonly share: number;
  readonly verdict: Verdict;
  /** `gateway 198.51.100.1, source 172.20.1.50 SNAT → 198.51.100.2 (masquerade)` */
  readonly hop: string;
}

export interface Explanation {
  readonly site: string;
  readonly packet: Packet;
  /** The whole answer in one operator sentence. */
  readonly summary: string;
  /** Which part of the spec decided (policy, track, balance…), when a rule did. */
  readonly decidedBy: string | null;
  readonly verdict: Verdict;
  readonly uplink: UplinkChoice;
  /** Balanced routes only: each path as if the flow hash had chosen it. */
  readonly paths: readonly ExplainedPath[];
  readonly trace: readonly TraceStep[];
  readonly notes: readonly string[];
  /** What the answer was computed from: the router's reported facts, or the spec's stand-ins. */
  readonly basis: FactsBasis;
  /**
   * Set when only a stand-in makes the answer what it is (a source that may be an address
   * only the router knows, a route main may hold there): the simulated verdict is then no
   * answer, and this says why. Never set with the router's facts.
   */
  readonly unknown: string | null;
}

export function explainPacket(
  site: ValidSite,
  request: ExplainRequest,
  options: SiteViewOptions = {},
): Explanation {
  const siteView = buildSiteView(site, request.down, options);
  if (request.inbound !== undefined)
    return explainInbound(site.name, siteView, request.packet, request.inbound);
  return explainInView(site.name, siteView, request.packet);
}

/**
 * A connection arriving on an uplink (`packet.iif`), optionally DNAT'd to a LAN host by the
 * site's firewall: where its first packet goes, and which interface and source address its
 * replies leave by — the answer `verdict` and `uplink` describe. The trace is the first
 * packet's, then the reply's.
 */
export function explainInbound(
  siteName: string,
  siteView: SiteView,
  packet: Packet,
  nat: { readonly dnatTo?: string; readonly dnatPort?: number },
): Explanation {
  const { desired, view, notes, basis } = siteView;
  const conn: InboundConnection = {
    src: packet.src!,
    dst: packet.dst,
    iif: packet.iif!,
    proto: packet.proto === 'udp' ? 'udp' : 'tcp',
    sport: packet.sport!,
    dport: packet.dport!,
    ...(packet.mark === undefined ? {} : { mark: packet.mark }),
    ...(nat.dnatTo === undefined ? {} : { dnatTo: nat.dnatTo }),
    ...(nat.dnatPort === undefined ? {} : { dnatPort: nat.dnatPort }),
  };
  const result = simulateConnection(view, conn, { trace: true });
  const to =
    nat.dnatTo === undefined
      ? ''
      : ` DNAT → ${nat.dnatTo}${nat.dnatPort === undefined ? '' : `:${nat.dnatPort}`}`;
  const head = `${conn.proto} ${conn.src}:${conn.sport} → ${conn.dst}:${conn.dport} (arriving on ${conn.iif}${to})`;
  const first = result.inbound.verdict;
  const reply = result.reply;
  let unknown: string | null = null;
  if (
    basis.kind === 'spec' &&
    nat.dnatTo === undefined &&
    !view.localAddresses.some((a) => a.address === conn.dst) &&
    !view.interfaces.some((i) => i.addresses6?.some((a) => a.address === conn.dst))
  ) {
    const owners = [...new Set([...subnetOwners(siteView, conn.dst), ...basis.standIns])];
    if (owners.length > 0)
      unknown = `${conn.dst} may be an address of ${owners.join(' or ')} that only the router knows (stand-ins used); ask with the router's facts (--facts FILE or --state-dir DIR)`;
  }
  const verdict = reply?.verdict ?? first;
  const uplink = mapVerdictToProvider(verdict, desired.providers);
  const paths =
    reply !== null && result.replyPacket !== null && verdict.dev === undefined
      ? explainPaths(view, result.replyPacket, verdict, desired)
      : [];
  const delivered =
    reply === null
      ? `is not answered: its first packet ${describeOutcome(first, mapVerdictToProvider(first, desired.providers), [], desired)}`
      : `${first.kind === 'local' ? 'reaches the router' : `is forwarded to ${first.dev ?? 'the LAN'}`}; replies ${plural(describeOutcome(reply.verdict, uplink, paths, desired))}`;
  const exits = verdict.dev !== undefined ? [verdict.dev] : paths.map((p) => p.dev);
  const cameBack = reply !== null && exits.some((dev) => dev !== conn.iif);
  const allNotes = [...notes];
  if (cameBack)
    allNotes.push(
      `the replies ${exits.length > 1 ? 'may ' : ''}leave by ${exits.filter((d) => d !== conn.iif).join(' or ')}, not by ${conn.iif} where the connection arrived: the peer will likely drop them (asymmetric path); track: true on the uplink keeps them on it`,
    );
  return {
    site: siteName,
    packet,
    summary: `${head} ${unknown === null ? delivered : `is unknown offline: ${unknown}; over the stand-ins it ${delivered}`}`,
    decidedBy: reply === null ? describeDecision(desired, first) : describeDecision(desired, reply.verdict),
    verdict,
    uplink,
    paths,
    trace: [...result.inbound.trace, ...(reply?.trace ?? [])],
    notes: allNotes,
    basis,
    unknown,
  };
}

/**
 * One packet through an already built site view (`buildSiteView` with the request's
 * providers down): for callers that explain many packets of one site, such as the bench.
 */
export function explainInView(siteName: string, siteView: SiteView, packet: Packet): Explanation {
  const { desired, view, notes } = siteView;
  const { verdict, trace } = simulatePacket(view, packet, { trace: true });
  const uplink = mapVerdictToProvider(verdict, desired.providers);
  const paths = verdict.dev === undefined ? explainPaths(view, packet, verdict, desired) : [];
  const allNotes = [...notes, ...(packet.dst.includes(':') ? siteView.notes6 : [])];
  if (paths.length > 0)
    allNotes.push('the kernel hashes each flow onto one path; the shares are of flows, by weight');
  const decidedBy = describeDecision(desired, verdict);
  const unknown = unknownOffline(siteView, packet, verdict);
  const outcome =
    unknown === null
      ? describeOutcome(verdict, uplink, paths, desired)
      : `is unknown offline: ${unknown}; over the stand-ins it ${describeOutcome(verdict, uplink, paths, desired)}`;
  return {
    site: siteName,
    packet,
    summary: `${describePacket(packet, verdict.kind === 'local')} ${outcome}`,
    decidedBy,
    verdict,
    uplink,
    paths,
    trace,
    notes: allNotes,
    basis: siteView.basis,
    unknown,
  };
}

/**
 * Why a verdict over stand-ins is no answer, or null when it is one. Two cases: a source
 * the offline router does not have, on a site where some uplink's address (or a secondary
 * address in an uplink's subnet) is known only to the router; and no route at all, which
 * table main on the router (a DHCP or PPP default, a VPN's route) may well give.
 */
function unknownOffline(siteView: SiteView, packet: Packet, verdict: Verdict): string | null {
  const { basis, view } = siteView;
  const src = packet.src;
  const own =
    src !== undefined &&
    (view.localAddresses.some((a) => a.address === src) ||
      view.interfaces.some((i) => i.addresses6?.some((a) => a.address === src)));
  // A source outside every listed IPv6 prefix may be in a delegated one (D155), whose rule decides.
  const delegated = siteView.desired.providers.filter((p) => p.ipv6?.delegated !== undefined);
  if (
    basis.kind === 'spec' &&
    !own &&
    src?.includes(':') === true &&
    delegated.length > 0 &&
    !siteView.desired.providers.some((p) => (p.ipv6?.prefixes ?? []).some((prefix) => contains6(prefix, src)))
  )
    return `${src} may be in the prefix delegated to ${delegated.map((p) => p.name).join(' or ')} (DHCPv6-PD), which only the router knows; ask with the router's facts (--facts FILE or --state-dir DIR)`;
  if (basis.kind !== 'spec' || verdict.kind === 'forward' || verdict.kind === 'local') return null;
  if (src !== undefined && packet.iif === undefined && !own) {
    const owners = [...new Set([...subnetOwners(siteView, src), ...basis.standIns])];
    if (owners.length > 0)
      return `${src} may be an address of ${owners.join(' or ')} that only the router knows (stand-ins used); ask with the router's facts (--facts FILE or --state-dir DIR)`;
  }
  if (verdict.kind === 'no-route')
    return "no route over the spec's objects, but table main on the router may hold one (a default route from DHCP or PPP, a VPN's) that only the router knows; ask with the router's facts (--facts FILE or --state-dir DIR)";
  return null;
}

/** Providers whose connected subnet holds `address` (a secondary address there is the router's). */
function subnetOwners(siteView: SiteView, address: string): string[] {
  const out: string[] = [];
  for (const p of siteView.desired.providers) {
    const itf = siteView.view.interfaces.find((i) => i.name === p.interface);
    const inSubnet = address.includes(':')
      ? itf?.addresses6?.some(
          (a) => a.prefixLength < 127 && contains6(networkOf6(a.address, a.prefixLength), address),
        )
      : itf?.addresses.some((a) => a.prefixLength < 31 && sameSubnet(a.address, address, a.prefixLength));
    if (inSubnet) out.push(p.name);
  }
  return out;
}

function sameSubnet(a: string, b: string, prefixLength: number): boolean {
  const toInt = (x: string) => x.split('.').reduce((v, o) => ((v << 8) | Number(o)) >>> 0, 0);
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return (toInt(a) & mask) >>> 0 === (toInt(b) & mask) >>> 0;
}

/**
 * Each path of a multipath verdict, simulated with a hash inside its slice of the
 * kernel's hash space (fib_rebalance's upper bounds), so source and SNAT are its own.
 */
function explainPaths(
  view: RoutingView,
  packet: Packet,
  verdict: Verdict,
  desired: DesiredState,
): ExplainedPath[] {
  const candidates: readonly Candidate[] = verdict.candidates ?? [];
  const total = candidates.reduce((sum, c) => sum + c.weight, 0);
  let cumulative = 0;
  return candidates.map((c) => {
    const hash = cumulative === 0 ? 0 : Math.round((cumulative * 2 ** 31) / total);
    cumulative += c.weight;
    const pinned = simulatePacket(view, packet, { trace: false, multipathHash: hash }).verdict;
    return {
      provider: desired.providers.find((p) => p.interface === c.dev)?.name ?? null,
      dev: c.dev,
      ...(c.gateway === undefined ? {} : { gateway: c.gateway }),
      weight: c.weight,
      share: Math.round((100 * c.weight) / total),
      verdict: pinned,
      hop: describeHop(pinned, desired),
    };
  });
}

/** `tcp 172.20.1.50:40000 → 203.0.113.25:25 (forwarded from lan0)`; `delivered`: it is for the router. */
export function describePacket(packet: Packet, delivered = false): string {
  const port = (p: number | undefined) => (p === undefined ? '' : `:${p}`);
  const from = packet.src === undefined ? 'to ' : `${packet.src}${port(packet.sport)} → `;
  const context: string[] = [];
  if (packet.iif !== undefined) context.push(`${delivered ? 'arriving on' : 'forwarded from'} ${packet.iif}`);
  else context.push(`sent by the router${packet.uid !== undefined ? ` as uid ${packet.uid}` : ''}`);
  if (packet.mark !== undefined) context.push(`mark 0x${packet.mark.toString(16)}`);
  if (packet.src === undefined && packet.sport !== undefined) context.push(`source port ${packet.sport}`);
  return `${packet.proto ?? 'ip'} ${from}${packet.dst}${port(packet.dport)} (${context.join(', ')})`;
}

function describeOutcome(
  verdict: Verdict,
  uplink: UplinkChoice,
  paths: readonly ExplainedPath[],
  desired: DesiredState,
): string {
  switch (uplink.kind) {
    case 'provider':
      return `leaves via ${uplinkName(uplink.provider, uplink.dev)}, ${describeHop(verdict, desired)}`;
    case 'other-interface':
      return `leaves via ${uplink.dev} (not an uplink), ${describeHop(verdict, desired)}`;
    case 'balanced': {
      const shares = paths.map((p) => `${p.provider ?? p.dev} ${p.share}%`).join(', ');
      return `is balanced: ${shares}`;
    }
    case 'local':
      return 'is delivered to the router itself';
    case 'dropped':
      return `is not routed: ${verdict.kind}${verdict.errno ? ` (${verdict.errno})` : ''}${verdict.reason ? `: ${verdict.reason}` : ''}`;
  }
}

/** `isp1 (wan1)`, or just `ppp1` when the provider is named after its interface. */
export function uplinkName(provider: string | null, dev: string): string {
  return provider === null || provider === dev ? dev : `${provider} (${dev})`;
}

/** `gateway 198.51.100.1, source 172.20.1.50 SNAT → 198.51.100.2 (masquerade)` */
function describeHop(verdict: Verdict, desired: DesiredState): string {
  const parts: string[] = [];
  const pointToPoint = desired.providers.some(
    (p) => p.interface === verdict.dev && p.gateway.kind === 'point-to-point',
  );
  parts.push(
    verdict.gateway !== undefined
      ? `gateway ${verdict.gateway}`
      : pointToPoint
        ? 'no gateway (point-to-point)'
        : 'no gateway (on-link)',
  );
  const snat = verdict.snat;
  const source = snat?.from ?? verdict.src;
  if (source !== undefined) {
    const nat = snat !== undefined && snat.to !== snat.from ? ` SNAT → ${snat.to} (${snat.reason})` : '';
    parts.push(`source ${source}${nat}`);
  }
  if (verdict.markSet) parts.push(`mark set to 0x${verdict.mark.toString(16)}`);
  return parts.join(', ');
}

/** The spec object behind the rule that decided, from the compiled rule ids. */
function describeDecision(desired: DesiredState, verdict: Verdict): string | null {
  const priority = verdict.rulePriority;
  if (priority === undefined) return null;
  const table =
    verdict.table === undefined || verdict.table < 0
      ? ''
      : `, table ${describeTable(desired, verdict.table)}`;
  const at = `rule ${priority}${table}`;
  const rule: DesiredRule | undefined = desired.rules.find((r) => r.priority === priority);
  if (rule === undefined) {
    if (priority === 32766) return `the main table, last resort — ${at}`;
    if (priority === 0) return `the local table (an address of this router) — ${at}`;
    return `a rule Uplink does not own — ${at}`;
  }
  // Ids as compile-site writes them: `track:P`, `source:P`, `policy:NAME[:P]#N`, `fallback:P`.
  const [, kind, name, via] = /^([^:#]+)(?::([^:#]+))?(?::([^:#]+))?(?:#\d+)?$/.exec(rule.id) ?? [];
  switch (kind) {
    case 'main-specific-routes':
      return `main table's specific routes: LAN, VPN and connected networks win before any uplink — ${at}`;
    case 'track':
      return `track (the connection is marked as ${name}'s, so it stays on ${name}) — ${at}`;
    case 'source':
      return `the source address is ${name}'s, so it must leave by ${name} — ${at}`;
    case 'policy':
      return `policy ${name}${via ? ` via ${via}` : ''} — ${at}`;
    case 'balance':
      return `the balanced default route — ${at}`;
    case 'fallback':
      return `fallback to ${name} — ${at}`;
    default:
      return `rule ${rule.id} — ${at}`;
  }
}

/** `100 (isp1)`, `200 (balance)`, `main`. */
function describeTable(desired: DesiredState, table: number): string {
  const owner =
    desired.providers.find((p) => p.table === table)?.name ??
    (table === desired.settings.balanceTable ? 'balance' : undefined);
  return owner === undefined ? tableName(table) : `${tableName(table)} (${owner})`;
}

/** `leaves via …` → `leave via …`, for "replies …". */
function plural(outcome: string): string {
  return outcome.replace(/^leaves /, 'leave ').replace(/^is /, 'are ');
}
