import { PROTO_NAMES } from './compile-view.js';
import { formatIpv4, hex, prefixMask } from './ipv4.js';
import type { Errno, ProtoName, SimResult, Verdict } from './simulate-packet.js';
import type { FlowSummary, LookupPurpose, TraceStep } from './trace.js';

export const PROTO_BY_NAME: Readonly<Record<ProtoName, number>> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };
export const MASKS: readonly number[] = Array.from({ length: 33 }, (_, i) => prefixMask(i));
/** The kernel matches rule TOS against the flow's TOS & IPTOS_RT_MASK. */
export const IPTOS_RT_MASK = 0x1c;

export interface Flow {
  src: number;
  dst: number;
  iif: string;
  oif: string | null;
  mark: number;
  uid: number;
  proto: number;
  sport: number;
  dport: number;
  tos: number;
}

export type StepInput = TraceStep extends infer S ? (S extends TraceStep ? Omit<S, 'depth'> : never) : never;

export class Tracer {
  readonly steps: TraceStep[] = [];
  depth = 0;
  push(step: StepInput): void {
    this.steps.push({ ...step, depth: this.depth } as TraceStep);
  }
}

export function flowSummary(f: Flow): FlowSummary {
  return summaryOf(f, formatIpv4(f.src), formatIpv4(f.dst), f.tos);
}

/** A flow of either family as the trace shows it (`tos`: the TOS byte or IPv6 traffic class). */
export function summaryOf(
  f: Pick<Flow, 'iif' | 'oif' | 'mark' | 'uid' | 'proto' | 'sport' | 'dport'>,
  src: string,
  dst: string,
  tos: number,
): FlowSummary {
  return {
    src,
    dst,
    iif: f.iif,
    ...(f.oif !== null ? { oif: f.oif } : {}),
    mark: f.mark,
    uid: f.uid,
    ...(f.proto ? { proto: PROTO_NAMES[f.proto] ?? String(f.proto) } : {}),
    ...(f.sport ? { sport: f.sport } : {}),
    ...(f.dport ? { dport: f.dport } : {}),
    ...(tos ? { tos } : {}),
  };
}

/** A packet the simulator refuses before routing it (an address it cannot parse, …). */
export function invalid(
  reason: string,
  origin: Verdict['origin'],
  t: Tracer | null,
  errno: Errno = 'EINVAL',
): SimResult {
  if (t) t.push({ step: 'note', text: reason });
  return {
    verdict: { kind: 'invalid', origin, errno, reason, mark: 0, ctMark: 0, markSet: false },
    trace: t?.steps ?? [],
  };
}

/** The trace of a run without tracing. */
export const EMPTY: TraceStep[] = [];

export const PURPOSE_TEXT: Readonly<Record<LookupPurpose, string>> = {
  route: 'route lookup',
  'connect-first': 'connect(): first lookup, no source yet',
  'connect-second': 'connect(): second lookup with the chosen source',
  reroute: 're-route after the output chain changed the mark',
  'reverse-path': 'source validation: reverse lookup of the source',
};

export function describeFlow(f: Flow): string {
  const parts = [
    `from ${f.src === 0 ? '(none)' : formatIpv4(f.src)}`,
    `to ${formatIpv4(f.dst)}`,
    `iif ${f.iif}`,
  ];
  if (f.oif !== null) parts.push(`oif ${f.oif}`);
  parts.push(`mark ${hex(f.mark)}`, `uid ${f.uid}`);
  if (f.proto) parts.push(PROTO_NAMES[f.proto] ?? `proto ${f.proto}`);
  if (f.sport) parts.push(`sport ${f.sport}`);
  if (f.dport) parts.push(`dport ${f.dport}`);
  if (f.tos) parts.push(`tos ${hex(f.tos)}`);
  return parts.join(' ');
}
