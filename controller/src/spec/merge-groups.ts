/**
 * Group inheritance. A site (or group) `extends` groups, applied in order, then its own
 * content on top:
 * - maps (labels, settings, sysctls) merge key by key, later wins;
 * - lists of named things merge by name (providers and policies by `name`, lan by
 *   `interface`): a later item with the same name overrides field by field (`health`
 *   merges key by key); `remove: true` deletes the inherited item; new items append;
 * - scalars and plain lists replace; `field: null` removes an inherited value.
 * Every merged field remembers where it was written, so diagnostics point at the file
 * and line that set it.
 */
import type { Diagnostic } from './diagnostic.js';
import { diagnosticAt, type ParsedFile } from './parse-yaml-file.js';
import type { GroupSpec, LanSpec, PolicySpec, ProviderSpec, SiteSpec } from './spec-schema.js';

export interface Origin {
  readonly parsed: ParsedFile;
  readonly path: readonly (string | number)[];
  /** Point at the key itself rather than its value (for a key that is not allowed). */
  readonly key?: boolean;
}

export interface Merged<T> {
  readonly value: T;
  /** Where the item was (last) declared. */
  readonly origin: Origin;
  /** Where each field was last set. */
  readonly fields: Readonly<Record<string, Origin>>;
}

/** After merging, `null` (the removal marker) never remains in a value. */
export type NoNulls<T> = { [K in keyof T]: Exclude<T[K], null> };

export interface MergedSite {
  readonly spec: SiteSpec;
  readonly parsed: ParsedFile;
  readonly labels: Record<string, string>;
  readonly settings: Merged<NonNullable<SiteSpec['settings']>>;
  readonly sysctls: Merged<Record<string, string | number>>;
  readonly lan: Merged<LanSpec>[];
  readonly providers: Merged<NoNulls<ProviderSpec>>[];
  readonly policies: Merged<PolicySpec>[];
}

export interface LoadedGroup {
  readonly spec: GroupSpec;
  readonly parsed: ParsedFile;
}

type Body = Pick<GroupSpec, 'labels' | 'settings' | 'lan' | 'providers' | 'policies' | 'sysctls' | 'extends'>;

interface Layer {
  readonly body: Body;
  readonly parsed: ParsedFile;
}

export function mergeSite(
  site: { spec: SiteSpec; parsed: ParsedFile },
  groups: ReadonlyMap<string, LoadedGroup>,
): { merged: MergedSite; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const layers: Layer[] = [];
  collectLayers(site.spec, site.parsed, groups, [], layers, diagnostics, `site ${site.spec.name}`);
  layers.push({ body: site.spec, parsed: site.parsed });

  const labels: Record<string, string> = {};
  const settings = emptyMerged<Record<string, unknown>>(site.parsed);
  const sysctls = emptyMerged<Record<string, string | number>>(site.parsed);
  const lan = new Map<string, Merged<LanSpec>>();
  const providers = new Map<string, Merged<NoNulls<ProviderSpec>>>();
  const policies = new Map<string, Merged<PolicySpec>>();

  for (const { body, parsed } of layers) {
    Object.assign(labels, body.labels ?? {});
    mergeMap(settings, body.settings ?? {}, parsed, ['settings']);
    mergeMap(sysctls, body.sysctls ?? {}, parsed, ['sysctls']);
    mergeNamed(lan, body.lan ?? [], (l) => l.interface, parsed, 'lan', diagnostics);
    mergeNamed(
      providers,
      (body.providers ?? []) as NoNulls<ProviderSpec>[],
      (p) => p.name,
      parsed,
      'providers',
      diagnostics,
    );
    mergeNamed(policies, body.policies ?? [], (p) => p.name, parsed, 'policies', diagnostics);
  }

  return {
    merged: {
      spec: site.spec,
      parsed: site.parsed,
      labels,
      settings: settings as Merged<NonNullable<SiteSpec['settings']>>,
      sysctls,
      lan: [...lan.values()],
      providers: [...providers.values()],
      policies: [...policies.values()],
    },
    diagnostics,
  };
}

