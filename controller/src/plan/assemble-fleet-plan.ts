/**
 * Two loaded revisions of the fleet → the plan of a pull request, site by site: what
 * changes in each site's desired state, which sites are unchanged, which are invalid at
 * head (with their diagnostics), the rollout wave of each changed site, and which traffic
 * classes move to another uplink. Pure: the command reads both revisions and passes them in.
 */
import type { DesiredState } from '#agent/model';
import { compileSite } from '../compile/compile-site.js';
import { buildSiteView, explainClasses, type SiteViewOptions, trafficClassesOf } from '../explain/index.js';
import { planRollout, type ReportedSite } from '../rollout/plan-rollout.js';
import type { Diagnostic } from '../spec/diagnostic.js';
import type { FleetLoad } from '../spec/load-fleet.js';
import type { ValidSite } from '../spec/valid-site.js';
import { checkManagementOffline, type OfflineManagementCheck } from './check-management-offline.js';
import { diffDesiredStates, type ObjectChange } from './diff-desired-states.js';

export type SiteStatus = 'added' | 'removed' | 'changed' | 'unchanged' | 'invalid';

export interface PlannedRevision {
  /** As the user wrote it (`main`, `HEAD~1`). */
  readonly rev: string;
  readonly commit: string;
  readonly load: FleetLoad;
  /** Repository paths of the revision's files (to tell an invalid site from a removed one). */
  readonly files: readonly string[];
}

export interface SitePlan {
  readonly site: string;
  readonly status: SiteStatus;
  /**
   * The rollout wave the site goes in at head (as the controller would plan this change);
   * null when removed or head is invalid.
   */
  readonly wave: string | null;
  /** Set when that wave is the canary stand-in (D122): the wave the site comes from. */
  readonly standInFrom: string | null;
  readonly changes: readonly ObjectChange[];
  /** Traffic classes that leave by another uplink at head, e.g. `policy smtp: isp1 (wan1) → isp2 (wan2)`. */
  readonly moves: readonly string[];
  /** Content hashes of the compiled desired states (null where the site is absent or invalid). */
  readonly hash: { readonly base: string | null; readonly head: string | null };
  /** Error diagnostics in the site's own file at head (status `invalid`). */
  readonly diagnostics: readonly Diagnostic[];
  readonly notes: readonly string[];
  /**
   * The agent's management-path guard run offline against the site's reported facts (D173),
   * for a changed site when facts were asked for (`--state-dir`, `--facts`); absent otherwise.
   */
  readonly managementPath?: OfflineManagementCheck;
}

export interface PlanOptions {
  /**
   * Per site, the router's facts (or why there are none), when the plan is asked with facts:
   * traffic classes are then simulated over them and the management path is checked.
   */
  readonly facts?: ReadonlyMap<string, SiteViewOptions>;
  /**
   * compileSite, or a cache's memoised compile (a site unchanged between base and head is then
   * compiled once, D151).
   */
  readonly compile?: (site: ValidSite) => DesiredState;
}

export interface FleetPlan {
  readonly base: { readonly rev: string; readonly commit: string };
  readonly head: { readonly rev: string; readonly commit: string };
  /** In site-name order. */
  readonly sites: readonly SitePlan[];
  /** Every error and warning at head, in file:line:col order. */
  readonly diagnostics: readonly Diagnostic[];
  /** About the base revision: no fleet there yet, sites invalid there. */
  readonly notes: readonly string[];
  readonly summary: Readonly<Record<SiteStatus, number>>;
  /** The rollout of this change at head, wave by wave (empty when head is invalid or nothing changes). */
  readonly rollout: readonly {
    readonly wave: string;
    readonly sites: readonly string[];
    readonly standInFrom: string | null;
    readonly bakeMs: number;
  }[];
}

