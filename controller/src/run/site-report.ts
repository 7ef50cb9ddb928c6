/**
 * What the controller knows about one site's agent from its last status answer: the
 * applied and pending generation, the last revert, provider health and drift. Kept per site
 * by the daemon (status polling) and by a rollout (the status query before planning, and
 * the check after the bake).
 */
import { type RouterFacts, routerFacts, type StatusResult } from '#agent/model';
import type { ReportedSite } from '../rollout/plan-rollout.js';

export interface SiteReport {
  /** When the answer arrived (or the query failed), ms since the epoch. */
  readonly at: number;
  readonly reachable: boolean;
  /** Why the status call failed, when it did. */
  readonly error?: string;
  /** What kind of failure (`transport (refused)`, `refused`, `protocol`, …), when it failed. */
  readonly errorKind?: string;
  /**
   * The agent's wire error code when the router answered the status call with an error
   * (it is reachable; something on it is wrong, e.g. an unreadable state directory).
   */
  readonly agentError?: string;
  /** The agent's answer, when it answered. */
  readonly status?: StatusResult;
  /** When the agent last answered (kept across failed polls). */
  readonly lastSeen?: number;
  /** The router's facts from its last answer that carried or confirmed them (kept across failed polls). */
  readonly facts?: SiteFacts;
}

/** A site's router facts as the controller holds them (D170). */
export interface SiteFacts {
  readonly hash: string;
  /** When the agent read them from its kernel. */
  readonly readAt: number;
  /** When the controller last received them or their unchanged hash. */
  readonly reportedAt: number;
  readonly facts: RouterFacts;
}

/**
 * The report of a status answer. The answer's facts — in full, or as the hash of the ones
 * `previous` holds — become `facts`; the status keeps only their hash and time, so the facts
 * are held once. Facts this controller cannot read (a newer agent's words) are left out.
 */
export function reportFromStatus(status: StatusResult, at: number, previous?: SiteReport): SiteReport {
  const reported = status.routerFacts;
  let facts: SiteFacts | undefined;
  if (reported !== undefined) {
    if (reported.facts !== undefined) {
      const parsed = routerFacts.safeParse(reported.facts);
      if (parsed.success)
        facts = { hash: reported.hash, readAt: reported.readAt, reportedAt: at, facts: parsed.data };
    } else if (previous?.facts?.hash === reported.hash) {
      facts = { ...previous.facts, readAt: reported.readAt, reportedAt: at };
    }
  }
  const slim: StatusResult =
    reported === undefined
      ? status
      : { ...status, routerFacts: { hash: reported.hash, readAt: reported.readAt } };
  return { at, reachable: true, status: slim, lastSeen: at, ...(facts === undefined ? {} : { facts }) };
}

export function unreachableReport(
  error: string,
  at: number,
  previous?: SiteReport,
  errorKind?: string,
  agentError?: string,
): SiteReport {
  return {
    at,
    reachable: false,
    error,
    ...(errorKind ? { errorKind } : {}),
    ...(agentError === undefined ? {} : { agentError }),
    ...(previous?.status ? { status: previous.status } : {}),
    ...(previous?.lastSeen !== undefined ? { lastSeen: previous.lastSeen } : {}),
    ...(previous?.facts !== undefined ? { facts: previous.facts } : {}),
  };
}

/** The planner's view: applied/pending hashes; an unreachable site keeps its last known applied hash. */
export function toReportedSite(report: SiteReport | undefined): ReportedSite | undefined {
  if (!report) return undefined;
  const applied = report.status?.applied?.hash;
  const pending = report.reachable ? report.status?.pending?.hash : undefined;
  return {
    reachable: report.reachable,
    ...(applied !== undefined ? { appliedHash: applied } : {}),
    ...(pending !== undefined ? { pendingHash: pending } : {}),
  };
}

/** Fresh (answered within `freshForMs`), reachable, and the applied hash is `hash` with nothing pending. */
export function isFreshAndCurrent(
  report: SiteReport | undefined,
  hash: string,
  now: number,
  freshForMs: number,
): boolean {
  return (
    report?.reachable === true &&
    now - report.at <= freshForMs &&
    report.status?.applied?.hash === hash &&
    report.status.pending === null
  );
}

/** One provider's health as the agent reported it: what the bake check compares. */
export interface ProviderHealthBrief {
  readonly name: string;
  readonly state: 'up' | 'down' | 'unknown';
}

/** The provider health of a report (undefined when the agent never answered). */
export function healthOf(report: SiteReport | undefined): ProviderHealthBrief[] | undefined {
  return report?.status?.health.map((h) => ({ name: h.name, state: h.state }));
}

/**
 * Why a site that just confirmed `hash` (generation `generation`) is not healthy now, or
 * undefined when it is: it no longer runs the hash, it reverted this generation, or a
 * provider that was up before the apply (`before`) is down.
 */
export function unhealthyReason(
  before: readonly ProviderHealthBrief[] | undefined,
  after: StatusResult,
  hash: string,
  generation: string,
): string | undefined {
  if (after.lastRevert?.generation === generation) {
    return `the agent reverted generation ${generation} (${after.lastRevert.reason})`;
  }
  if (after.applied?.hash !== hash) {
    return `the agent no longer runs this rollout's state (applied ${after.applied?.generation ?? 'nothing'})`;
  }
  const upBefore = new Set((before ?? []).filter((h) => h.state === 'up').map((h) => h.name));
  const down = after.health.filter((h) => h.state === 'down' && upBefore.has(h.name)).map((h) => h.name);
  if (down.length > 0) return `provider ${down.join(', ')} was up before the apply and is down after it`;
  return undefined;
}

/**
 * The generation string sent to agents: the full commit and the first 12 hex digits of the
 * content hash, so any agent's report names the commit its state came from (a rollback
 * reads it back from there). `suffix` marks re-applies such as rollbacks.
 */
export function generationFor(commit: string, hash: string, suffix?: string): string {
  return `${commit}-${hash.slice(0, 12)}${suffix ? `-${suffix}` : ''}`;
}

/** The commit a generation written by generationFor came from. */
export function commitOfGeneration(generation: string): string | undefined {
  return /^([0-9a-f]{40}(?:[0-9a-f]{24})?)-/.exec(generation)?.[1];
}
