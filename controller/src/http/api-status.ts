/**
 * The JSON shape of `GET /api/status` — the contract between the controller's HTTP server
 * and the status page (status-page.ts) and anything else that reads it (`uplink status
 * --format json` prints the same document). Times are milliseconds since the epoch; a
 * field the controller does not know yet is null, never missing.
 */

import type { RouterFacts } from '#agent/model';
import type { SiteCondition, SiteState } from '../report/site-state.js';

/**
 * A site's state: one vocabulary with a documented precedence, computed once
 * (report/site-state.ts) for `uplink status`, this document, the page and the metrics.
 */
export type ApiSiteState = SiteState;

export interface ApiProviderHealth {
  readonly name: string;
  readonly state: 'up' | 'down' | 'unknown';
  /** Why the router cannot use it at all (no interface, link down, no address or gateway); null when it can. */
  readonly unavailable: string | null;
  /** Why it is in that state: the reason of its last transition (null before the first). */
  readonly reason: string | null;
  /** Median round-trip of recent answered probes. */
  readonly latencyMs: number | null;
  /** Share of recent probes without an answer, 0..1. */
  readonly loss: number;
  readonly since: number | null;
  /** Why the agent's probes of this provider cannot run (e.g. `ping` missing); absent when they can. */
  readonly probeError?: string;
}

/**
 * A fault of the router's environment the agent reports (D103): a read-only, full or
 * unwritable state directory, a missing tool, a vanished interface. Never shown as
 * "unreachable" or "internal error".
 */
export interface ApiAgentFault {
  readonly kind:
    | 'state-dir-read-only'
    | 'state-dir-full'
    | 'state-dir-unwritable'
    | 'tool-missing'
    | 'interface-missing';
  /** The state directory, the tool, or the interface. */
  readonly subject: string;
  readonly message: string;
  readonly since: number;
}

export interface ApiDriftItem {
  readonly object: string;
  readonly kind: 'missing' | 'unexpected' | 'changed' | 'shadowed';
  readonly expected: string | null;
  readonly found: string | null;
  readonly firstSeen: number;
}

export interface ApiSite {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: ApiSiteState;
  /** Every condition that holds, in precedence order; the first is `state`. */
  readonly conditions: readonly SiteCondition[];
  /** A break-glass apply the site runs (who and why, as recorded on the router), else null. */
  readonly override: {
    readonly by: string;
    readonly reason: string;
    readonly generation: string;
    readonly at: number;
  } | null;
  /** Set while reconciliation and rollouts leave this site alone (`uplink suspend SITE`). */
  readonly suspended: ApiSuspension | null;
  /** When the controller next tries to bring the site to the target state, and why it waits. */
  readonly reconcile: {
    readonly nextAt: number | null;
    readonly failures: number;
    readonly note: string;
  } | null;
  /** Rollout wave the site belongs to under the commit in force (null if the fleet is not loaded). */
  readonly wave: string | null;
  /** Generation and content hash the agent reports as applied (confirmed). */
  readonly applied: { readonly generation: string; readonly hash: string; readonly at: number } | null;
  /** An apply waiting for its confirm, with the agent's revert deadline. */
  readonly pending: {
    readonly generation: string;
    readonly hash: string;
    readonly deadline: number;
  } | null;
  /** Whether the applied hash is the one the commit in force compiles to (null: unknown). */
  readonly current: boolean | null;
  /** `confirmed`, `pending` (waiting for confirm), `reverted` (the agent's last revert), or null. */
  readonly confirm: 'confirmed' | 'pending' | 'reverted' | null;
  readonly lastRevert: {
    readonly generation: string;
    readonly reason: string;
    readonly at: number;
  } | null;
  /** The controller's last attempt on the site. */
  readonly lastAttempt: {
    readonly generation: string;
    readonly commit: string;
    readonly outcome: string;
    readonly at: number;
    readonly error: string | null;
  } | null;
  /** Drift the agent reports (null: not reported yet or nothing confirmed). */
  readonly drift: {
    readonly policy: 'report' | 'heal';
    readonly checkedAt: number | null;
    readonly items: readonly ApiDriftItem[];
    readonly shadowed: number;
  } | null;
  readonly health: readonly ApiProviderHealth[];
  /** Faults of the router's environment, from the agent's last status (empty: none). */
  readonly faults: readonly ApiAgentFault[];
  /** When the agent last answered a status call; null if it never has. */
  readonly lastSeen: number | null;
  /** The last status call's error, when it failed. */
  readonly statusError: string | null;
  /**
   * What the router reported knowing that the spec does not (D170): every address, peer,
   * link state and detected gateway per interface, the rules and routes Uplink does not own,
   * the sysctls routing reads. `readAt`: read on the router; `reportedAt`: last received or
   * confirmed unchanged. Null before an agent of protocol revision 4 answered.
   */
  readonly facts: {
    readonly hash: string;
    readonly readAt: number;
    readonly reportedAt: number;
    readonly facts: RouterFacts;
  } | null;
}

export interface ApiRolloutSite {
  readonly site: string;
  readonly status:
    | 'pending'
    | 'applying'
    | 'confirmed'
    | 'failed'
    | 'unreachable'
    | 'reverted'
    | 'rolled-back';
  readonly attempts: number;
  readonly error: string | null;
}

export interface ApiRolloutWave {
  readonly name: string;
  /**
   * Set when this wave is the canary stand-in: the fleet's first wave had no site this change
   * touches, so the first changed sites of `from` go alone first (D122).
   */
  readonly standInFrom: string | null;
  /** `waiting` (not started), `running`, `baking`, `passed`, `halted`, `skipped` (after a halt/supersede). */
  readonly state: 'waiting' | 'running' | 'baking' | 'passed' | 'halted' | 'skipped';
  readonly concurrency: number;
  readonly maxFailures: number;
  readonly bakeMs: number;
  /** Present while baking: when the bake ends. */
  readonly bakeUntil: number | null;
  readonly sites: readonly ApiRolloutSite[];
}

