/**
 * Start a rollout of a compiled commit, or resume a persisted one — the one way `uplink run`
 * and `uplink rollout` both do it:
 *
 * - resume (a persisted rollout of this commit that had not finished): ask its sites what
 *   they run (the agents' reports win over the file), and take the bake check's health
 *   baseline from the state (D86) — without one, say so and compare with the health now;
 * - start: ask the sites (none whose report is fresh and current), plan, and persist the
 *   health baseline before the first apply.
 *
 * The caller launches the run with `start(options)`, passing what it does with states and
 * notices.
 */
import type { RolloutPlan, RolloutState } from '../rollout/index.js';
import type { ControllerStateStore } from '../state/index.js';
import { withHealthBaseline } from '../state/index.js';
import type { CompiledCommit } from './compile-commit.js';
import { type PrepareRolloutOptions, prepareRollout } from './prepare-rollout.js';
import { queryStatuses } from './query-statuses.js';
import { captureHealthBaseline, healthBeforeOf } from './rollout-baseline.js';
import { type RolloutRun, type RunRolloutOptions, resumeRolloutRun, runRollout } from './run-rollout.js';
import type { SiteReport } from './site-report.js';
import type { SiteTransport } from './site-transport.js';

export interface BeginRolloutOptions {
  readonly compiled: Extract<CompiledCommit, { ok: true }>;
  readonly transport: SiteTransport;
  readonly concurrency: number;
  readonly now: () => number;
  /** Reports already known: fresh and current ones are not asked again (start only). */
  readonly reports: ReadonlyMap<string, SiteReport>;
  readonly freshForMs: number;
  /** Where the state lives (the baseline is persisted there); none for a stateless `uplink rollout`. */
  readonly store?: ControllerStateStore;
  /** Resume this persisted, unfinished rollout of `compiled.commit` instead of planning a new one. */
  readonly resume?: RolloutState;
  /** Planning options of a new rollout (retry, reconcile, suspended sites). */
  readonly plan?: Pick<PrepareRolloutOptions, 'only' | 'exclude' | 'trigger' | 'noFailureBudget'>;
  /** Something the operator should know (a missing baseline, a failed write). */
  readonly warn: (message: string) => void;
}

export interface BegunRollout {
  readonly resumed: boolean;
  readonly plan: RolloutPlan;
  /** The sites' reports after the query (merge them into what you keep). */
  readonly reports: ReadonlyMap<string, SiteReport>;
  /** Sites to change, and status calls made. */
  readonly planned: number;
  readonly asked: number;
  /** Launches the run (call once). */
  start(options: Omit<RunRolloutOptions, 'reports' | 'healthBefore'>): RolloutRun;
}

export async function beginRollout(options: BeginRolloutOptions): Promise<BegunRollout> {
  const { compiled, store } = options;
  const saved = options.resume;
  if (saved) {
    const sites = saved.perSite.map((p) => compiled.sites.get(p.site)).filter((s) => s !== undefined);
    const { reports, asked } = await queryStatuses({
      sites,
      transport: options.transport,
      concurrency: options.concurrency,
      previous: options.reports,
      now: options.now,
    });
    const healthBefore = healthBeforeOf(saved, store?.state.healthBaseline);
    if (!healthBefore)
      options.warn(
        'no health baseline persisted for this rollout (an older state file, a failed write, or a stop before the first apply): the bake check compares with the health reported after the restart',
      );
    return {
      resumed: true,
      plan: saved.plan,
      reports,
      planned: saved.perSite.length,
      asked,
      start: (run) => resumeRolloutRun(saved, { ...run, reports, ...(healthBefore ? { healthBefore } : {}) }),
    };
  }
  const prepared = await prepareRollout({
    compiled,
    transport: options.transport,
    concurrency: options.concurrency,
    reports: options.reports,
    freshForMs: options.freshForMs,
    now: options.now,
    ...options.plan,
  });
  const planned = prepared.plan.waves.reduce((n, w) => n + w.sites.length, 0);
  if (store && planned > 0) {
    // On disk before the first apply: after it the agents report the health the change left (D86).
    store.update((s) => withHealthBaseline(s, captureHealthBaseline(prepared.plan, prepared.reports)));
    await store
      .flush()
      .catch((e: unknown) =>
        options.warn(
          `cannot persist the health baseline (${e instanceof Error ? e.message : String(e)}); a restart during this rollout would compare with later health`,
        ),
      );
  }
  return {
    resumed: false,
    plan: prepared.plan,
    reports: prepared.reports,
    planned,
    asked: prepared.asked,
    start: (run) => runRollout(prepared.plan, { ...run, reports: prepared.reports }),
  };
}
