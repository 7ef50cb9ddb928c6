/**
 * A bounded fuzz run of the spec pipeline (D90): mutated copies of fleet-repo-example go
 * through loadFleet and, where they still validate, the compiler. None may throw; every
 * diagnostic names a file of the repository and a line and column inside it. The long run is
 * `scripts/fuzz-spec.ts` (it also reports the slowest mutants).
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileSite } from '../../controller/src/compile/compile-site.js';
import { readFleetFiles } from '../../controller/src/repo/read-fleet-files.js';
import { formatDiagnostic } from '../../controller/src/spec/diagnostic.js';
import { FleetCache } from '../../controller/src/spec/fleet-cache.js';
import { type FleetLoad, loadFleet } from '../../controller/src/spec/load-fleet.js';
import { mutateFleet } from './mutate-fleet.js';

const MUTANTS = Number(process.env.UPLINK_FUZZ_MUTANTS ?? 400);
let example: Map<string, string>;
beforeAll(async () => {
  example = await readFleetFiles(join(import.meta.dirname, '../../fleet-repo-example'));
});

describe('spec pipeline under mutated input', () => {
  it(`${MUTANTS} mutated fleets: diagnostics with positions, never an exception`, async () => {
    let invalid = 0;
    for (const { files, applied } of mutateFleet(example, 1103, MUTANTS)) {
      // Let the worker's event loop breathe (vitest's RPC to the main process times out otherwise).
      await new Promise((resolve) => setImmediate(resolve));
      const context = applied.join('; ');
      let load: ReturnType<typeof loadFleet>;
      try {
        load = loadFleet(files);
      } catch (error) {
        throw new Error(`loadFleet threw on [${context}]: ${(error as Error).stack}`);
      }
      const lineCounts = new Map([...files].map(([name, text]) => [name, text.split('\n').length]));
      for (const d of load.diagnostics) {
        const lineCount = lineCounts.get(d.file);
        if (d.file !== 'sites' && d.file !== 'fleet.yaml')
          expect(lineCount, `${d.file} [${context}]`).toBeDefined();
        expect(d.line, `${d.message} [${context}]`).toBeGreaterThanOrEqual(1);
        if (lineCount !== undefined)
          expect(d.line, `${d.message} [${context}]`).toBeLessThanOrEqual(lineCount);
        expect(d.col, `${d.message} [${context}]`).toBeGreaterThanOrEqual(1);
        expect(d.message, context).not.toMatch(
          /this is a bug|Maximum call stack|undefined|\[object Object\]/,
        );
      }
      if (load.fleet === undefined) invalid++;
      for (const site of load.validSites)
        expect(() => compileSite(site), `${site.name} [${context}]`).not.toThrow();
    }
    // The mutations must bite: most mutants are invalid, some survive.
    expect(invalid).toBeGreaterThan(MUTANTS / 4);
    expect(invalid).toBeLessThan(MUTANTS);
  }, 300_000);

  it(`${MUTANTS / 4} mutated fleets through one shared cache answer exactly as without it (D151)`, async () => {
    const answer = (load: FleetLoad) =>
      JSON.stringify({
        fleet: load.fleet,
        valid: load.validSites,
        diagnostics: load.diagnostics.map((d) => `${formatDiagnostic(d)} [${d.path}]`),
      });
    const cache = new FleetCache();
    let reused = 0;
    for (const { files, applied } of mutateFleet(example, 2207, MUTANTS / 4)) {
      await new Promise((resolve) => setImmediate(resolve));
      const cached = loadFleet(files, cache);
      expect(answer(cached), applied.join('; ')).toBe(answer(loadFleet(files)));
      for (const site of cached.validSites)
        expect(cache.compile(site), `${site.name} [${applied.join('; ')}]`).toEqual(compileSite(site));
      if (cache.stats.parsed < files.size - 1) reused++;
    }
    // Mutants share most files with the ones before: the cache must be doing something.
    expect(reused).toBeGreaterThan(MUTANTS / 8);
  }, 300_000);
});
