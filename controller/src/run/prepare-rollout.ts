/**
 * Before a rollout: ask the sites what they run (one status call per site at most, none
 * for a site whose report is fresh and already on the commit's state) and plan.
 */
import { planRollout, type ReportedSite, type RolloutPlan, type RolloutTrigger } from '../rollout/index.js';
import type { CompiledCommit } from './compile-commit.js';
import { queryStatuses } from './query-statuses.js';
import { isFreshAndCurrent, type SiteReport, toReportedSite } from './site-report.js';
import type { SiteTransport } from './site-transport.js';

export interface PrepareRolloutOptions {
  readonly compiled: Extract<CompiledCommit, { ok: true }>;
  readonly transport: SiteTransport;
  readonly concurrency: number;
  /** Reports already known (the daemon's status polls); fresh and current ones are not asked again. */
  readonly reports: ReadonlyMap<string, SiteReport>;
  readonly freshForMs: number;
  readonly now: () => number;
  /**
   * Plan only these sites (a retry of the same commit): the others keep what they have, even
   * when it differs from the commit's state. Default: every site that differs.
   */
  readonly only?: ReadonlySet<string>;
  /** Sites left out (suspended). */
  readonly exclude?: ReadonlySet<string>;
  readonly trigger?: RolloutTrigger;
  /** Never halt (reconciliation): see PlanRolloutInput.noFailureBudget. */
  readonly noFailureBudget?: boolean;
}

export interface PreparedRollout {
  readonly plan: RolloutPlan;
  /** Reports of every site after the query (the baseline for the bake check). */
  readonly reports: Map<string, SiteReport>;
  /** Status calls made. */
  readonly asked: number;
}

export async function prepareRollout(options: PrepareRolloutOptions): Promise<PreparedRollout> {
  const { compiled, now } = options;
  const at = now();
  const { reports, asked } = await queryStatuses({
    sites: compiled.fleet.sites,
    transport: options.transport,
    concurrency: options.concurrency,
    previous: options.reports,
    now,
    skip: (site) =>
      isFreshAndCurrent(
        options.reports.get(site.name),
        compiled.desired.get(site.name)!.hash,
        at,
        options.freshForMs,
      ),
  });
  const reported = new Map<string, ReportedSite>();
  for (const [site, report] of reports) {
    const r = toReportedSite(report);
    if (r) reported.set(site, r);
  }
  const plan = planRollout({
    fleet: compiled.fleet,
    desired: compiled.desired,
    reported,
    commit: compiled.commit,
    ...(options.only ? { only: options.only } : {}),
    ...(options.exclude ? { exclude: options.exclude } : {}),
    ...(options.trigger ? { trigger: options.trigger } : {}),
    ...(options.noFailureBudget ? { noFailureBudget: true } : {}),
  });
  return { plan, reports, asked };
}
