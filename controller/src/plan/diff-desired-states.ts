/**
 * What changes between two desired states of one site, object by object: settings,
 * providers (tables, marks, roles), sysctls, routes, rules and the nft table. Objects are
 * matched by their compiled identity — rule and route `id`, provider name, sysctl key — so
 * an edited policy reads as one `update` with before and after, not as a delete and a
 * create. nft rules have no id: they are added or removed whole. `null` is "no site".
 */
import { stableJson } from '#agent/core';
import type { DesiredState } from '#agent/model';
import {
  describeDesiredNft,
  describeDesiredRoute,
  describeDesiredRouteKey,
  describeDesiredRule,
  providerFields,
  settingsFields,
} from './describe-desired-object.js';

export type PlanAction = 'create' | 'update' | 'delete';
export type PlanObjectKind = 'setting' | 'provider' | 'sysctl' | 'route' | 'rule' | 'nft';

export interface ObjectChange {
  readonly kind: PlanObjectKind;
  readonly action: PlanAction;
  /** The object's identity: `isp1`, `net.ipv4.ip_forward`, `table 100 default`, `policy:smtp:isp1#0`. */
  readonly key: string;
  readonly before: string | null;
  readonly after: string | null;
}

export const OBJECT_KINDS: readonly PlanObjectKind[] = [
  'setting',
  'provider',
  'sysctl',
  'route',
  'rule',
  'nft',
];

export function diffDesiredStates(before: DesiredState | null, after: DesiredState | null): ObjectChange[] {
  return [
    ...diffSettings(before, after),
    ...diffProviders(before, after),
    ...diffSysctls(before, after),
    ...diffRoutes(before, after),
    ...diffRules(before, after),
    ...diffNft(before, after),
  ];
}

/** Pairs of objects by identity, in the order: after's order, then the ones only before had. */
function pair<T>(
  before: readonly T[],
  after: readonly T[],
  identity: (item: T) => string,
): { key: string; before: T | undefined; after: T | undefined }[] {
  const had = new Map(before.map((item) => [identity(item), item]));
  const out: { key: string; before: T | undefined; after: T | undefined }[] = [];
  const seen = new Set<string>();
  for (const item of after) {
    const key = identity(item);
    seen.add(key);
    out.push({ key, before: had.get(key), after: item });
  }
  for (const item of before) {
    const key = identity(item);
    if (!seen.has(key)) out.push({ key, before: item, after: undefined });
  }
  return out;
}

function change(
  kind: PlanObjectKind,
  key: string,
  before: string | null,
  after: string | null,
): ObjectChange | undefined {
  if (before === after) return undefined;
  const action: PlanAction = before === null ? 'create' : after === null ? 'delete' : 'update';
  return { kind, action, key, before, after };
}

function defined<T>(items: readonly (T | undefined)[]): T[] {
  return items.filter((x): x is T => x !== undefined);
}

function diffFields(
  kind: PlanObjectKind,
  key: string,
  before: Record<string, string> | undefined,
  after: Record<string, string> | undefined,
): ObjectChange | undefined {
  const line = (fields: Record<string, string>) =>
    Object.entries(fields)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  if (before === undefined || after === undefined)
    return change(kind, key, before ? line(before) : null, after ? line(after) : null);
  const changed = Object.keys(after).filter((k) => before[k] !== after[k]);
  if (changed.length === 0) return undefined;
  // Only the fields that differ: `mark 0x100 → 0x200` reads better than two long lines.
  return {
    kind,
    action: 'update',
    key,
    before: changed.map((k) => `${k} ${before[k]}`).join(', '),
    after: changed.map((k) => `${k} ${after[k]}`).join(', '),
  };
}

function diffSettings(before: DesiredState | null, after: DesiredState | null): ObjectChange[] {
  // An added or removed site is described by its objects; its settings are only news when they change.
  if (before === null || after === null) return [];
  const b = settingsFields(before.settings);
  const a = settingsFields(after.settings);
  return defined(Object.keys(a).map((k) => change('setting', k, b[k] ?? null, a[k] ?? null)));
}

function diffProviders(before: DesiredState | null, after: DesiredState | null): ObjectChange[] {
  return defined(
    pair(before?.providers ?? [], after?.providers ?? [], (p) => p.name).map((p) =>
      diffFields('provider', p.key, p.before && providerFields(p.before), p.after && providerFields(p.after)),
    ),
  );
}

function diffSysctls(before: DesiredState | null, after: DesiredState | null): ObjectChange[] {
  const b = before?.sysctls ?? {};
  const a = after?.sysctls ?? {};
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
  // A sysctl Uplink stops setting keeps its value on the router (the agent leaves it).
  return defined(keys.map((k) => change('sysctl', k, b[k] ?? null, a[k] ?? null)));
}

function diffRoutes(before: DesiredState | null, after: DesiredState | null): ObjectChange[] {
  const text = (state: DesiredState | null, route: DesiredState['routes'][number] | undefined) =>
    route === undefined || state === null ? null : describeDesiredRoute(route, state);
  // Paired by compiled id; shown by the kernel's identity, `table 100 default`.
  return defined(
    pair(before?.routes ?? [], after?.routes ?? [], (r) => r.id).map((p) =>
      change(
        'route',
        describeDesiredRouteKey((p.after ?? p.before)!),
        text(before, p.before),
        text(after, p.after),
      ),
    ),
  );
}

function diffRules(before: DesiredState | null, after: DesiredState | null): ObjectChange[] {
  const text = (state: DesiredState | null, rule: DesiredState['rules'][number] | undefined) => {
    if (rule === undefined || state === null) return null;
    const condition = rule.requires === undefined ? '' : ` (only while ${rule.requires} is available)`;
    return `${describeDesiredRule(rule, state)}${condition}`;
  };
  const changes = defined(
    pair(before?.rules ?? [], after?.rules ?? [], (r) => r.id).map((p) =>
      change('rule', p.key, text(before, p.before), text(after, p.after)),
    ),
  );
  const priorityOf = (c: ObjectChange) =>
    (after?.rules.find((r) => r.id === c.key) ?? before?.rules.find((r) => r.id === c.key))?.priority ?? 0;
  return changes.sort((x, y) => priorityOf(x) - priorityOf(y));
}

function diffNft(before: DesiredState | null, after: DesiredState | null): ObjectChange[] {
  const b = new Map((before?.nft ?? []).map((r) => [stableJson(r), r]));
  const a = new Map((after?.nft ?? []).map((r) => [stableJson(r), r]));
  const out: ObjectChange[] = [];
  for (const [key, rule] of b) {
    if (!a.has(key))
      out.push({
        kind: 'nft',
        action: 'delete',
        key: rule.provider,
        before: describeDesiredNft(rule),
        after: null,
      });
  }
  for (const [key, rule] of a) {
    if (!b.has(key))
      out.push({
        kind: 'nft',
        action: 'create',
        key: rule.provider,
        before: null,
        after: describeDesiredNft(rule),
      });
  }
  return out;
}
