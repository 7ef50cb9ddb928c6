/**
 * The validation pipeline for a whole fleet repository: parse (with positions) → schema
 * → group merge → per-site semantic rules → fleet-wide rules. Pure: it takes the files'
 * text, so it serves a working directory and a git revision alike.
 */

import type { z } from 'zod';
import { canonicalJson, describeRange, LIMITS, protocolProblem } from '#agent/model';
import { assignWaves } from './assign-waves.js';
import { checkDurationRange } from './check-health.js';
import { checkHealth, checkSite } from './check-site.js';
import { type Diagnostic, formatDiagnostic, hasErrors, sortDiagnostics } from './diagnostic.js';
import { parseDuration } from './duration.js';
import {
  checkHolds,
  type FileStage,
  type FleetCache,
  reachedGroups,
  type SiteCheckStage,
} from './fleet-cache.js';
import { type LoadedGroup, mergeSite } from './merge-groups.js';
import { diagnosticAt, type ParsedFile, parseYamlFile } from './parse-yaml-file.js';
import { validateWithSchema } from './schema-diagnostics.js';
import {
  type FleetSpec,
  fleetSpec,
  type GroupSpec,
  groupSpec,
  type SiteSpec,
  siteSpec,
} from './spec-schema.js';
import {
  BUILTIN_DEFAULTS,
  type FleetDefaults,
  type ValidFleet,
  type ValidRollout,
  type ValidSite,
} from './valid-site.js';

