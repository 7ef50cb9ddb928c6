/**
 * The JSON shape of `GET /api/status` — the contract between the controller's HTTP server
 * and the status page (status-page.ts) and anything else that reads it (`uplink status
 * --format json` prints the same document). Times are milliseconds since the epoch; a
 * field the controller does not know yet is null, never missing.
 */

export type ApiSiteState =
  /** The agent reports the commit in force as applied and nothing is wrong. */
  | 'in-sync'
  /** The site is waiting in, or being applied by, the current rollout. */
  | 'rolling-out'
  /** The agent runs an older desired state and no rollout is touching it (e.g. after a halt). */
  | 'out-of-date'
  /** The last attempt failed (refused, unconfirmed/reverted, unhealthy, failed). */
  | 'failed'
  /** The last status poll or apply could not reach the site. */
  | 'unreachable'
  /** Nothing is known yet (no status poll has answered). */
  | 'unknown';

export interface ApiProviderHealth {
  readonly name: string;
  readonly state: 'up' | 'down' | 'unknown';
  /** Median round-trip of recent answered probes. */
  readonly latencyMs: number | null;
  /** Share of recent probes without an answer, 0..1. */
  readonly loss: number;
  readonly since: number | null;
  /** Why the agent's probes of this provider cannot run (e.g. `ping` missing); absent when they can. */
  readonly probeError?: string;
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
  /** When the agent last answered a status call; null if it never has. */
  readonly lastSeen: number | null;
  /** The last status call's error, when it failed. */
  readonly statusError: string | null;
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
  readonly phase: 'running' | 'baking' | 'halted' | 'done' | 'superseded';
  readonly startedAt: number | null;
  readonly waves: readonly ApiRolloutWave[];
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
  /** The newest commit that validated and compiled: the one in force. */
  readonly lastGoodCommit: string | null;
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
    readonly byState: Readonly<Record<ApiSiteState, number>>;
    readonly drifted: number;
    /** Sites with at least one provider down. */
    readonly degraded: number;
  };
  readonly sites: readonly ApiSite[];
  readonly rollout: ApiRollout | null;
  /** Newest last, at most 100. */
  readonly events: readonly ApiEvent[];
}
