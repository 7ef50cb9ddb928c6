/**
 * Drift: the owned kernel state differs from the confirmed desired state resolved against
 * the current facts and health (so failover and readdressing are never drift). Derived,
 * not stored: `diff(effective, owned(current))` turned into items for people, plus
 * `shadowed` warnings for foreign objects that take traffic before Uplink's rules see it.
 */
import ipaddr from 'ipaddr.js';
import type { DesiredState } from '../model/desired-state.js';
import type { Facts, Health, KernelRoute, KernelRule, KernelState } from '../model/kernel-state.js';
import { compareRoutes, compareRules } from './canonicalize-state.js';
import {
  describeNftRule,
  describeRoute,
  describeRouteKey,
  describeRule,
  describeTable,
} from './describe-object.js';
import { type Change, diff } from './diff.js';
import { type OwnershipScope, owned } from './owned.js';
import { resolve } from './resolve.js';

export type DriftKind = 'missing' | 'unexpected' | 'changed' | 'shadowed';

/** One difference, without time (the shell stamps `firstSeen`, see `stampFirstSeen`). */
export interface DriftFinding {
  /** Stable identity of the object, e.g. `rule priority 2000 from 203.0.113.5/32 lookup 101 proto 252`. */
  readonly object: string;
  readonly kind: DriftKind;
  readonly expected: string | null;
  readonly found: string | null;
}

export interface DriftInput {
  readonly desired: DesiredState;
  readonly facts: Facts;
  readonly health: Health;
  /** The whole kernel as read (every protocol). */
  readonly current: KernelState;
  readonly scope: OwnershipScope;
}

export interface DriftFindings {
  /** Owned objects that differ from the effective state. */
  readonly items: readonly DriftFinding[];
  /** Foreign objects in Uplink's way (warnings: never healed, Uplink never touches them). */
  readonly shadowed: readonly DriftFinding[];
}

export function findDrift(input: DriftInput): DriftFindings {
  const { effective } = resolve(input.desired, input.facts, input.health);
  const changes = diff(effective, owned(input.current, input.scope));
  return {
    items: itemsFromChanges(changes),
    shadowed: findShadowing(effective, input.current, input.scope),
  };
}

/** A timed item; `firstSeen` survives from `previous` while the same difference persists. */
export interface StampedFinding extends DriftFinding {
  readonly firstSeen: number;
}

export function stampFirstSeen(
  findings: readonly DriftFinding[],
  previous: readonly StampedFinding[],
  now: number,
): StampedFinding[] {
  const seen = new Map(previous.map((item) => [findingKey(item), item.firstSeen]));
  return findings.map((finding) => ({ ...finding, firstSeen: seen.get(findingKey(finding)) ?? now }));
}

/** Items are "the same drift" when the object and the kind agree (what was found may move on). */
export function findingKey(finding: Pick<DriftFinding, 'object' | 'kind'>): string {
  return `${finding.kind} ${finding.object}`;
}

/** `missing rule priority 2000 …: expected …, found nothing` — one line for logs. */
export function formatFinding(finding: DriftFinding): string {
  return `${finding.kind} ${finding.object}: expected ${finding.expected ?? 'nothing'}, found ${finding.found ?? 'nothing'}`;
}

