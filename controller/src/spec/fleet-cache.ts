/**
 * Work a fleet load can reuse from the loads before it, keyed by content (D151): a file's
 * parse and schema check by its path and text (the text is the git blob, so this is the
 * blob id's key without trusting an id), and a site's group merge and semantic check
 * also by the groups it reaches through `extends` and the fleet defaults. A one-site
 * commit re-checks one site; a changed group re-checks exactly the sites that reach it;
 * a changed fleet.yaml default re-checks every site. Compiled states are memoised by the
 * ValidSite they come from (compileSite), so a reused site is not compiled again either.
 *
 * Entries not used by the last two loads are dropped after each load, so the cache holds
 * at most two revisions (a plan's base and head, the daemon's previous and new commit).
 */
import type { DesiredState } from '#agent/model';
import { compileSite } from '../compile/compile-site.js';
import type { Diagnostic } from './diagnostic.js';
import type { LoadedGroup } from './merge-groups.js';
import type { ParsedFile } from './parse-yaml-file.js';
import type { ValidSite } from './valid-site.js';

/** A file's parse and schema check: depends on its path and text only. */
export interface FileStage<T> {
  readonly parsed: ParsedFile;
  readonly parseDiagnostics: readonly Diagnostic[];
  /** Absent when the parse had an error (the schema is then not checked). */
  readonly schema?: { readonly value: T | undefined; readonly diagnostics: readonly Diagnostic[] };
  /** For a group file: the group as the merge sees it, one object per content (compared by identity). */
  group?: LoadedGroup;
  /** For a site file: its merge and check, valid while `deps` still hold. */
  check?: SiteCheckStage;
}

export interface SiteCheckStage {
  /** Every group name the site reaches through extends, in walk order, and what it was. */
  readonly deps: readonly (readonly [string, LoadedGroup | undefined])[];
  /** The known group names, when some reached name was unknown (the diagnostic lists them). */
  readonly known: string;
  readonly defaults: string;
  readonly mergeDiagnostics: readonly Diagnostic[];
  readonly checkDiagnostics: readonly Diagnostic[];
  readonly site: ValidSite | undefined;
}

interface Entry {
  readonly text: string;
  readonly stage: FileStage<unknown>;
  used: number;
}

export interface FleetCacheStats {
  /** Files parsed and schema-checked (misses). */
  parsed: number;
  /** Sites merged and checked (misses), by name. */
  checkedSites: string[];
  /** Sites compiled (misses) since the last load began. */
  compiledSites: number;
}

export class FleetCache {
  readonly #entries = new Map<string, Entry[]>();
  readonly #compiled = new WeakMap<ValidSite, DesiredState>();
  #generation = 0;
  /** What the last load had to do; reset at the start of each load. */
  stats: FleetCacheStats = { parsed: 0, checkedSites: [], compiledSites: 0 };

  /** Starts a load: entries it touches are kept for this load and the next. */
  begin(): void {
    this.#generation++;
    this.stats = { parsed: 0, checkedSites: [], compiledSites: 0 };
  }

  /** Ends a load: drops what neither this load nor the one before used. */
  end(): void {
    for (const [path, list] of this.#entries) {
      const kept = list.filter((e) => e.used >= this.#generation - 1);
      if (kept.length === 0) this.#entries.delete(path);
      else if (kept.length !== list.length) this.#entries.set(path, kept);
    }
  }

  /** The file's stage for this exact text, computed by `make` on a miss. */
  file<T>(path: string, text: string, make: () => FileStage<T>): FileStage<T> {
    let list = this.#entries.get(path);
    const hit = list?.find((e) => e.text === text);
    if (hit !== undefined) {
      hit.used = this.#generation;
      return hit.stage as FileStage<T>;
    }
    this.stats.parsed++;
    const stage = make();
    if (list === undefined) {
      list = [];
      this.#entries.set(path, list);
    }
    list.push({ text, stage: stage as FileStage<unknown>, used: this.#generation });
    return stage;
  }

  /**
   * The site's desired state, compiled once per ValidSite: a site reused from the cache is
   * the same object, so its state is not compiled again. States are shared: never mutate one.
   */
  compile(site: ValidSite): DesiredState {
    let state = this.#compiled.get(site);
    if (state === undefined) {
      state = compileSite(site);
      this.#compiled.set(site, state);
      this.stats.compiledSites++;
    }
    return state;
  }

  /** Number of cached file versions (for tests of the bound). */
  get size(): number {
    let n = 0;
    for (const list of this.#entries.values()) n += list.length;
    return n;
  }
}

/**
 * The groups a body reaches through `extends`, as mergeSite walks them: each name once,
 * with the group it resolved to (undefined when unknown).
 */
export function reachedGroups(
  extendsList: readonly string[] | undefined,
  groups: ReadonlyMap<string, LoadedGroup>,
): [string, LoadedGroup | undefined][] {
  const out: [string, LoadedGroup | undefined][] = [];
  const seen = new Set<string>();
  const walk = (names: readonly string[] | undefined) => {
    for (const name of names ?? []) {
      if (seen.has(name)) continue;
      seen.add(name);
      const group = groups.get(name);
      out.push([name, group]);
      if (group !== undefined) walk(group.spec.extends);
    }
  };
  walk(extendsList);
  return out;
}

/** Whether a cached check still holds for these groups and defaults. */
export function checkHolds(
  stage: SiteCheckStage,
  deps: readonly (readonly [string, LoadedGroup | undefined])[],
  known: string,
  defaults: string,
): boolean {
  if (stage.defaults !== defaults || stage.known !== known || stage.deps.length !== deps.length) return false;
  for (let i = 0; i < deps.length; i++) {
    if (stage.deps[i]![0] !== deps[i]![0] || stage.deps[i]![1] !== deps[i]![1]) return false;
  }
  return true;
}
