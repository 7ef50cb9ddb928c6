/** Small plans and fleets for the rollout tests. */
import type { DesiredState } from '#agent/model';
import type { PlannedWave, RolloutPlan } from '../../controller/src/rollout/plan-rollout.js';
import type { ValidFleet, ValidSite, ValidWave } from '../../controller/src/spec/valid-site.js';

export function wave(name: string, sites: string[], options: Partial<PlannedWave> = {}): PlannedWave {
  return {
    name,
    sites: sites.map((site) => ({ site, hash: `h-${site}`, previousHash: `old-${site}`, reason: 'changed' })),
    concurrency: 1,
    maxFailures: 0,
    bakeMs: 0,
    ...options,
  };
}

export function plan(waves: PlannedWave[], options: Partial<RolloutPlan> = {}): RolloutPlan {
  return {
    commit: 'c1',
    waves,
    unchanged: [],
    rollbackOnFailure: false,
    confirmWithinMs: 30_000,
    siteTimeoutMs: 120_000,
    ...options,
  };
}

export function validWave(name: string, options: Partial<ValidWave> = {}): ValidWave {
  return {
    name,
    select: null,
    percent: null,
    count: null,
    concurrency: 2,
    maxFailures: 0,
    bakeMs: 1000,
    ...options,
  };
}

/** A fleet whose sites carry only what planning reads (name and labels). */
export function fleetOf(
  sites: { name: string; labels?: Record<string, string> }[],
  waves: ValidWave[],
): ValidFleet {
  return {
    defaults: undefined as unknown as ValidFleet['defaults'],
    rollout: {
      confirmWithinMs: 30_000,
      siteTimeoutMs: 120_000,
      rollbackOnFailure: true,
      reconcile: 'auto',
      waves,
    },
    sites: sites.map((s) => ({ name: s.name, labels: s.labels ?? {} }) as unknown as ValidSite),
  };
}

export function desiredOf(hashes: Record<string, string>): Map<string, DesiredState> {
  return new Map(Object.entries(hashes).map(([site, hash]) => [site, { site, hash } as DesiredState]));
}
