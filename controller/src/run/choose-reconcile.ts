/**
 * Which sites the controller brings back to the commit in force now (D125). Pure: the
 * daemon calls it after every status poll and starts one rollout of the chosen sites
 * (trigger `reconcile`, commit-confirmed through the same guard, no failure budget).
 *
 * Only after the commit's rollout has finished `done` — a running rollout does the work, a
 * halted one waits for `uplink retry` or a fix, a suspended fleet for `uplink resume`. Then,
 * for each site that answers, holds nothing pending, is not suspended and does not run the
 * target state:
 *
 * - missed by the rollout (its last attempt of the target found no one): always — this
 *   finishes the rollout, in `report` mode too (D77);
 * - anything else — a manual or break-glass apply, a router restored from an old backup,
 *   a failed attempt whose backoff has passed — only with `rollout.reconcile: auto`.
 *
 * A failed attempt of the target state backs off: min(maxBackoff, backoff × 2^(failures−1))
 * before the next (backoffAfter).
 */
import type { RolloutState } from '../rollout/index.js';
import type { SiteHistory } from '../state/index.js';
import type { SiteReport } from './site-report.js';

export interface ReconcileInput {
  readonly mode: 'auto' | 'report';
  readonly commit: string;
  /** Desired hash per site of the commit in force. */
  readonly desired: ReadonlyMap<string, string>;
  readonly reports: ReadonlyMap<string, SiteReport>;
  readonly history: Readonly<Record<string, SiteHistory>>;
  /** The persisted rollout (the last one started). */
  readonly rollout: RolloutState | null;
  /** A rollout is in flight (running, or its rollbacks are). */
  readonly busy: boolean;
  readonly fleetSuspended: boolean;
  readonly suspendedSites: ReadonlySet<string>;
  readonly now: number;
}

export interface ReconcileChoice {
  /** Sites to roll the commit in force out to now, in name order. */
  readonly sites: readonly string[];
  /** Why nothing may be reconciled now, when that is so. */
  readonly blocked: string | null;
}

export function chooseReconcile(input: ReconcileInput): ReconcileChoice {
  const none = (blocked: string | null): ReconcileChoice => ({ sites: [], blocked });
  if (input.fleetSuspended) return none('suspended');
  if (input.busy) return none('a rollout is in flight');
  const r = input.rollout;
  if (r === null || r.plan.commit !== input.commit)
    return none('the commit in force has not been rolled out yet');
  if (r.phase !== 'done') return none(`the last rollout is ${r.phase}`);
  const sites: string[] = [];
  for (const [site, hash] of [...input.desired].sort(([a], [b]) => a.localeCompare(b))) {
    if (input.suspendedSites.has(site)) continue;
    const report = input.reports.get(site);
    if (report?.reachable !== true || !report.status) continue;
    if (report.status.pending !== null) continue;
    if (report.status.applied?.hash === hash) continue;
    const history = input.history[site];
    const attempt = history?.lastAttempted;
    const missed =
      attempt?.commit === input.commit && attempt.hash === hash && attempt.outcome === 'unreachable';
    if (missed) {
      sites.push(site);
      continue;
    }
    if (input.mode !== 'auto') continue;
    const backoff = history?.reconcile;
    if (backoff && backoff.hash === hash && backoff.nextAt > input.now) continue;
    sites.push(site);
  }
  return { sites, blocked: null };
}

/** The backoff after `failures` failed attempts (1 → `baseMs`, doubling, at most `maxMs`). */
export function backoffAfter(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
}