export interface ApiRollout {
  readonly commit: string;
  readonly phase: 'running' | 'baking' | 'halted' | 'done' | 'superseded' | 'suspended';
  /** Why it runs: a new `commit`, an operator's `retry`, `reconcile` (sites behind the target), `resume`. */
  readonly trigger: 'commit' | 'retry' | 'reconcile' | 'resume';
  readonly startedAt: number | null;
  readonly waves: readonly ApiRolloutWave[];
  /** Sites left out because they are suspended. */
  readonly suspended: readonly string[];
  /** Sites already on the commit's desired state when the rollout was planned. */
  readonly unchanged: number;
  readonly supersededBy: string | null;
  readonly halt: {
    readonly wave: string;
    readonly reason: string;
    readonly failed: readonly string[];
  } | null;
  /** Counts over the planned sites. */
  readonly progress: {
    readonly planned: number;
    readonly confirmed: number;
    readonly failed: number;
    readonly inFlight: number;
  };
}

export interface ApiEvent {
  readonly at: number;
  readonly level: 'info' | 'warn' | 'error';
  /** A short machine word: `fetched`, `invalid-commit`, `signature-refused`, `rollout-started`, `wave-passed`, `site-applied`, `site-failed`, `halted`, `done`, `superseded`, `rolled-back`, … */
  readonly kind: string;
  readonly message: string;
  readonly site?: string;
  readonly wave?: string;
  readonly commit?: string;
}

/** Who paused rollouts and reconciliation, why and when (`uplink suspend`). */
export interface ApiSuspension {
  readonly by: string;
  readonly reason: string;
  readonly at: number;
}

/** One entry of a site's (or the fleet's) timeline, newest last. */
export interface ApiTimelineEntry {
  readonly at: number;
  readonly level: 'info' | 'warn' | 'error';
  /** A short machine word, see controller/src/state/timeline.ts. */
  readonly kind: string;
  readonly message: string;
  readonly provider?: string;
  readonly generation?: string;
  readonly commit?: string;
  /** Provider transitions: the loss (0..1) and median latency the agent reported with it. */
  readonly loss?: number;
  readonly latencyMs?: number | null;
}

/** `GET /api/sites/SITE`: the site as in /api/status, its timeline, and its drift in full. */
export interface ApiSiteDetail {
  readonly now: number;
  readonly target: ApiStatus['target'];
  readonly site: ApiSite;
  /** Newest last, bounded (the controller keeps the last 200 per site). */
  readonly timeline: readonly ApiTimelineEntry[];
}

export interface ApiStatus {
  /** When this document was made. */
  readonly now: number;
  readonly controller: {
    readonly version: string;
    /** Repository URL or path and branch being watched (null for a one-shot status read from a state dir). */
    readonly repo: string | null;
    readonly branch: string | null;
    readonly pollIntervalMs: number | null;
    /** When the last fetch finished, and its error if it failed. */
    readonly lastFetchAt: number | null;
    readonly lastFetchError: string | null;
    readonly signatureVerification: boolean;
    /**
     * The last failure of the loop's own work (compiling a commit, planning or starting a
     * rollout, a status poll), with the commit it concerned; null when none (absent in
     * documents written by older controllers).
     */
    readonly lastError?: {
      readonly at: number;
      readonly commit: string | null;
      readonly message: string;
    } | null;
  };
  /**
   * The commit routers should run: the newest that validated and compiled (null before the
   * first). What each router runs is `running` and the sites' `applied`.
   */
  readonly target: { readonly commit: string; readonly since: number | null } | null;
  /** What the routers run, grouped by the commit their generation names (`local` / `unknown` otherwise). */
  readonly running: readonly { readonly commit: string; readonly sites: readonly string[] }[];
  /** Same as target.commit (kept for readers of older documents). */
  readonly lastGoodCommit: string | null;
  /** Rollouts and reconciliation are paused (`uplink suspend`); null when they run. */
  readonly suspended: ApiSuspension | null;
  /** fleet.yaml `rollout.reconcile`: `auto` brings sites back to the target, `report` only shows them. */
  readonly reconcile: 'auto' | 'report' | null;
  /**
   * Everything that needs an operator, one line each (sites not in sync, a halted rollout, a
   * refused commit, a failing fetch, suspension). Empty exactly when `uplink status` exits 0.
   */
  readonly attention: readonly string[];
  /** The newest refused commit (invalid spec or signature) and why. */
  readonly lastInvalidCommit: {
    readonly commit: string;
    readonly at: number;
    readonly reason: 'invalid-spec' | 'signature';
    readonly message: string;
    /** `FILE:LINE:COL: error: message` lines. */
    readonly diagnostics: readonly string[];
  } | null;
  readonly summary: {
    readonly sites: number;
    /** Sites per state: every site counts once, so these add up to `sites`. */
    readonly byState: Readonly<Record<ApiSiteState, number>>;
  };
  readonly sites: readonly ApiSite[];
  readonly rollout: ApiRollout | null;
  /** The last rollout that finished, when and how (null before the first). */
  readonly lastRollout: {
    readonly commit: string;
    readonly phase: 'done' | 'halted' | 'superseded' | 'suspended';
    readonly trigger: 'commit' | 'retry' | 'reconcile' | 'resume';
    readonly at: number;
  } | null;
  /** Newest last, at most 100. */
  readonly events: readonly ApiEvent[];
}