export function assembleFleetPlan(
  base: PlannedRevision,
  head: PlannedRevision,
  options: PlanOptions = {},
): FleetPlan {
  const compile = options.compile ?? compileSite;
  const baseSites = new Map(base.load.validSites.map((s) => [s.name, s]));
  const headSites = new Map(head.load.validSites.map((s) => [s.name, s]));
  const headInvalid = invalidSiteFiles(head);
  const baseInvalid = invalidSiteFiles(base);
  // The rollout the controller would run for this change: base's states as what the routers run.
  const rollout = head.load.fleet
    ? planRollout({
        fleet: head.load.fleet,
        desired: new Map(head.load.fleet.sites.map((site) => [site.name, compile(site)] as const)),
        reported: new Map(
          [...baseSites].map(([name, site]): [string, ReportedSite] => [
            name,
            { reachable: true, appliedHash: compile(site).hash },
          ]),
        ),
        commit: head.commit,
      }).waves
    : [];
  const waves = new Map<string, { wave: string; standInFrom: string | null }>();
  for (const w of rollout)
    for (const p of w.sites) waves.set(p.site, { wave: w.name, standInFrom: w.standInFrom ?? null });
  const headErrors = head.load.diagnostics.filter((d) => d.severity === 'error');

  const names = new Set([...baseSites.keys(), ...headSites.keys(), ...headInvalid.keys()]);
  const sites = [...names].sort().map((name): SitePlan => {
    const before = baseSites.get(name);
    const after = headSites.get(name);
    const invalidFile = headInvalid.get(name);
    if (after === undefined && invalidFile !== undefined) {
      return {
        site: name,
        status: 'invalid',
        wave: null,
        standInFrom: null,
        changes: [],
        moves: [],
        hash: { base: before ? compile(before).hash : null, head: null },
        diagnostics: headErrors.filter((d) => d.file === invalidFile),
        notes: [],
      };
    }
    return planSite(
      name,
      before,
      after,
      waves.get(name) ?? null,
      baseInvalid.has(name),
      options.facts?.get(name),
      compile,
    );
  });

  const notes: string[] = [];
  if (!base.files.some((f) => /^fleet\.ya?ml$/.test(f))) {
    notes.push(`base ${short(base.commit)} has no fleet.yaml: every site at head is new`);
  }
  for (const [name, file] of [...baseInvalid].sort()) {
    notes.push(`site ${name} (${file}) is invalid at base ${short(base.commit)}: compared as new`);
  }
  if (options.facts === undefined && sites.some((s) => s.status === 'changed')) {
    notes.push(
      "traffic classes are simulated from the spec alone, with stand-ins for what only the routers know, and the management path is not checked; pass --state-dir DIR (the controller's) or --facts SITE=FILE for the routers' reported facts",
    );
  }
  if (head.load.fleet === undefined && headErrors.length > 0) {
    notes.push('head is invalid: rollout waves are not assigned until every error is fixed');
  }

  const summary: Record<SiteStatus, number> = { added: 0, removed: 0, changed: 0, unchanged: 0, invalid: 0 };
  for (const s of sites) summary[s.status]++;
  return {
    base: { rev: base.rev, commit: base.commit },
    head: { rev: head.rev, commit: head.commit },
    sites,
    diagnostics: head.load.diagnostics,
    notes,
    summary,
    rollout: rollout.map((w) => ({
      wave: w.name,
      sites: w.sites.map((p) => p.site),
      standInFrom: w.standInFrom ?? null,
      bakeMs: w.bakeMs,
    })),
  };
}

function planSite(
  name: string,
  before: ValidSite | undefined,
  after: ValidSite | undefined,
  wave: { wave: string; standInFrom: string | null } | null,
  invalidAtBase: boolean,
  viewOptions: SiteViewOptions | undefined,
  compile: (site: ValidSite) => DesiredState,
): SitePlan {
  const b = before ? compile(before) : null;
  const a = after ? compile(after) : null;
  const hash = { base: b?.hash ?? null, head: a?.hash ?? null };
  const changes = b?.hash === a?.hash ? [] : diffDesiredStates(b, a);
  const status: SiteStatus =
    a === null
      ? 'removed'
      : b === null
        ? invalidAtBase
          ? 'changed'
          : 'added'
        : changes.length > 0
          ? 'changed'
          : 'unchanged';
  const notes: string[] = [];
  if (invalidAtBase && a !== null) notes.push('invalid at base: every object is listed as new');
  if (status === 'removed')
    notes.push('the router keeps its last applied state; Uplink no longer manages it');
  let managementPath: OfflineManagementCheck | undefined;
  if (viewOptions !== undefined && after && status === 'changed') {
    notes.push(buildSiteView(after, [], viewOptions).notes[0]!);
    const record = viewOptions.facts?.record;
    managementPath =
      record === undefined
        ? { checked: false, reason: 'no facts reported by the router' }
        : before
          ? checkManagementOffline(b!, a!, record)
          : { checked: false, reason: 'the site is new' };
    if (managementPath.checked && managementPath.message !== null) notes.push(managementPath.message);
    else if (!managementPath.checked) notes.push(`management path not checked: ${managementPath.reason}`);
  }
  return {
    site: name,
    status,
    wave: status === 'removed' ? null : (wave?.wave ?? null),
    standInFrom: status === 'removed' ? null : (wave?.standInFrom ?? null),
    changes,
    moves: before && after && status === 'changed' ? movedClasses(before, after, notes, viewOptions) : [],
    hash,
    diagnostics: [],
    notes,
    ...(managementPath === undefined ? {} : { managementPath }),
  };
}

function movedClasses(
  before: ValidSite,
  after: ValidSite,
  notes: string[],
  viewOptions: SiteViewOptions | undefined,
): string[] {
  try {
    return explainClasses(before, after, trafficClassesOf(before, after), viewOptions)
      .filter((c) => c.moved)
      .map((c) => c.text);
  } catch (e) {
    // The plan stays useful without the simulation; say why it is missing.
    notes.push(`traffic classes could not be simulated: ${e instanceof Error ? e.message : String(e)}`);
    return [];
  }
}

/** Site name (the file's stem) → file, for site files at a revision that gave no valid site. */
function invalidSiteFiles(revision: PlannedRevision): Map<string, string> {
  const validFiles = new Set(revision.load.validSites.map((s) => s.file));
  const validNames = new Set(revision.load.validSites.map((s) => s.name));
  const out = new Map<string, string>();
  for (const file of revision.files) {
    const m = /^sites\/(.+)\.ya?ml$/.exec(file);
    if (m === null || validFiles.has(file) || validNames.has(m[1]!)) continue;
    out.set(m[1]!, file);
  }
  return out;
}

export function short(commit: string): string {
  return /^[0-9a-f]{40}/.test(commit) ? commit.slice(0, 12) : commit;
}

/** 0 no change, 1 changes, 2 the head has errors (the plan is incomplete). */
export function planExitCode(plan: FleetPlan): 0 | 1 | 2 {
  if (plan.diagnostics.some((d) => d.severity === 'error')) return 2;
  return plan.sites.some((s) => s.status !== 'unchanged') ? 1 : 0;
}
