/**
 * The one renderer of `ip rule` and `ip route` objects as iproute2 words. Four places print
 * rules and routes — the `ip -batch` lines the agent runs, the one-line descriptions in diffs,
 * plans and drift reports, the simulator's `ip rule show`-style view, and the review script of
 * `uplink compile --format script` — and each is a *style* here: which words, in what order,
 * how numbers, tables and addresses are written. The words themselves (`fwmark V/M`,
 * `uidrange A-B`, `nexthop via G dev D weight W` …) are spelled once.
 *
 * Addresses are generic: kernel objects carry strings, the desired state's references
 * (`address(isp1)`) are rendered by the script style as shell variables.
 */

export type RuleSelector =
  | 'from'
  | 'to'
  | 'tos'
  | 'fwmark'
  | 'iif'
  | 'oif'
  | 'uidrange'
  | 'ipproto'
  | 'sport'
  | 'dport';

/** The order `ip rule show` prints selectors in. */
export const SHOW_ORDER: readonly RuleSelector[] = [
  'from',
  'to',
  'tos',
  'fwmark',
  'iif',
  'oif',
  'uidrange',
  'ipproto',
  'sport',
  'dport',
];
/** The order Uplink writes `ip rule add` lines in (iproute2 takes any). */
export const ADD_ORDER: readonly RuleSelector[] = [
  'from',
  'to',
  'iif',
  'oif',
  'fwmark',
  'uidrange',
  'ipproto',
  'sport',
  'dport',
  'tos',
];

interface Range {
  readonly start: number;
  readonly end: number;
}

/** A rule, kernel (`A` = string) or desired (`A` = a network reference). */
export interface RuleLike<A> {
  readonly priority: number;
  readonly action: string;
  readonly table?: number | undefined;
  readonly from?: A | undefined;
  readonly to?: A | undefined;
  readonly iif?: string | undefined;
  readonly oif?: string | undefined;
  readonly fwmark?: number | undefined;
  readonly fwmask?: number | undefined;
  readonly uidrange?: Range | undefined;
  readonly ipproto?: string | undefined;
  readonly sport?: Range | undefined;
  readonly dport?: Range | undefined;
  readonly tos?: number | undefined;
  readonly suppressPrefixlength?: number | undefined;
  readonly protocol?: number | undefined;
}

/**
 * How a number is written; the batch style checks range and form here (a value that is not
 * one safe token must never reach `ip -batch`).
 */
export type NumberWriter = (value: number, min: number, max: number, what: string, radix?: number) => string;

const plainNumber: NumberWriter = (value, _min, _max, _what, radix = 10) => value.toString(radix);

export interface RuleStyle<A> {
  readonly order: readonly RuleSelector[];
  /** `priority N`, `N:` (ip rule show) or nothing. */
  readonly priority: 'keyword' | 'colon' | 'none';
  /** Write `from all` when there is no source selector (as `ip rule show` does). */
  readonly fromAll: boolean;
  readonly tos: 'hex' | 'decimal';
  /** Write `tos 0` (the kernel treats it as no selector and `ip rule show` leaves it out). */
  readonly zeroTos: boolean;
  /**
   * `given`: fwmark and mask as the rule holds them; `effective`: as the kernel matches
   * (fwmark 0 without a mask matches everything and is not shown; a mask of all ones is).
   */
  readonly fwmark: 'given' | 'effective';
  /** `protocol P`, `proto P` or nothing. */
  readonly protocol: 'protocol' | 'proto' | 'none';
  readonly table: (table: number | undefined, rule: RuleLike<A>) => string;
  readonly address: (value: A, field: 'from' | 'to') => string;
  readonly interface?: (value: string, field: 'iif' | 'oif') => string;
  readonly number?: NumberWriter;
}

export function ruleWords<A>(rule: RuleLike<A>, style: RuleStyle<A>): string[] {
  const n = style.number ?? plainNumber;
  const dev = style.interface ?? ((value: string) => value);
  const words: string[] = [];
  if (style.priority === 'keyword') words.push('priority', n(rule.priority, 0, 32767, 'rule priority'));
  else if (style.priority === 'colon') words.push(`${rule.priority}:`);
  const range = (r: Range, what: string) => {
    const start = n(
      r.start,
      what === 'uidrange' ? 0 : 1,
      what === 'uidrange' ? 0xffffffff : 65535,
      `rule ${what} start`,
    );
    const end = n(r.end, r.start, what === 'uidrange' ? 0xffffffff : 65535, `rule ${what} end`);
    return start === end && what !== 'uidrange' ? start : `${start}-${end}`;
  };
  for (const field of style.order) {
    switch (field) {
      case 'from':
        if (rule.from !== undefined) words.push('from', style.address(rule.from, 'from'));
        else if (style.fromAll) words.push('from', 'all');
        break;
      case 'to':
        if (rule.to !== undefined) words.push('to', style.address(rule.to, 'to'));
        break;
      case 'tos':
        if (rule.tos !== undefined && (style.zeroTos || rule.tos !== 0)) {
          words.push(
            'tos',
            style.tos === 'hex'
              ? `0x${n(rule.tos, 0, 255, 'rule tos', 16)}`
              : n(rule.tos, 0, 255, 'rule tos'),
          );
        }
        break;
      case 'fwmark': {
        const mark = fwmarkWords(rule, style.fwmark, n);
        if (mark !== undefined) words.push('fwmark', mark);
        break;
      }
      case 'iif':
        if (rule.iif !== undefined) words.push('iif', dev(rule.iif, 'iif'));
        break;
      case 'oif':
        if (rule.oif !== undefined) words.push('oif', dev(rule.oif, 'oif'));
        break;
      case 'uidrange':
        if (rule.uidrange !== undefined) words.push('uidrange', range(rule.uidrange, 'uidrange'));
        break;
      case 'ipproto':
        if (rule.ipproto !== undefined) words.push('ipproto', rule.ipproto);
        break;
      case 'sport':
        if (rule.sport !== undefined) words.push('sport', range(rule.sport, 'sport'));
        break;
      case 'dport':
        if (rule.dport !== undefined) words.push('dport', range(rule.dport, 'dport'));
        break;
    }
  }
  if (rule.action === 'lookup') words.push('lookup', style.table(rule.table, rule));
  else words.push(rule.action);
  if (rule.suppressPrefixlength !== undefined) {
    words.push('suppress_prefixlength', n(rule.suppressPrefixlength, 0, 32, 'suppress_prefixlength'));
  }
  if (style.protocol !== 'none' && rule.protocol !== undefined) {
    words.push(style.protocol, n(rule.protocol, 0, 255, 'rule protocol'));
  }
  return words;
}