function itemsFromChanges(changes: readonly Change[]): DriftFinding[] {
  const items: DriftFinding[] = [];
  // A rule edited in place shows as delete + create at one priority: one `changed` item.
  const creates = new Map<number, KernelRule[]>();
  const deletes = new Map<number, KernelRule[]>();
  for (const change of changes) {
    if (change.kind !== 'rule') continue;
    const [map, rule] = change.action === 'create' ? [creates, change.after] : [deletes, change.before];
    map.set(rule.priority, [...(map.get(rule.priority) ?? []), rule]);
  }
  const paired = new Set<number>();
  for (const [priority, created] of creates) {
    const deleted = deletes.get(priority);
    if (created.length === 1 && deleted?.length === 1) paired.add(priority);
  }
  for (const change of changes) {
    switch (change.kind) {
      case 'sysctl':
        items.push({
          object: `sysctl ${change.key}`,
          kind: change.action === 'create' ? 'missing' : 'changed',
          expected: `${change.key} = ${change.after}`,
          found: change.before === undefined ? null : `${change.key} = ${change.before}`,
        });
        break;
      case 'route':
        items.push({
          object: change.key,
          kind:
            change.action === 'create' ? 'missing' : change.action === 'delete' ? 'unexpected' : 'changed',
          expected: change.action === 'delete' ? null : describeRoute(change.after),
          found: change.action === 'create' ? null : describeRoute(change.before),
        });
        break;
      case 'rule': {
        const rule = change.action === 'create' ? change.after : change.before;
        if (paired.has(rule.priority)) {
          if (change.action === 'create') {
            items.push({
              object: `rule priority ${rule.priority}`,
              kind: 'changed',
              expected: describeRule(rule),
              found: describeRule(deletes.get(rule.priority)![0]!),
            });
          }
          break;
        }
        items.push({
          object: change.key,
          kind: change.action === 'create' ? 'missing' : 'unexpected',
          expected: change.action === 'create' ? describeRule(rule) : null,
          found: change.action === 'create' ? null : describeRule(rule),
        });
        break;
      }
      case 'nft':
        items.push(...nftItems(change));
        break;
    }
  }
  return items;
}

function nftItems(change: Extract<Change, { kind: 'nft' }>): DriftFinding[] {
  const table = (rules: readonly unknown[]) => `table inet uplink with ${rules.length} rule(s)`;
  if (change.before === null || change.after === null) {
    return [
      {
        object: 'nft table inet uplink',
        kind: change.before === null ? 'missing' : 'unexpected',
        expected: change.after === null ? null : table(change.after),
        found: change.before === null ? null : table(change.before),
      },
    ];
  }
  const wanted = new Set(change.after.map(describeNftRule));
  const had = new Set(change.before.map(describeNftRule));
  return [
    ...[...wanted]
      .filter((text) => !had.has(text))
      .map((text): DriftFinding => ({ object: `nft ${text}`, kind: 'missing', expected: text, found: null })),
    ...[...had]
      .filter((text) => !wanted.has(text))
      .map(
        (text): DriftFinding => ({ object: `nft ${text}`, kind: 'unexpected', expected: null, found: text }),
      ),
  ];
}

const LOCAL_TABLE = 255;

/**
 * Foreign rules evaluated before (or between) Uplink's rules that match some of the same
 * packets, and foreign routes inside Uplink's tables. One warning per foreign object.
 */
function findShadowing(effective: KernelState, current: KernelState, scope: OwnershipScope): DriftFinding[] {
  const ours = new Set(scope.protocols);
  const ourRules = [...effective.rules].sort(compareRules);
  // `ip rule` and `ip -6 rule` are separate lists: a priority is taken per family.
  const slot = (rule: KernelRule) => `${rule.family ?? 'inet'} ${rule.priority}`;
  const ourPriorities = new Map<string, KernelRule>();
  for (const rule of ourRules) if (!ourPriorities.has(slot(rule))) ourPriorities.set(slot(rule), rule);
  const findings: DriftFinding[] = [];

  for (const rule of [...current.rules].sort(compareRules)) {
    if (ours.has(rule.protocol)) continue;
    const object = `foreign rule ${describeRule(rule)}`;
    const atOurs = ourPriorities.get(slot(rule));
    if (atOurs !== undefined) {
      findings.push({
        object,
        kind: 'shadowed',
        expected: `only Uplink's rule at priority ${rule.priority}: ${describeRule(atOurs)}`,
        found: `a rule not written by Uplink at Uplink's priority ${rule.priority}: ${describeRule(rule)}`,
      });
      continue;
    }
    if (!capturesTraffic(rule)) continue;
    // A rule for every packet into a table with a default route (a DHCP client's route in
    // main, say) takes all traffic: Uplink's catch-alls after it are shadowed too.
    const fallbackDefault = hasSelector(rule) ? undefined : defaultRouteOf(current, rule);
    const captured = ourRules.filter(
      (our) =>
        our.family === rule.family &&
        our.priority > rule.priority &&
        (fallbackDefault !== undefined || (hasSelector(our) && overlaps(rule, our))),
    );
    const [first] = captured;
    if (first === undefined) continue;
    const more = captured.length > 1 ? ` (and ${captured.length - 1} more of Uplink's rules)` : '';
    findings.push({
      object,
      kind: 'shadowed',
      expected: `packets reach Uplink's rule ${describeRule(first)}${more}`,
      found:
        fallbackDefault === undefined
          ? `${describeRule(rule)} is evaluated first and matches some of the same packets`
          : `${describeRule(rule)} is evaluated first and table ${describeTable(fallbackDefault.table)} holds a default route (${describeRoute(fallbackDefault)}): it takes every packet`,
    });
  }

  const tables = new Set(scope.tables);
  const adopted = new Set(scope.adoptTables);
  for (const route of [...current.routes].sort(compareRoutes)) {
    if (ours.has(route.protocol) || !tables.has(route.table) || adopted.has(route.table)) continue;
    findings.push(foreignRoute(route));
  }
  return findings;
}