export interface FleetLoad {
  /** Present only when there is no error. */
  readonly fleet?: ValidFleet;
  /** Sites that validated, even when others did not (for plan/explain of a partly broken head). */
  readonly validSites: readonly ValidSite[];
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * `files`: repository-relative path → text. Only fleet.yaml, groups/*.yaml and sites/*.yaml are read.
 * With a `cache`, files and sites unchanged since the loads before are not checked again
 * (D151); the answer is the same either way.
 */
export function loadFleet(files: ReadonlyMap<string, string>, cache?: FleetCache): FleetLoad {
  cache?.begin();
  try {
    return load(files, cache);
  } finally {
    cache?.end();
  }
}

/** Parse and schema-check one file (the part that depends on its path and text alone). */
function fileStage<T>(file: string, text: string, schema: z.ZodType<T>): FileStage<T> {
  const { parsed, diagnostics } = parseYamlFile(file, text);
  if (diagnostics.some((x) => x.severity === 'error')) return { parsed, parseDiagnostics: diagnostics };
  return { parsed, parseDiagnostics: diagnostics, schema: validateWithSchema(parsed, schema) };
}

function load(files: ReadonlyMap<string, string>, cache: FleetCache | undefined): FleetLoad {
  const stageOf = <T>(file: string, schema: z.ZodType<T>): FileStage<T> => {
    const text = files.get(file)!;
    return cache
      ? cache.file(file, text, () => fileStage(file, text, schema))
      : fileStage(file, text, schema);
  };
  const diagnostics: Diagnostic[] = [];
  const yamlFiles = [...files.keys()].filter((f) => /\.ya?ml$/.test(f)).sort();

  const fleetText = files.get('fleet.yaml') ?? files.get('fleet.yml');
  let fleetParsed: ParsedFile | undefined;
  let fleetValue: FleetSpec | undefined;
  if (fleetText === undefined) {
    diagnostics.push({
      severity: 'error',
      file: 'fleet.yaml',
      line: 1,
      col: 1,
      path: '',
      message:
        'fleet.yaml: missing; create it with at least a rollout: section (see fleet-repo-example/fleet.yaml)',
    });
  } else {
    const { parsed, diagnostics: d } = parseYamlFile(
      files.has('fleet.yaml') ? 'fleet.yaml' : 'fleet.yml',
      fleetText,
    );
    diagnostics.push(...d);
    fleetParsed = parsed;
    if (d.every((x) => x.severity !== 'error')) {
      const r = validateWithSchema(parsed, fleetSpec);
      diagnostics.push(...r.diagnostics);
      fleetValue = r.value;
    }
  }
  const defaults =
    fleetValue && fleetParsed ? resolveDefaults(fleetValue, fleetParsed, diagnostics) : BUILTIN_DEFAULTS;

  const groups = new Map<string, LoadedGroup>();
  for (const file of yamlFiles.filter((f) => f.startsWith('groups/'))) {
    const stage = stageOf<GroupSpec>(file, groupSpec);
    const { parsed } = stage;
    diagnostics.push(...stage.parseDiagnostics);
    const r = stage.schema;
    if (r === undefined) continue;
    diagnostics.push(...r.diagnostics);
    if (!r.value) continue;
    const prior = groups.get(r.value.name);
    if (prior) {
      diagnostics.push(
        diagnosticAt(
          parsed,
          ['name'],
          'error',
          `group ${r.value.name}: already defined in ${prior.parsed.file}; group names must be unique`,
        ),
      );
      continue;
    }
    // One object per group content: a cached site check compares its groups by identity.
    stage.group ??= { spec: r.value, parsed };
    groups.set(r.value.name, stage.group);
  }
  const defaultsKey = cache ? canonicalJson(defaults) : '';

  const validSites: ValidSite[] = [];
  const siteFiles = yamlFiles.filter((f) => f.startsWith('sites/'));
  const seenNames = new Map<string, string>();
  const seenMgmt = new Map<string, string>();
  let invalidSites = 0;
  for (const file of siteFiles) {
    const stage = stageOf<SiteSpec>(file, siteSpec);
    const { parsed } = stage;
    diagnostics.push(...stage.parseDiagnostics);
    const r = stage.schema;
    if (r === undefined) {
      invalidSites++;
      continue;
    }
    diagnostics.push(...r.diagnostics);
    if (!r.value) {
      invalidSites++;
      continue;
    }
    const spec = r.value;
    const stem = file.replace(/^sites\//, '').replace(/\.ya?ml$/, '');
    if (stem !== spec.name) {
      diagnostics.push(
        diagnosticAt(
          parsed,
          ['name'],
          'warning',
          `site ${spec.name}: file is named ${file}; name the file sites/${spec.name}.yaml so people find it`,
        ),
      );
    }
    const dupe = seenNames.get(spec.name);
    if (dupe) {
      diagnostics.push(
        diagnosticAt(
          parsed,
          ['name'],
          'error',
          `site ${spec.name}: name already used by ${dupe}; site names must be unique`,
        ),
      );
      invalidSites++;
      continue;
    }
    seenNames.set(spec.name, file);
    const mgmtKey = `${spec.management.address}:${spec.management.port ?? 22}`;
    const mgmtDupe = seenMgmt.get(mgmtKey);
    if (mgmtDupe) {
      diagnostics.push(
        diagnosticAt(
          parsed,
          ['management', 'address'],
          'error',
          `site ${spec.name}: management address ${mgmtKey} is already used by site ${mgmtDupe}; each router needs its own`,
        ),
      );
    }
    seenMgmt.set(mgmtKey, spec.name);

    let check = stage.check;
    if (cache) {
      const deps = reachedGroups(spec.extends, groups);
      const known = deps.some(([, g]) => g === undefined) ? [...groups.keys()].sort().join('\n') : '';
      if (check === undefined || !checkHolds(check, deps, known, defaultsKey)) {
        check = checkStage(spec, parsed, groups, defaults, deps, known, defaultsKey);
        stage.check = check;
        cache.stats.checkedSites.push(spec.name);
      }
    } else {
      check = checkStage(spec, parsed, groups, defaults, [], '', '');
    }
    diagnostics.push(...check.mergeDiagnostics);
    diagnostics.push(...check.checkDiagnostics);
    if (check.site && !mgmtDupe) validSites.push(check.site);
    else invalidSites++;
  }
  if (siteFiles.length === 0) {
    diagnostics.push({
      severity: 'warning',
      file: 'sites',
      line: 1,
      col: 1,
      path: '',
      message: 'sites: no site files; add sites/<name>.yaml',
    });
  }

  let rollout: ValidRollout | undefined;
  if (fleetParsed && fleetValue) {
    rollout = resolveRollout(fleetValue, fleetParsed, diagnostics);
    if (rollout && invalidSites === 0) checkWaves(rollout, validSites, fleetParsed, diagnostics);
  }

  // A finding in a shared group file (a cycle, a duplicate name) is found once per site
  // that extends it; report it once.
  const sorted = sortDiagnostics(diagnostics).filter(
    (d, i, all) =>
      i === 0 || formatDiagnostic(d) !== formatDiagnostic(all[i - 1]!) || d.path !== all[i - 1]!.path,
  );
  const ok = !hasErrors(sorted) && rollout !== undefined;
  return {
    fleet: ok ? { defaults, rollout: rollout!, sites: validSites } : undefined,
    validSites,
    diagnostics: sorted,
  };
}

/** A site's group merge and semantic check; `site` only when both are free of errors. */
function checkStage(
  spec: SiteSpec,
  parsed: ParsedFile,
  groups: ReadonlyMap<string, LoadedGroup>,
  defaults: FleetDefaults,
  deps: SiteCheckStage['deps'],
  known: string,
  defaultsKey: string,
): SiteCheckStage {
  const merged = mergeSite({ spec, parsed }, groups);
  const checked = checkSite(merged.merged, defaults);
  return {
    deps,
    known,
    defaults: defaultsKey,
    mergeDiagnostics: merged.diagnostics,
    checkDiagnostics: checked.diagnostics,
    site: checked.site && !hasErrors(merged.diagnostics) ? checked.site : undefined,
  };
}

function resolveDefaults(spec: FleetSpec, parsed: ParsedFile, diagnostics: Diagnostic[]): FleetDefaults {
  const d = spec.defaults ?? {};
  const p = d.priorities ?? {};
  const b = BUILTIN_DEFAULTS;
  const defaults: FleetDefaults = {
    protocol: d.protocol ?? b.protocol,
    markMask: d.markMask ?? b.markMask,
    tables: d.tables ?? b.tables,
    balanceTable: d.balanceTable === 'default' ? 253 : (d.balanceTable ?? b.balanceTable),
    drift: d.drift ?? b.drift,
    priorities: {
      suppressMain: p.suppressMain ?? b.priorities.suppressMain,
      track: p.track ?? b.priorities.track,
      source: p.source ?? b.priorities.source,
      policy: p.policy ?? b.priorities.policy,
      balance: p.balance ?? b.priorities.balance,
      fallback: p.fallback ?? b.priorities.fallback,
    },
    health: checkHealth(b.health, d.health, (path, message) =>
      diagnostics.push(
        diagnosticAt(parsed, ['defaults', 'health', ...path], 'error', `defaults.health.${message}`),
      ),
    ),
  };
  const err = (path: (string | number)[], message: string) =>
    diagnostics.push(diagnosticAt(parsed, path, 'error', message));
  const bands: [string, readonly [number, number]][] = [
    ['suppressMain', [defaults.priorities.suppressMain, defaults.priorities.suppressMain]],
    ['track', defaults.priorities.track],
    ['source', defaults.priorities.source],
    ['policy', defaults.priorities.policy],
    ['balance', [defaults.priorities.balance, defaults.priorities.balance]],
    ['fallback', defaults.priorities.fallback],
  ];
  for (const [name, [lo, hi]] of bands) {
    if (lo < LIMITS.rulePriority.min || hi > LIMITS.rulePriority.max || lo > hi) {
      err(
        ['defaults', 'priorities', name],
        `defaults.priorities.${name}: ${lo}–${hi} must be an ascending range within ${describeRange(LIMITS.rulePriority)} (0, 32766 and 32767 are the kernel's local, main and default rules)`,
      );
    }
  }
  // Blame the band written in fleet.yaml, not a built-in default it runs into.
  const written = (name: string) => (p as Record<string, unknown>)[name] !== undefined;
  const span = ([lo, hi]: readonly [number, number]) => (lo === hi ? `${lo}` : `${lo}–${hi}`);
  for (let i = 0; i < bands.length; i++) {
    for (let j = i + 1; j < bands.length; j++) {
      const [an, ab] = bands[i]!;
      const [bn, bb] = bands[j]!;
      if (ab[0] <= bb[1] && bb[0] <= ab[1]) {
        const [subject, sb, other, ob] = written(bn) || !written(an) ? [bn, bb, an, ab] : [an, ab, bn, bb];
        err(
          ['defaults', 'priorities', subject],
          `defaults.priorities.${subject}: ${span(sb)} overlaps ${other} (${span(ob)}${written(other) ? '' : ', the default'}); priority bands must not overlap`,
        );
      }
    }
  }
  const protocolIssue = protocolProblem(defaults.protocol);
  if (protocolIssue !== undefined) {
    err(
      ['defaults', 'protocol'],
      `defaults.protocol: ${defaults.protocol} is ${protocolIssue}; Uplink takes every rule and route with its protocol for its own, so write a free value such as 252 (the default)`,
    );
  }
  if (defaults.markMask === 0 || defaults.markMask > 0xffffffff) {
    err(['defaults', 'markMask'], 'defaults.markMask: must be a non-zero 32-bit mask, e.g. 0xff00');
  }
  const [tlo, thi] = defaults.tables;
  if (tlo < LIMITS.table.min || thi > LIMITS.table.max || tlo > thi || (tlo <= 255 && thi >= 253)) {
    err(
      ['defaults', 'tables'],
      `defaults.tables: ${tlo}–${thi} must be an ascending range that avoids 253–255 (default, main, local)`,
    );
  }
  return defaults;
}

function resolveRollout(
  spec: FleetSpec,
  parsed: ParsedFile,
  diagnostics: Diagnostic[],
): ValidRollout | undefined {
  const r = spec.rollout;
  if (!r) {
    diagnostics.push(
      diagnosticAt(
        parsed,
        [],
        'error',
        'fleet.yaml: rollout is required; add rollout: with waves: [{name: canary, select: {labels: {canary: "true"}}}, {name: rest}]',
      ),
    );
    return undefined;
  }
  const names = new Set<string>();
  const waves = r.waves.map((w, i) => {
    const at = (...k: string[]) => ['rollout', 'waves', i, ...k];
    if (names.has(w.name))
      diagnostics.push(
        diagnosticAt(
          parsed,
          at('name'),
          'error',
          `rollout.waves ${w.name}: name used twice; wave names must be unique`,
        ),
      );
    names.add(w.name);
    const kinds = [w.select, w.percent, w.count].filter((x) => x !== undefined).length;
    if (kinds > 1)
      diagnostics.push(
        diagnosticAt(parsed, at(), 'error', `rollout.waves ${w.name}: use one of select, percent or count`),
      );
    if (w.select && !w.select.labels && !w.select.sites) {
      diagnostics.push(
        diagnosticAt(
          parsed,
          at('select'),
          'error',
          `rollout.waves ${w.name}: select needs labels: or sites:`,
        ),
      );
    }
    return {
      name: w.name,
      select: w.select ? { labels: w.select.labels ?? {}, sites: w.select.sites ?? [] } : null,
      percent: w.percent ?? null,
      count: w.count ?? null,
      concurrency: w.concurrency ?? 16,
      maxFailures: w.maxFailures ?? 0,
      bakeMs: w.bake !== undefined ? parseDuration(w.bake) : 0,
    };
  });
  const confirmWithinMs = r.confirmWithin !== undefined ? parseDuration(r.confirmWithin) : 60_000;
  checkDurationRange(
    ['rollout', 'confirmWithin'],
    'rollout.confirmWithin',
    confirmWithinMs,
    LIMITS.confirmWithinMs,
    (path, message) =>
      diagnostics.push(
        diagnosticAt(
          parsed,
          path,
          'error',
          `${message} (the agent's commit-confirmed deadline is ${describeRange(LIMITS.confirmWithinMs, 'ms')})`,
        ),
      ),
  );
  return {
    confirmWithinMs,
    siteTimeoutMs: r.siteTimeout !== undefined ? parseDuration(r.siteTimeout) : 120_000,
    rollbackOnFailure: r.rollbackOnFailure ?? false,
    reconcile: r.reconcile ?? 'auto',
    waves,
  };
}

function checkWaves(
  rollout: ValidRollout,
  sites: readonly ValidSite[],
  parsed: ParsedFile,
  diagnostics: Diagnostic[],
): void {
  const { waves, unassigned } = assignWaves(sites, rollout.waves);
  waves.forEach((w, i) => {
    if (w.sites.length === 0) {
      diagnostics.push(
        diagnosticAt(
          parsed,
          ['rollout', 'waves', i],
          'error',
          `rollout.waves ${w.wave.name}: selects no site; fix its select or remove the wave`,
        ),
      );
    }
  });
  if (unassigned.length > 0) {
    diagnostics.push(
      diagnosticAt(
        parsed,
        ['rollout', 'waves'],
        'error',
        `rollout.waves: sites ${unassigned.join(', ')} fall in no wave; end the list with a wave that takes the rest, e.g. - name: rest`,
      ),
    );
  }
}
