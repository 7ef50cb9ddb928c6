/**
 * Builds the /api/status document (api-status.ts) from what the controller holds: its
 * persisted state, the commit in force compiled, the agents' last reports, the rollout and
 * recent events. Pure: the daemon and `uplink status` call it with what they have.
 */
import type { StatusResult } from '#agent/model';
import { describeGeneration } from '../report/generation.js';
import { assessSiteState, SITE_STATES } from '../report/site-state.js';
import { indexPlan, type RolloutState } from '../rollout/index.js';
import type { SiteReport } from '../run/site-report.js';
import { assignWaves } from '../spec/assign-waves.js';
import { formatDiagnostic } from '../spec/diagnostic.js';
import type { ValidFleet } from '../spec/valid-site.js';
import type { ControllerState, ReconcileBackoff } from '../state/index.js';
import type {
  ApiEvent,
  ApiRollout,
  ApiRolloutWave,
  ApiSite,
  ApiSiteState,
  ApiStatus,
  ApiSuspension,
} from './api-status.js';

/** Who suspended what (the control file, state/control-file.ts). */
export interface Suspensions {
  readonly fleet: ApiSuspension | null;
  readonly sites: Readonly<Record<string, ApiSuspension>>;
}

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
  /** `uplink suspend`: the fleet's and each suspended site's (absent: nothing suspended). */
  readonly suspension?: Suspensions;
}

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
    ...(input.desiredHashes?.keys() ?? []),
    ...Object.keys(state.sites),
    ...reports.keys(),
  ]);
  const labelsOf = new Map(input.fleet?.sites.map((s) => [s.name, s.labels] as const) ?? []);
  const fleetSuspended = input.suspension?.fleet ?? null;
  const sites: ApiSite[] = [...names].sort().map((name) => {
    const report = reports.get(name);
    const status = report?.status;
    const history = state.sites[name];
    const desired = input.desiredHashes?.get(name);
    const lastApplied = history?.lastApplied;
    const appliedHash =
      lastApplied && (report === undefined || lastApplied.at > report.at)
        ? lastApplied.hash
        : (status?.applied?.hash ?? lastApplied?.hash);
    const current = desired === undefined || appliedHash === undefined ? null : appliedHash === desired;
    const attempt = history?.lastAttempted;
    const assessed = assessSiteState({
      desiredHash: desired,
      report,
      lastAttempted: attempt,
      lastApplied: history?.lastApplied,
      rollout: inRollout.get(name),
    });
    const confirm: ApiSite['confirm'] = status?.pending
      ? 'pending'
      : status?.lastRevert && status.lastRevert.at >= (status.applied?.at ?? 0)
        ? 'reverted'
        : status?.applied
          ? 'confirmed'
          : null;
    const newer =
      history?.lastApplied !== undefined && (report === undefined || history.lastApplied.at > report.at);
    const applied =
      status?.applied && !newer
        ? { generation: status.applied.generation, hash: status.applied.hash, at: status.applied.at }
        : history?.lastApplied
          ? {
              generation: history.lastApplied.generation,
              hash: history.lastApplied.hash,
              at: history.lastApplied.at,
            }
          : null;
    const override = applied ? describeGeneration(applied.generation).override : null;
    const suspended = input.suspension?.sites[name] ?? null;
    return {
      name,
      labels: labelsOf.get(name) ?? {},
      state: assessed.state,
      conditions: assessed.conditions,
      override: override && applied ? { ...override, generation: applied.generation, at: applied.at } : null,
      suspended,
      reconcile: reconcileNote(input, assessed.state, history?.reconcile, desired, suspended),
      wave: waveOf.get(name) ?? null,
      applied,
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
        unavailable: unavailableReason(status, h.name),
        reason: h.transitions.at(-1)?.reason ?? null,
        latencyMs: h.latencyMs,
        loss: h.loss,
        since: h.since,
        ...(h.probeError === undefined ? {} : { probeError: h.probeError }),
      })),
      faults: (status?.faults ?? []).map((f) => ({ ...f })),
      lastSeen: report?.lastSeen ?? null,
      statusError: report && !report.reachable ? (report.error ?? 'unreachable') : null,
      facts: report?.facts === undefined ? null : { ...report.facts },
    };
  });
  const byState = Object.fromEntries(SITE_STATES.map((s) => [s, 0])) as Record<ApiSiteState, number>;
  for (const s of sites) byState[s.state]++;
  const invalid = state.lastInvalidCommit;
  const apiRolloutDoc = rollout ? apiRollout(rollout, input.rolloutStartedAt ?? null) : null;
  const doc: Omit<ApiStatus, 'attention'> = {
    now: input.now,
    controller: {
      version: input.version,
      ...input.controller,
      lastError: input.controller.lastError ?? null,
    },
    target: state.lastGoodCommit
      ? { commit: state.lastGoodCommit, since: state.lastGoodCommitAt ?? null }
      : null,
    running: runningCommits(sites),
    lastGoodCommit: state.lastGoodCommit,
    suspended: fleetSuspended,
    reconcile: input.fleet?.rollout.reconcile ?? null,
    lastInvalidCommit: invalid
      ? {
          commit: invalid.commit,
          at: invalid.at,
          reason: invalid.reason,
          message: invalid.message,
          diagnostics: invalid.diagnostics.map(formatDiagnostic),
        }
      : null,
    summary: { sites: sites.length, byState },
    sites,
    rollout: apiRolloutDoc,
    lastRollout: state.lastRollout ? { ...state.lastRollout } : null,
    events: input.events,
  };
  return { ...doc, attention: attentionOf(doc) };
}

