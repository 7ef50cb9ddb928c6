/**
 * Golden compile cases: test/golden/compile/<site>/{desired.json,script.sh} hold the
 * compiled form of every site of fleet-repo-example. Regenerate after an intended change
 * with `UPDATE_GOLDEN=1 npx vitest run controller/src/compile`, then review the diff.
 */
// biome-ignore lint/style/noRestrictedImports: the test reads and writes golden files; the code under test stays pure.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readFleetFiles } from '../repo/read-fleet-files.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import { loadFleet } from '../spec/load-fleet.js';
import type { ValidSite } from '../spec/valid-site.js';
import { compileSite } from './compile-site.js';
import { renderScript } from './render-script.js';

const ROOT = join(import.meta.dirname, '../../..');
const GOLDEN = join(ROOT, 'test/golden/compile');
const EXAMPLE = join(ROOT, 'fleet-repo-example');
// biome-ignore lint/style/noRestrictedGlobals: test switch, read once here.
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function renderGolden(site: ValidSite): Record<string, string> {
  const state = compileSite(site);
  return { 'desired.json': `${JSON.stringify(state, null, 2)}\n`, 'script.sh': renderScript(state) };
}

let sites: readonly ValidSite[] = [];

beforeAll(async () => {
  const result = loadFleet(await readFleetFiles(EXAMPLE));
  expect(result.diagnostics.map(formatDiagnostic)).toEqual([]);
  sites = result.fleet!.sites;
  if (UPDATE) {
    for (const site of sites) {
      mkdirSync(join(GOLDEN, site.name), { recursive: true });
      for (const [file, text] of Object.entries(renderGolden(site))) {
        writeFileSync(join(GOLDEN, site.name, file), text);
      }
    }
  }
});

const cases = readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('golden compile of fleet-repo-example', () => {
  it('has a golden case for every example site and no stale ones', () => {
    expect(cases).toEqual(sites.map((s) => s.name).sort());
  });

  it.each(cases)('%s', (name) => {
    const site = sites.find((s) => s.name === name);
    expect(site, `golden case ${name} names no site of fleet-repo-example`).toBeDefined();
    for (const [file, actual] of Object.entries(renderGolden(site!))) {
      const expected = readFileSync(join(GOLDEN, name, file), 'utf8');
      expect(actual, `${name}/${file} differs from the golden copy (UPDATE_GOLDEN=1 to accept)`).toBe(
        expected,
      );
    }
  });
});
