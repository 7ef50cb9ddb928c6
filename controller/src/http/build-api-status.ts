/**
 * Builds the /api/status document (api-status.ts) from what the controller holds: its
 * persisted state, the commit in force compiled, the agents' last reports, the rollout and
 * recent events. Pure: the daemon and `uplink status` call it with what they have.
 */
import { indexPlan, type RolloutState } from '../rollout/index.js';
import type { SiteReport } from '../run/site-report.js';
import { assignWaves } from '../spec/assign-waves.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import type { ValidFleet } from '../spec/valid-site.js';
import type { ControllerState } from '../state/index.js';
import type { ApiEvent, ApiRollout, ApiRolloutWave, ApiSite, ApiSiteState, ApiStatus } from './api-status.js';

export interface ApiStatusInput {
  readonly now: number;
  readonly version: string;
  /** The document's controller section but its version (given above). */
  readonly controller: Omit<ApiStatus['controller'], 'version'>;
  readonly state: ControllerState;
  /** The commit in force, compiled (undefined when none validated yet). */
  readonly fleet?: ValidFleet;
  /** Desired hash per site under the commit in force. */
  readonly desiredHashes?: ReadonlyMap<string, string>;
  readonly reports: ReadonlyMap<string, SiteReport>;
  readonly rolloutStartedAt?: number | null;
  readonly events: readonly ApiEvent[];
}

const STATES: readonly ApiSiteState[] = [
  'in-sync',
  'rolling-out',
  'out-of-date',
  'failed',
  'unreachable',
  'unknown',
];

export function buildApiStatus(input: ApiStatusInput): ApiStatus {
  const { state, reports } = input;
  const rollout = state.rollout;
  const active = rollout && (rollout.phase === 'running' || rollout.phase === 'baking') ? rollout : null;
  const inRollout = new Map<string, string>();
  if (active) for (const p of active.perSite) inRollout.set(p.site, p.status);
  const waveOf = new Map<string, string>();
  if (input.fleet) {
    for (const { wave, sites } of assignWaves(input.fleet.sites, input.fleet.rollout.waves).waves)
      for (const s of sites) waveOf.set(s, wave.name);
  }
  const names = new Set<string>([
    ...(input.fleet?.sites.map((s) => s.name) ?? []),
    ...Object.keys(state.sites),
    ...reports.keys(),
  ]);
  const labelsOf = new Map(input.fleet?.sites.map((s) => [s.name, s.labels] as const) ?? []);
  const sites: ApiSite[] = [...names].sort().map((name) => {
    const report = reports.get(name);
    const status = report?.status;
    const history = state.sites[name];
    const desired = input.desiredHashes?.get(name);
    const appliedHash = status?.applied?.hash ?? history?.lastApplied?.hash;
    const current = desired === undefined || appliedHash === undefined ? null : appliedHash === desired;
    const attempt = history?.lastAttempted;
    const rolloutStatus = inRollout.get(name);
    let siteState: ApiSiteState;
    if (rolloutStatus === 'pending' || rolloutStatus === 'applying') siteState = 'rolling-out';
    else if (report && !report.reachable) siteState = 'unreachable';
    else if (
      attempt &&
      attempt.hash === desired &&
      ['refused', 'unconfirmed', 'failed', 'unhealthy', 'unreachable'].includes(attempt.outcome) &&
      current !== true
    )
      siteState = attempt.outcome === 'unreachable' ? 'unreachable' : 'failed';
    else if (current === true) siteState = 'in-sync';
    else if (current === false) siteState = 'out-of-date';
    else siteState = 'unknown';
    const confirm: ApiSite['confirm'] = status?.pending
      ? 'pending'
      : status?.lastRevert && status.lastRevert.at >= (status.applied?.at ?? 0)
        ? 'reverted'
        : status?.applied
          ? 'confirmed'
          : null;
    return {
      name,
      labels: labelsOf.get(name) ?? {},
      state: siteState,
      wave: waveOf.get(name) ?? null,
      applied: status?.applied
        ? { generation: status.applied.generation, hash: status.applied.hash, at: status.applied.at }
        : history?.lastApplied
          ? {
              generation: history.lastApplied.generation,
              hash: history.lastApplied.hash,
              at: history.lastApplied.at,
            }
          : null,
      pending: status?.pending
        ? {
            generation: status.pending.generation,
            hash: status.pending.hash,
            deadline: status.pending.deadline,
          }
        : null,
      current,
      confirm,
      lastRevert: status?.lastRevert
        ? {
            generation: status.lastRevert.generation,
            reason: status.lastRevert.reason,
            at: status.lastRevert.at,
          }
        : null,
      lastAttempt: attempt
        ? {
            generation: attempt.generation,
            commit: attempt.commit,
            outcome: attempt.outcome,
            at: attempt.at,
            error: attempt.error ?? null,
          }
        : null,
      drift: status?.drift
        ? {
            policy: status.drift.policy,
            checkedAt: status.drift.checkedAt,
            items: status.drift.items.map((i) => ({ ...i })),
            shadowed: status.drift.shadowed.length,
          }
        : null,
      health: (status?.health ?? []).map((h) => ({
        name: h.name,
        state: h.state,
        latencyMs: h.latencyMs,
        loss: h.loss,
        since: h.since,
        ...(h.probeError === undefined ? {} : { probeError: h.probeError }),
      })),
      lastSeen: report?.lastSeen ?? null,
      statusError: report && !report.reachable ? (report.error ?? 'unreachable') : null,
    };
  });
  const byState = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<ApiSiteState, number>;
  for (const s of sites) byState[s.state]++;
  const invalid = state.lastInvalidCommit;
  return {
    now: input.now,
    controller: {
      version: input.version,
      ...input.controller,
      lastError: input.controller.lastError ?? null,
    },
    lastGoodCommit: state.lastGoodCommit,
    lastInvalidCommit: invalid
      ? {
          commit: invalid.commit,
          at: invalid.at,
          reason: invalid.reason,
          message: invalid.message,
          diagnostics: invalid.diagnostics.map(formatDiagnostic),
        }
      : null,
    summary: {
      sites: sites.length,
      byState,
      drifted: sites.filter((s) => (s.drift?.items.length ?? 0) > 0).length,
      degraded: sites.filter((s) => s.health.some((h) => h.state === 'down')).length,
    },
    sites,
    rollout: rollout ? apiRollout(rollout, input.rolloutStartedAt ?? null) : null,
    events: input.events,
  };
}

