/** Every site's verdict → the fleet's drift report and its exit code. Pure. */
import { assessSiteDrift, type SiteDrift, type SiteStatusAnswer } from './assess-site-drift.js';

export interface DriftReport {
  /** When the controller asked (ms since the epoch). */
  readonly generatedAt: number;
  /** In the order the sites were asked (fleet order). */
  readonly sites: readonly SiteDrift[];
  readonly summary: {
    readonly sites: number;
    readonly inSync: number;
    readonly drift: number;
    readonly error: number;
    readonly warnings: number;
  };
}

export function buildDriftReport(answers: readonly SiteStatusAnswer[], generatedAt: number): DriftReport {
  const sites = answers.map(assessSiteDrift);
  const count = (outcome: SiteDrift['outcome']) => sites.filter((s) => s.outcome === outcome).length;
  return {
    generatedAt,
    sites,
    summary: {
      sites: sites.length,
      inSync: count('in-sync'),
      drift: count('drift'),
      error: count('error'),
      warnings: sites.reduce((n, s) => n + s.warnings.length, 0),
    },
  };
}

/**
 * 0 every site in sync, 1 drift found, 2 some site could not be checked. An unchecked site
 * wins over drift elsewhere: the report is incomplete, and CI must not read it as a
 * verdict on the whole fleet.
 */
export function driftExitCode(report: DriftReport): 0 | 1 | 2 {
  if (report.summary.error > 0) return 2;
  return report.summary.drift > 0 ? 1 : 0;
}
