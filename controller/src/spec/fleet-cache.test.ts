/**
 * The content-keyed cache of fleet loads (D151): a load with it gives exactly the answer
 * of a load without it, and re-checks only what a change can affect — one edited site,
 * the sites that reach an edited group, every site after a fleet default changes.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileSite } from '../compile/compile-site.js';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { formatDiagnostic } from './diagnostic.js';
import { FleetCache } from './fleet-cache.js';
import { type FleetLoad, loadFleet } from './load-fleet.js';

const EXAMPLE = join(import.meta.dirname, '../../../fleet-repo-example');
let example: Map<string, string>;
let SITES: string[];
beforeAll(async () => {
  example = await readFleetFiles(EXAMPLE);
  SITES = [...example.keys()]
    .filter((f) => f.startsWith('sites/'))
    .map((f) => f.slice('sites/'.length, -'.yaml'.length))
    .sort();
});

const exampleFiles = () => new Map(example);

/** Everything loadFleet answers, as text: sites, states, diagnostics with positions. */
function answer(load: FleetLoad): string {
  return JSON.stringify({
    ok: load.fleet !== undefined,
    fleet: load.fleet,
    valid: load.validSites,
    states: load.validSites.map((s) => compileSite(s)),
    diagnostics: load.diagnostics.map((d) => `${formatDiagnostic(d)} [${d.path}]`),
  });
}

/** Loads with the cache, checks the answer against an uncached load, returns what was re-checked. */
function loadBoth(cache: FleetCache, files: Map<string, string>) {
  const cached = loadFleet(files, cache);
  expect(answer(cached)).toBe(answer(loadFleet(files)));
  for (const site of cached.validSites) expect(cache.compile(site)).toEqual(compileSite(site));
  return { load: cached, parsed: cache.stats.parsed, checked: [...cache.stats.checkedSites].sort() };
}

const edit = (files: Map<string, string>, path: string, f: (text: string) => string) => {
  const next = new Map(files);
  next.set(path, f(files.get(path)!));
  return next;
};

describe('FleetCache', () => {
  it('a cold load checks everything; the same files again check nothing and compile nothing', () => {
    const cache = new FleetCache();
    const files = exampleFiles();
    const cold = loadBoth(cache, files);
    expect(cold.load.fleet).toBeDefined();
    expect(cold.parsed).toBe(files.size - 1); // fleet.yaml is read each time, uncached
    expect(cold.checked).toEqual(SITES);
    const warm = loadBoth(cache, new Map(files));
    expect(warm.parsed).toBe(0);
    expect(warm.checked).toEqual([]);
    expect(cache.stats.compiledSites).toBe(0);
    // The reused sites are the same objects, so their states are not compiled again.
    expect(warm.load.validSites).toEqual(cold.load.validSites);
    expect(warm.load.validSites[0]).toBe(cold.load.validSites[0]);
  });

  it('a one-site change parses, checks and compiles that site only', () => {
    const cache = new FleetCache();
    const files = exampleFiles();
    loadBoth(cache, files);
    const next = edit(files, 'sites/home-pppoe.yaml', (t) => `${t}# a comment\n`);
    const after = loadBoth(cache, next);
    expect(after.parsed).toBe(1);
    expect(after.checked).toEqual(['home-pppoe']);
    expect(cache.stats.compiledSites).toBe(1);
  });

  it('a group change re-checks exactly the sites that extend it, directly or through another group', () => {
    const cache = new FleetCache();
    const files = exampleFiles();
    loadBoth(cache, files);
    const dual = edit(files, 'groups/dual-isp.yaml', (t) =>
      t.replace('    track: true\n', '    track: false\n'),
    );
    const afterDual = loadBoth(cache, dual);
    expect(afterDual.parsed).toBe(1);
    const extendsDual = SITES.filter((s) => /extends: \[dual-isp\]/.test(files.get(`sites/${s}.yaml`)!));
    expect(extendsDual.length).toBeGreaterThan(0);
    expect(extendsDual.length).toBeLessThan(SITES.length);
    expect(afterDual.checked).toEqual(extendsDual);
    // The compiled states of exactly those sites change.
    const before = new Map(loadFleet(files).validSites.map((s) => [s.name, compileSite(s).hash]));
    const changed = afterDual.load.validSites.filter((s) => compileSite(s).hash !== before.get(s.name));
    expect(changed.map((s) => s.name).sort()).toEqual(extendsDual);

    // base is extended by every site (dual-isp extends base).
    const base = edit(dual, 'groups/base.yaml', (t) => `${t}# edited\n`);
    expect(loadBoth(cache, base).checked).toEqual(SITES);
  });

  it('a fleet default change re-checks every site; an invalid edit reports as without the cache', () => {
    const cache = new FleetCache();
    const files = exampleFiles();
    loadBoth(cache, files);
    const defaults = edit(files, 'fleet.yaml', (t) => t.replace('drift: report', 'drift: heal'));
    const after = loadBoth(cache, defaults);
    expect(after.parsed).toBe(0);
    expect(after.checked).toEqual(SITES);

    const broken = edit(defaults, 'sites/office-29.yaml', (t) =>
      t.replace('providers:', 'providers:\n  - nme: x'),
    );
    const load = loadBoth(cache, broken).load;
    expect(load.fleet).toBeUndefined();
    expect(load.diagnostics.some((d) => d.file === 'sites/office-29.yaml' && d.line > 1)).toBe(true);
    // And back: the earlier revision's entries are still there.
    expect(loadBoth(cache, defaults).parsed).toBe(0);
  });

  it('a site extending an unknown group is re-checked when the known groups change (its message lists them)', () => {
    const cache = new FleetCache();
    const files = edit(exampleFiles(), 'sites/home-pppoe.yaml', (t) =>
      t.replace('extends: [base]', 'extends: [base, nosuch]'),
    );
    const first = loadBoth(cache, files);
    expect(first.load.diagnostics.some((d) => d.message.includes('unknown group "nosuch"'))).toBe(true);
    const more = new Map(files);
    more.set('groups/extra.yaml', 'name: extra\n');
    const after = loadBoth(cache, more);
    expect(after.checked).toEqual(['home-pppoe']);
    expect(after.load.diagnostics.some((d) => d.message.includes('base, dual-isp, extra'))).toBe(true);
    // Adding the missing group re-checks that site, which then validates.
    more.set('groups/nosuch.yaml', 'name: nosuch\n');
    const fixed = loadBoth(cache, more);
    expect(fixed.checked).toEqual(['home-pppoe']);
    expect(fixed.load.fleet).toBeDefined();
  });

  it('holds at most the files of the last two loads', () => {
    const cache = new FleetCache();
    let files = exampleFiles();
    for (let i = 0; i < 6; i++) {
      files = edit(files, 'sites/lartc-split.yaml', (t) => `${t}# revision ${i}\n`);
      loadFleet(files, cache);
    }
    // Each file once (fleet.yaml is not cached), and two versions of the edited site.
    expect(cache.size).toBe(files.size - 1 + 1);
  });
});