function apiRollout(r: RolloutState, startedAt: number | null): ApiRollout {
  const { waveStart } = indexPlan(r.plan);
  const terminal = r.phase === 'halted' || r.phase === 'done' || r.phase === 'superseded';
  const waves: ApiRolloutWave[] = r.plan.waves.map((w, i) => {
    const start = waveStart[i]!;
    let state: ApiRolloutWave['state'];
    if (i < r.waveIndex) state = 'passed';
    else if (i === r.waveIndex && r.phase === 'halted') state = 'halted';
    else if (i === r.waveIndex && r.phase === 'baking') state = 'baking';
    else if (i === r.waveIndex && r.phase === 'running') state = 'running';
    else state = terminal ? 'skipped' : 'waiting';
    return {
      name: w.name,
      state,
      concurrency: w.concurrency,
      maxFailures: w.maxFailures,
      bakeMs: w.bakeMs,
      bakeUntil: i === r.waveIndex && r.phase === 'baking' ? (r.bakeUntil ?? null) : null,
      sites: w.sites.map((_, j) => {
        const p = r.perSite[start + j]!;
        return { site: p.site, status: p.status, attempts: p.attempts, error: p.error ?? null };
      }),
    };
  });
  const count = (pred: (s: string) => boolean) => r.perSite.filter((p) => pred(p.status)).length;
  return {
    commit: r.plan.commit,
    phase: r.phase,
    startedAt,
    waves,
    unchanged: r.plan.unchanged.length,
    supersededBy: r.supersededBy ?? null,
    halt: r.halt ? { wave: r.halt.wave, reason: r.halt.reason, failed: [...r.halt.failed] } : null,
    progress: {
      planned: r.perSite.length,
      confirmed: count((s) => s === 'confirmed'),
      failed: count((s) => s === 'failed' || s === 'unreachable' || s === 'reverted'),
      inFlight: count((s) => s === 'applying'),
    },
  };
}
