/**
 * Drift across a simulated fleet of 200 routers, through the controller's drift path
 * (the SSH status path `uplink run` uses too, querySiteAnswers → buildDriftReport): every agent runs its drift watch; four
 * routers are edited by hand (an owned rule deleted, a sysctl changed, table inet uplink
 * flushed, a foreign rule added) and one is unreachable. The report names exactly the
 * three drifted sites with what differs, the shadowing rule as a warning, the unreachable
 * site as an error, and every other site in sync.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildDriftReport, type DriftReport } from '../controller/src/report/index.js';
import { querySiteAnswers } from '../controller/src/run/query-site-answers.js';
import { createSshSiteTransport, type SiteTransport } from '../controller/src/run/site-transport.js';
import { loadFleet } from '../controller/src/spec/load-fleet.js';
import type { ValidSite } from '../controller/src/spec/valid-site.js';
import { generateFleetFiles, simSitesFromFleet, siteName } from './fleet-sim/generate-fleet.js';
import { type DriftChange, type SimFleet, startSimFleet } from './fleet-sim/sim-fleet.js';

const SITES = 200;
const EDITS: readonly [string, DriftChange][] = [
  [siteName(5), 'delete-rule'],
  [siteName(60), 'sysctl'],
  [siteName(120), 'flush-nft'],
  [siteName(180), 'foreign-rule'],
];
const UNREACHABLE = siteName(199);

let fleet: SimFleet;
let sites: readonly ValidSite[];
let transport: SiteTransport;

beforeAll(async () => {
  const template = generateFleetFiles({ count: SITES });
  fleet = await startSimFleet({
    sites: simSitesFromFleet(template, { generation: (hash) => `g1-${hash.slice(0, 12)}` }),
    watch: {},
  });
  const privateKey = await readFile(fleet.controllerKeyPath);
  const ports = new Map(fleet.targets.map((t) => [t.site, t.port]));
  // The repository as the controller reads it: the same sites, pointing at the simulator.
  const load = loadFleet(
    generateFleetFiles({
      count: SITES,
      management: (site) => ({ address: '127.0.0.1', port: ports.get(site)! }),
      hostKey: fleet.hostKey,
    }),
  );
  sites = load.fleet!.sites;
  transport = createSshSiteTransport({ privateKey, callTimeoutMs: 30_000 });
}, 120_000);

afterAll(async () => {
  await fleet?.close();
});

async function checkDrift(): Promise<DriftReport> {
  return buildDriftReport(await querySiteAnswers(sites, transport, 32), Date.now());
}

it(`drift report over ${SITES} simulated sites names exactly the hand-edited ones`, async () => {
  const clean = await checkDrift();
  expect(clean.summary).toMatchObject({ sites: SITES, inSync: SITES, drift: 0, error: 0, warnings: 0 });

  for (const [site, change] of EDITS) await fleet.drift(site, change);
  fleet.inject(UNREACHABLE, { kind: 'refuse' });
  const drifted = EDITS.filter(([, change]) => change !== 'foreign-rule').map(([site]) => site);

  // The agents check on the kernel event (or the poll standing in for it); wait for their verdicts.
  await expect
    .poll(
      async () => {
        const report = await checkDrift();
        return report.sites.filter((s) => s.outcome === 'drift').map((s) => s.site);
      },
      { timeout: 15_000, interval: 500 },
    )
    .toEqual(drifted);
  const report = await checkDrift();
  expect(report.summary).toMatchObject({ sites: SITES, inSync: SITES - 4, drift: 3, error: 1 });
  const bySite = new Map(report.sites.map((s) => [s.site, s]));
  expect(bySite.get(UNREACHABLE)?.outcome).toBe('error');
  expect(bySite.get(siteName(5))?.findings.map((f) => f.kind)).toContain('missing');
  expect(bySite.get(siteName(60))?.findings.some((f) => f.object.includes('rp_filter'))).toBe(true);
  expect(bySite.get(siteName(120))?.findings.length).toBeGreaterThan(0);
  const shadowed = bySite.get(siteName(180))!;
  expect(shadowed.outcome).toBe('in-sync');
  expect(shadowed.warnings.length).toBeGreaterThan(0);
}, 180_000);