function foreignRoute(route: KernelRoute): DriftFinding {
  return {
    object: `foreign route ${describeRouteKey(route)}`,
    kind: 'shadowed',
    expected: `only Uplink's routes in table ${describeTable(route.table)}`,
    found: `a route not written by Uplink: ${describeRoute(route)}`,
  };
}

/**
 * Uplink's catch-alls (`lookup main suppress_prefixlength 0`, the balance and fallback
 * lookups) are meant to come last: a foreign rule before them is the site's business. The
 * rules that pick traffic by mark, source, uid, port… are what a foreign rule can steal.
 */
function hasSelector(rule: KernelRule): boolean {
  return (
    rule.from !== undefined ||
    rule.to !== undefined ||
    rule.iif !== undefined ||
    rule.oif !== undefined ||
    rule.fwmark !== undefined ||
    rule.uidrange !== undefined ||
    rule.ipproto !== undefined ||
    rule.sport !== undefined ||
    rule.dport !== undefined ||
    rule.tos !== undefined
  );
}

/** The kernel's own `lookup local` and `suppress_prefixlength` rules never take all of a packet class. */
/** The default route of the table a lookup rule names, if the table has one. */
function defaultRouteOf(current: KernelState, rule: KernelRule): KernelRoute | undefined {
  if (rule.action !== 'lookup') return undefined;
  const table = rule.table ?? 254;
  return current.routes.find(
    (r) =>
      r.family === rule.family &&
      r.table === table &&
      (r.dst === '0.0.0.0/0' || r.dst === '::/0') &&
      r.type === 'unicast',
  );
}

function capturesTraffic(rule: KernelRule): boolean {
  if (rule.action === 'lookup' && (rule.table ?? 254) === LOCAL_TABLE) return false;
  return rule.suppressPrefixlength === undefined;
}

/** Some packet matches both selectors (unset fields match everything). */
export function overlaps(a: KernelRule, b: KernelRule): boolean {
  return (
    both(a.from, b.from, cidrsOverlap) &&
    both(a.to, b.to, cidrsOverlap) &&
    both(a.iif, b.iif, equal) &&
    both(a.oif, b.oif, equal) &&
    both(a.ipproto, b.ipproto, equal) &&
    both(a.tos, b.tos, equal) &&
    both(a.uidrange, b.uidrange, rangesOverlap) &&
    both(a.sport, b.sport, rangesOverlap) &&
    both(a.dport, b.dport, rangesOverlap) &&
    marksOverlap(a, b)
  );
}

function both<T>(a: T | undefined, b: T | undefined, test: (a: T, b: T) => boolean): boolean {
  return a === undefined || b === undefined || test(a, b);
}

function equal<T>(a: T, b: T): boolean {
  return a === b;
}

function rangesOverlap(a: { start: number; end: number }, b: { start: number; end: number }): boolean {
  return a.start <= b.end && b.start <= a.end;
}

function marksOverlap(a: KernelRule, b: KernelRule): boolean {
  if (a.fwmark === undefined || b.fwmark === undefined) return true;
  const mask = (a.fwmask ?? 0xffffffff) & (b.fwmask ?? 0xffffffff);
  return ((a.fwmark ^ b.fwmark) & mask) >>> 0 === 0;
}

function cidrsOverlap(a: string, b: string): boolean {
  if (a.includes(':') !== b.includes(':')) return false;
  const [addressA, bitsA] = ipaddr.parseCIDR(a);
  const [addressB, bitsB] = ipaddr.parseCIDR(b);
  const bits = Math.min(bitsA, bitsB);
  return bits === 0 || addressA.match(addressB, bits);
}
