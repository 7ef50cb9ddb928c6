/**
 * A connection that arrives on an uplink, and the way its answer leaves: the question
 * behind "track" (CONNMARK) and behind the agent's management-path guard.
 */
import type { CompiledView } from './compile-view.js';
import type { RoutingView } from './routing-view.js';
import { type Packet, type SimResult, type SimulateOptions, simulatePacket } from './simulate-packet.js';

export interface InboundConnection {
  /** The remote peer. */
  readonly src: string;
  /** The router's address the peer connected to. */
  readonly dst: string;
  /** The uplink it arrived on. */
  readonly iif: string;
  readonly proto: 'tcp' | 'udp';
  readonly sport: number;
  readonly dport: number;
  /** The site firewall forwards the connection to this LAN host (DNAT). */
  readonly dnatTo?: string;
  readonly dnatPort?: number;
  /** Mark of the arriving packet (default 0). */
  readonly mark?: number;
  readonly tos?: number;
  /** A local service answers: its socket's uid and mark (default 0). */
  readonly serviceUid?: number;
  readonly serviceMark?: number;
}

export interface ConnectionResult {
  /** The connection's first packet. */
  readonly inbound: SimResult;
  /** The conntrack mark after prerouting (track-save). */
  readonly ctMark: number;
  /** An answer of the local service or of the DNAT'd host; null when the first packet was dropped. */
  readonly reply: SimResult | null;
  /** The reply packet as simulated (for display and for re-simulation under another view). */
  readonly replyPacket: Packet | null;
}

/** The reply packet of an inbound connection, given the first packet's result. */
export function replyPacketOf(conn: InboundConnection, inbound: SimResult): Packet | null {
  const v = inbound.verdict;
  if (v.kind === 'local') {
    return {
      src: conn.dst,
      dst: conn.src,
      proto: conn.proto,
      sport: conn.dport,
      dport: conn.sport,
      uid: conn.serviceUid ?? 0,
      mark: conn.serviceMark ?? 0,
      ...(conn.tos !== undefined ? { tos: conn.tos } : {}),
      ctMark: v.ctMark,
      direction: 'reply',
    };
  }
  if (v.kind === 'forward') {
    const lanDev = v.dev ?? v.candidates?.[0]?.dev;
    if (lanDev === undefined) return null;
    return {
      src: conn.dnatTo ?? conn.dst,
      dst: conn.src,
      iif: lanDev,
      proto: conn.proto,
      sport: conn.dnatPort ?? conn.dport,
      dport: conn.sport,
      ...(conn.tos !== undefined ? { tos: conn.tos } : {}),
      ctMark: v.ctMark,
      direction: 'reply',
      ...(conn.dnatTo !== undefined ? { replyNatSrc: conn.dst } : {}),
    };
  }
  return null;
}

/**
 * Simulate a new connection arriving on `conn.iif` (to a local service, or DNAT'd to a LAN
 * host) and then its reply: whether the answer leaves by the uplink it came in on, and
 * with which source.
 */
export function simulateConnection(
  view: RoutingView | CompiledView,
  conn: InboundConnection,
  options: SimulateOptions = {},
): ConnectionResult {
  const inbound = simulatePacket(
    view,
    {
      src: conn.src,
      dst: conn.dst,
      iif: conn.iif,
      proto: conn.proto,
      sport: conn.sport,
      dport: conn.dport,
      ...(conn.mark !== undefined ? { mark: conn.mark } : {}),
      ...(conn.tos !== undefined ? { tos: conn.tos } : {}),
      ...(conn.dnatTo !== undefined ? { dnatTo: conn.dnatTo } : {}),
      direction: 'original',
      ctState: 'new',
    },
    options,
  );
  const replyPacket = replyPacketOf(conn, inbound);
  return {
    inbound,
    ctMark: inbound.verdict.ctMark,
    reply: replyPacket ? simulatePacket(view, replyPacket, options) : null,
    replyPacket,
  };
}
