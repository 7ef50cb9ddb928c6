/**
 * The contract between controller and agent as a property (D89): for every valid fleet the
 * generator can draw, `uplink validate` finds no error, every compiled site parses under the
 * agent's own intake schema (the wire's, hash check included), the memory dataplane applies
 * its plan on a router with that site's interfaces, and planning again is a no-op. Providers
 * are IPv4, dual-stack or IPv6-only (D165, D180).
 *
 * Seeded, so a failure names the seed and path that reproduce it. `UPLINK_PROPERTY_RUNS`
 * sets the number of fleets (default 800, about 2,000 sites in `make test`); `npm run test:contract-long`
 * runs 50,000.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assemblePlan } from '../../agent/src/core/assemble-plan.js';
import { ownershipScope } from '../../agent/src/core/owned.js';
import { MemoryDataplane } from '../../agent/src/dataplane/memory.js';
import { receivedDesiredState } from '../../agent/src/model/desired-state.js';
import { formatIssues } from '../../agent/src/model/format-issues.js';
import { compileSite } from '../../controller/src/compile/compile-site.js';
import { formatDiagnostic } from '../../controller/src/spec/diagnostic.js';
import { loadFleet } from '../../controller/src/spec/load-fleet.js';
import { seedKernel } from '../fleet-sim/seed-kernel.js';
import { fleetArbitrary, type GeneratedFleet } from './fleet-arbitrary.js';

const RUNS = Number(process.env.UPLINK_PROPERTY_RUNS ?? 800);
const SEED = Number(process.env.UPLINK_PROPERTY_SEED ?? 20261203);

/** How many dual-stack and IPv6-only uplinks the run applied: the generator must reach both. */
const coverage = { dual: 0, ipv6Only: 0 };

async function holdsContract(fleet: GeneratedFleet): Promise<void> {
  // Let the worker's event loop breathe (vitest's RPC to the main process times out otherwise).
  await new Promise((resolve) => setImmediate(resolve));
  const load = loadFleet(fleet.files);
  const errors = load.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  expect(errors, [...fleet.files.values()].join('\n---\n')).toEqual([]);
  for (const site of load.fleet!.sites) {
    const compiled = compileSite(site);
    const accepted = receivedDesiredState.safeParse(JSON.parse(JSON.stringify(compiled)));
    expect(accepted.success ? [] : formatIssues(accepted.error.issues), site.name).toEqual([]);
    const desired = accepted.data!;
    const facts = fleet.facts.get(site.name)!;
    const dataplane = new MemoryDataplane(seedKernel(facts, undefined));
    const scope = ownershipScope(desired);
    const plan = async () =>
      assemblePlan({
        desired,
        facts: await dataplane.readFacts(),
        health: {},
        current: await dataplane.readKernel({ sysctls: scope.sysctls }),
        scope,
      });
    const first = await plan();
    expect(first.problems, site.name).toEqual([]);
    expect(
      first.conflicts.map((c) => c.message),
      site.name,
    ).toEqual([]);
    expect(first.unavailable, site.name).toEqual([]);
    await dataplane.apply(first.steps);
    // Each IPv6 half has its default route in the provider's table; an IPv6-only uplink's
    // table holds no IPv4 route (D165).
    const routes = (await dataplane.readKernel({ sysctls: scope.sysctls })).routes;
    for (const p of desired.providers.filter((p) => p.ipv6 !== undefined)) {
      const inTable = routes.filter((r) => r.table === p.table);
      expect(
        inTable.some((r) => r.family === 'inet6' && r.dst === '::/0'),
        `${site.name}: ${p.name} has its IPv6 default route`,
      ).toBe(true);
      if (p.gateway.kind === 'none') {
        coverage.ipv6Only++;
        expect(
          inTable.filter((r) => r.family !== 'inet6'),
          `${site.name}: ${p.name} is IPv6-only`,
        ).toEqual([]);
      } else coverage.dual++;
    }
    const second = await plan();
    expect(second.changes, `${site.name}: a second plan must be a no-op`).toEqual([]);
  }
}

describe('controller ↔ agent contract, over generated fleets', () => {
  it(`${RUNS} generated fleets validate, compile to what the agent accepts, apply, and re-plan to nothing`, async () => {
    await fc.assert(fc.asyncProperty(fleetArbitrary, holdsContract), {
      seed: SEED,
      numRuns: RUNS,
      endOnFailure: true,
    });
    expect(coverage.dual).toBeGreaterThan(0);
    expect(coverage.ipv6Only).toBeGreaterThan(0);
  }, 600_000);
});