/**
 * Everything that needs an operator, one line each; empty exactly when the fleet runs the
 * target everywhere, healthy, with nothing paused or refused (`uplink status` exits 0).
 */
export function attentionOf(s: Omit<ApiStatus, 'attention'>): string[] {
  const out: string[] = [];
  if (s.suspended)
    out.push(`rollouts and reconciliation suspended by ${s.suspended.by}: ${s.suspended.reason}`);
  if (s.lastInvalidCommit)
    out.push(
      `commit ${s.lastInvalidCommit.commit.slice(0, 12)} refused (${s.lastInvalidCommit.reason}): ${s.lastInvalidCommit.message}`,
    );
  if (s.rollout?.phase === 'halted')
    out.push(`rollout of ${s.rollout.commit.slice(0, 12)} halted: ${s.rollout.halt?.reason ?? 'halted'}`);
  if (s.controller.lastFetchError) out.push(`fetching the repository fails: ${s.controller.lastFetchError}`);
  if (s.controller.lastError) out.push(`controller: ${s.controller.lastError.message}`);
  if (s.target === null) out.push('no commit has validated yet: nothing is rolled out');
  for (const site of s.sites) {
    if (site.state === 'in-sync') continue;
    out.push(`${site.name}: ${site.state}: ${site.conditions[0]?.message ?? site.state}`);
  }
  return out;
}

/** Sites grouped by the commit their applied generation names. */
function runningCommits(sites: readonly ApiSite[]): ApiStatus['running'] {
  const by = new Map<string, string[]>();
  for (const site of sites) {
    const g = site.applied ? describeGeneration(site.applied.generation) : null;
    const key = site.applied === null ? 'nothing' : g?.override ? 'override' : (g?.commit ?? 'unknown');
    by.set(key, [...(by.get(key) ?? []), site.name]);
  }
  return [...by]
    .map(([commit, names]) => ({ commit, sites: names }))
    .sort((a, b) => b.sites.length - a.sites.length || a.commit.localeCompare(b.commit));
}

/** When reconciliation next tries the site, and why it waits (null: nothing to reconcile). */
function reconcileNote(
  input: ApiStatusInput,
  state: ApiSiteState,
  backoff: ReconcileBackoff | undefined,
  desired: string | undefined,
  suspended: ApiSuspension | null,
): ApiSite['reconcile'] {
  if (desired === undefined || state === 'in-sync' || state === 'rolling-out' || state === 'unknown')
    return null;
  const current = backoff && backoff.hash === desired ? backoff : undefined;
  const failures = current?.failures ?? 0;
  const nextAt = current?.nextAt ?? null;
  let note: string;
  if (suspended || input.suspension?.fleet) note = 'suspended';
  else if (input.fleet?.rollout.reconcile === 'report')
    note = 'report-only (fleet.yaml rollout.reconcile: report)';
  else if (input.state.rollout?.phase === 'halted')
    note = 'waits: the rollout halted; `uplink retry` or push a fix';
  else if (state === 'unreachable') note = 'when it answers again';
  else if (nextAt !== null && nextAt > input.now)
    note = `backing off after ${failures} failed tr${failures === 1 ? 'y' : 'ies'}`;
  else note = 'at the next status poll';
  return { nextAt, failures, note };
}

function apiRollout(r: RolloutState, startedAt: number | null): ApiRollout {
  const { waveStart } = indexPlan(r.plan);
  const terminal = r.phase !== 'running' && r.phase !== 'baking';
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
      standInFrom: w.standInFrom ?? null,
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
    trigger: r.plan.trigger ?? 'commit',
    startedAt,
    waves,
    suspended: [...(r.plan.suspended ?? [])],
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

/** The agent's reason a provider cannot be used, or null when it can (or the agent did not say). */
function unavailableReason(status: StatusResult | undefined, provider: string): string | null {
  const facts = status?.facts.providers.find((p) => p.name === provider);
  if (facts === undefined || facts.available) return null;
  return facts.reason ?? `interface ${facts.interface} cannot be used`;
}