function fwmarkWords<A>(rule: RuleLike<A>, mode: 'given' | 'effective', n: NumberWriter): string | undefined {
  const hex = (value: number, what: string) => `0x${n(value, 0, 0xffffffff, what, 16)}`;
  if (mode === 'given') {
    if (rule.fwmark === undefined) return undefined;
    return rule.fwmask === undefined
      ? hex(rule.fwmark, 'rule fwmark')
      : `${hex(rule.fwmark, 'rule fwmark')}/${hex(rule.fwmask, 'rule fwmask')}`;
  }
  // The kernel sets mask 0xffffffff only when a non-zero fwmark is given without a mask:
  // `fwmark 0` alone leaves the mask 0, so the rule matches every mark.
  const mask = rule.fwmask !== undefined ? rule.fwmask >>> 0 : rule.fwmark ? 0xffffffff : 0;
  if (mask === 0) return undefined;
  const value = hex(rule.fwmark ?? 0, 'rule fwmark');
  return mask === 0xffffffff ? value : `${value}/${hex(mask, 'rule fwmask')}`;
}

// ---- routes ---------------------------------------------------------------------------

export type RouteWord = 'gateway' | 'dev' | 'src' | 'scope' | 'metric' | 'table' | 'protocol' | 'nexthops';

export interface RouteLike<A> {
  readonly table: number;
  readonly dst: A;
  readonly type: string;
  readonly dev?: string | undefined;
  readonly gateway?: A | undefined;
  readonly src?: A | undefined;
  readonly scope?: string | undefined;
  readonly metric?: number | undefined;
  readonly protocol?: number | undefined;
  readonly nexthops?:
    | readonly { readonly dev: string; readonly gateway?: A | undefined; readonly weight: number }[]
    | undefined;
}

export interface RouteStyle<A> {
  /** The words after the destination, in order. */
  readonly order: readonly RouteWord[];
  readonly dst: (value: A) => string;
  readonly address: (value: A, field: 'gateway' | 'src' | 'nexthop gateway') => string;
  readonly interface?: (value: string, field: 'dev' | 'nexthop dev') => string;
  readonly table: (table: number) => string;
  /** `proto P` or `protocol P` (nothing if the route has none). */
  readonly protocolWord: 'proto' | 'protocol';
  /** Leave out `scope global` and `metric 0`, which `ip route show` does not print. */
  readonly omitGlobalScope: boolean;
  readonly omitZeroMetric: boolean;
  readonly number?: NumberWriter;
  /** Each nexthop's words as one item (the script puts them on lines of their own). */
  readonly nexthop?: (words: readonly string[]) => string;
}

export function routeWords<A>(route: RouteLike<A>, style: RouteStyle<A>): string[] {
  const n = style.number ?? plainNumber;
  const dev = style.interface ?? ((value: string) => value);
  const words: string[] = route.type === 'unicast' ? [] : [route.type];
  words.push(style.dst(route.dst));
  for (const word of style.order) {
    switch (word) {
      case 'gateway':
        if (route.gateway !== undefined) words.push('via', style.address(route.gateway, 'gateway'));
        break;
      case 'dev':
        if (route.dev !== undefined) words.push('dev', dev(route.dev, 'dev'));
        break;
      case 'src':
        if (route.src !== undefined) words.push('src', style.address(route.src, 'src'));
        break;
      case 'scope':
        if (route.scope !== undefined && !(style.omitGlobalScope && route.scope === 'global')) {
          words.push('scope', route.scope);
        }
        break;
      case 'metric':
        if (route.metric !== undefined && !(style.omitZeroMetric && route.metric === 0)) {
          words.push('metric', n(route.metric, 0, 0xffffffff, 'route metric'));
        }
        break;
      case 'table':
        words.push('table', style.table(route.table));
        break;
      case 'protocol':
        if (route.protocol !== undefined)
          words.push(style.protocolWord, n(route.protocol, 0, 255, 'route protocol'));
        break;
      case 'nexthops':
        for (const hop of route.nexthops ?? []) {
          const hopWords = ['nexthop'];
          if (hop.gateway !== undefined) hopWords.push('via', style.address(hop.gateway, 'nexthop gateway'));
          hopWords.push(
            'dev',
            dev(hop.dev, 'nexthop dev'),
            'weight',
            n(hop.weight, 1, 256, 'nexthop weight'),
          );
          if (style.nexthop !== undefined) words.push(style.nexthop(hopWords));
          else words.push(...hopWords);
        }
        break;
    }
  }
  return words;
}
