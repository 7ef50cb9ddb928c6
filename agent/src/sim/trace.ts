/**
 * What the simulator did and why, as data (for JSON and `uplink explain --json`) with a
 * ready operator sentence in `text`; `formatTrace` lays the steps out for a terminal.
 */
import type { KernelNftRule } from '../model/kernel-state.js';

export type Selector =
  | 'iif'
  | 'oif'
  | 'fwmark'
  | 'uidrange'
  | 'from'
  | 'to'
  | 'tos'
  | 'ipproto'
  | 'sport'
  | 'dport';

/**
 * - `route`: the one lookup of a forwarded packet or an unconnected local send
 * - `connect-first` / `connect-second`: connect() looks up once without a source, picks
 *   one, and looks up again with it (ip_route_connect)
 * - `reroute`: the nft output chain (type route) changed the mark: ip_route_me_harder
 * - `reverse-path`: source validation (rp_filter / martian check) looks up the source
 */
export type LookupPurpose = 'route' | 'connect-first' | 'connect-second' | 'reroute' | 'reverse-path';

export type TableOutcome = 'route' | 'no-route' | 'no-table' | 'throw' | 'reject' | 'suppressed';

export interface FlowSummary {
  readonly src: string;
  readonly dst: string;
  /** `lo` for locally generated packets, as the kernel sets it. */
  readonly iif: string;
  readonly oif?: string;
  readonly mark: number;
  readonly uid: number;
  readonly proto?: string;
  readonly sport?: number;
  readonly dport?: number;
  readonly tos?: number;
}

export interface Candidate {
  readonly dev: string;
  readonly gateway?: string;
  readonly weight: number;
  /** The source a locally generated packet would get on this path (unset for forwarded packets). */
  readonly src?: string;
}

interface Base {
  readonly text: string;
  /** 0 for the packet's own path, 1 inside a reverse-path (source validation) lookup. */
  readonly depth: number;
}

export type TraceStep =
  | (Base & { readonly step: 'lookup'; readonly purpose: LookupPurpose; readonly flow: FlowSummary })
  | (Base & {
      readonly step: 'rule';
      readonly priority: number;
      readonly rule: string;
      readonly matched: boolean;
      readonly selector?: Selector;
    })
  | (Base & {
      readonly step: 'table';
      readonly priority: number;
      readonly table: number;
      readonly outcome: TableOutcome;
      readonly route?: string;
      readonly prefixLength?: number;
    })
  | (Base & {
      readonly step: 'rule-action';
      readonly priority: number;
      readonly action: 'blackhole' | 'unreachable' | 'prohibit';
    })
  | (Base & {
      readonly step: 'nft';
      readonly hook: 'prerouting' | 'output' | 'postrouting';
      readonly rule: KernelNftRule;
      readonly applied: boolean;
    })
  | (Base & {
      readonly step: 'nexthop';
      readonly candidates: readonly Candidate[];
      readonly chosen: number | null;
    })
  | (Base & { readonly step: 'source'; readonly address: string })
  | (Base & {
      readonly step: 'check';
      readonly check: 'martian' | 'rp-filter' | 'forwarding' | 'local-source' | 'oif' | 'iif';
      readonly passed: boolean;
    })
  | (Base & {
      readonly step: 'nat';
      readonly kind: 'dnat' | 'snat' | 'masquerade' | 'npt' | 'conntrack-reply';
      readonly from: string;
      readonly to: string;
    })
  | (Base & { readonly step: 'note' });

const INDENT: Readonly<Record<TraceStep['step'], number>> = {
  lookup: 0,
  rule: 1,
  'rule-action': 2,
  table: 2,
  nft: 0,
  nexthop: 1,
  source: 1,
  check: 0,
  nat: 0,
  note: 0,
};

const MARK: Readonly<Record<TraceStep['step'], string>> = {
  lookup: '▸ ',
  rule: '',
  'rule-action': '→ ',
  table: '→ ',
  nft: 'nft ',
  nexthop: '',
  source: '',
  check: '',
  nat: 'nat ',
  note: '· ',
};

/** Operator-readable lines, one per step, indented by nesting. */
export function formatTrace(trace: readonly TraceStep[]): string {
  return trace
    .map((s) => {
      const indent = '  '.repeat(INDENT[s.step] + s.depth * 2);
      const prefix = s.step === 'rule' ? (s.matched ? '✓ ' : '✗ ') : MARK[s.step];
      return `${indent}${prefix}${s.text}`;
    })
    .join('\n');
}