function collectLayers(
  body: Body,
  parsed: ParsedFile,
  groups: ReadonlyMap<string, LoadedGroup>,
  chain: readonly string[],
  out: Layer[],
  diagnostics: Diagnostic[],
  subject: string,
): void {
  (body.extends ?? []).forEach((name, i) => {
    const group = groups.get(name);
    if (!group) {
      const known = [...groups.keys()].sort();
      diagnostics.push(
        diagnosticAt(
          parsed,
          ['extends', i],
          'error',
          `${subject}: extends unknown group "${name}"; known groups: ${known.join(', ') || '(none: add groups/<name>.yaml)'}`,
        ),
      );
      return;
    }
    if (chain.includes(name)) {
      diagnostics.push(
        diagnosticAt(
          parsed,
          ['extends', i],
          'error',
          `${subject}: group inheritance cycle ${[...chain, name].join(' → ')}; remove one of these extends`,
        ),
      );
      return;
    }
    collectLayers(group.spec, group.parsed, groups, [...chain, name], out, diagnostics, `group ${name}`);
    out.push({ body: group.spec, parsed: group.parsed });
  });
}

function emptyMerged<T extends object>(
  parsed: ParsedFile,
): { value: T; origin: Origin; fields: Record<string, Origin> } {
  return { value: {} as T, origin: { parsed, path: [] }, fields: {} };
}

function mergeMap(
  target: { value: Record<string, unknown>; fields: Record<string, Origin> },
  source: Record<string, unknown>,
  parsed: ParsedFile,
  path: readonly string[],
): void {
  for (const [key, value] of Object.entries(source)) {
    target.value[key] = value;
    target.fields[key] = { parsed, path: [...path, key] };
  }
}

function mergeNamed<T extends { remove?: true }>(
  target: Map<string, Merged<T>>,
  items: readonly T[],
  keyOf: (item: T) => string,
  parsed: ParsedFile,
  listName: string,
  diagnostics: Diagnostic[],
): void {
  const seenHere = new Map<string, number>();
  items.forEach((item, index) => {
    const key = keyOf(item);
    const path = [listName, index] as const;
    const first = seenHere.get(key);
    if (first !== undefined) {
      // Merging by name is for overriding an inherited item; twice in one file is a mistake.
      diagnostics.push(
        diagnosticAt(
          parsed,
          [...path, listName === 'lan' ? 'interface' : 'name'],
          'error',
          `${listName} ${key}: already listed as ${listName}[${first}] in this file; list each ${listName === 'lan' ? 'interface' : 'name'} once`,
        ),
      );
      return;
    }
    seenHere.set(key, index);
    const existing = target.get(key);
    if (item.remove) {
      if (!existing) {
        diagnostics.push(
          diagnosticAt(
            parsed,
            [...path, 'remove'],
            'warning',
            `${listName} ${key}: remove: true has nothing to remove; no inherited item has that name`,
          ),
        );
      }
      target.delete(key);
      return;
    }
    const fields: Record<string, Origin> = existing ? { ...existing.fields } : {};
    const value: Record<string, unknown> = existing ? { ...(existing.value as Record<string, unknown>) } : {};
    for (const [field, fieldValue] of Object.entries(item)) {
      if (fieldValue === null) {
        // `field: null` removes an inherited value.
        delete value[field];
        fields[field] = { parsed, path: [...path, field] };
        continue;
      }
      const prior = value[field];
      value[field] =
        field === 'health' && isPlainObject(prior) && isPlainObject(fieldValue)
          ? { ...(prior as Record<string, unknown>), ...(fieldValue as Record<string, unknown>) }
          : fieldValue;
      fields[field] = { parsed, path: [...path, field] };
    }
    // Keep the first declaration's position in the list: overriding does not reorder.
    target.set(key, { value: value as T, origin: { parsed, path }, fields });
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
