/**
 * One site's drift verdict from what its agent says (`status`) and what git says (the
 * compiled desired state's hash). Two kinds of difference are drift:
 *
 * - the kernel differs from the confirmed state: the agent's drift items (missing,
 *   unexpected, changed objects), each with expected, found and since when;
 * - the router does not run what git says: nothing applied, or an applied hash other
 *   than the compiled one (`out-of-date`) — unless that very hash is being applied now
 *   (pending confirmation), which is a rollout in progress, noted but not a failure.
 *
 * Foreign objects that shadow Uplink's (`shadowed`) are warnings: the agent never heals
 * them and they are not Uplink's to fix. Pure.
 */
import type { DriftItem, StatusResult } from '#agent/model';
import { isoTime } from './iso-time.js';

export type SiteDriftOutcome = 'in-sync' | 'drift' | 'error';

export interface DriftFinding {
  readonly kind: DriftItem['kind'] | 'out-of-date';
  readonly object: string;
  readonly expected: string | null;
  readonly found: string | null;
  /** When the agent first saw it; null for findings the controller makes. */
  readonly firstSeen: number | null;
}

export interface SiteDrift {
  readonly site: string;
  readonly host: string;
  readonly outcome: SiteDriftOutcome;
  /** Hash of the state compiled from git now. */
  readonly desiredHash: string;
  readonly applied: { readonly generation: string; readonly hash: string; readonly at: number } | null;
  /** Failures: what differs from git. */
  readonly findings: readonly DriftFinding[];
  /** Shadowing foreign objects: reported, never a failure. */
  readonly warnings: readonly DriftFinding[];
  readonly notes: readonly string[];
  /** Why the site could not be checked (outcome `error`). */
  readonly error: { readonly kind: string; readonly message: string } | null;
  /** When the agent's last full drift check finished. */
  readonly checkedAt: number | null;
  readonly durationMs: number;
}

export interface SiteStatusAnswer {
  readonly site: string;
  readonly host: string;
  readonly desiredHash: string;
  readonly durationMs: number;
  /** Exactly one of `status` and `error`. */
  readonly status?: StatusResult;
  readonly error?: { readonly kind: string; readonly message: string };
}

export function assessSiteDrift(answer: SiteStatusAnswer): SiteDrift {
  const { site, host, desiredHash, durationMs } = answer;
  const base = { site, host, desiredHash, durationMs };
  const status = answer.status;
  if (status === undefined) {
    return {
      ...base,
      outcome: 'error',
      applied: null,
      findings: [],
      warnings: [],
      notes: [],
      error: answer.error ?? { kind: 'internal', message: `${site}: no status and no error` },
      checkedAt: null,
    };
  }
  const applied =
    status.applied === null
      ? null
      : { generation: status.applied.generation, hash: status.applied.hash, at: status.applied.at };
  if (status.site !== null && status.site !== site) {
    return {
      ...base,
      outcome: 'error',
      applied,
      findings: [],
      warnings: [],
      notes: [],
      error: {
        kind: 'wrong-site',
        message: `${site}: the agent at ${host} manages site ${status.site}; check management.address in the site's spec`,
      },
      checkedAt: status.drift?.checkedAt ?? null,
    };
  }

  const findings: DriftFinding[] = [];
  const notes: string[] = [];
  const pending = status.pending;
  const applying = pending !== null && pending.hash === desiredHash;
  if (applying) {
    notes.push(
      `generation ${pending.generation} (the state git wants) is applied and awaits confirmation until ${isoTime(pending.deadline)}`,
    );
  } else if (applied === null) {
    findings.push({
      kind: 'out-of-date',
      object: 'applied generation',
      expected: `desired state ${short(desiredHash)} from git`,
      found: 'nothing applied',
      firstSeen: null,
    });
  } else if (applied.hash !== desiredHash) {
    findings.push({
      kind: 'out-of-date',
      object: 'applied generation',
      expected: `desired state ${short(desiredHash)} from git`,
      found: `generation ${applied.generation} (desired state ${short(applied.hash)})`,
      firstSeen: null,
    });
  }
  const drift = status.drift;
  for (const item of drift?.items ?? []) findings.push({ ...item });
  const warnings: DriftFinding[] = (drift?.shadowed ?? []).map((item) => ({ ...item }));
  if (drift !== null && drift.heals > 0)
    notes.push(`the agent healed drift ${drift.heals} time(s) (policy heal)`);
  if (applied !== null && (drift === null || drift.checkedAt === null)) {
    notes.push('the agent has not finished a drift check yet: only the applied generation was compared');
  }
  return {
    ...base,
    outcome: findings.length > 0 ? 'drift' : 'in-sync',
    applied,
    findings,
    warnings,
    notes,
    error: null,
    checkedAt: drift?.checkedAt ?? null,
  };
}

export function short(hash: string): string {
  return hash.slice(0, 12);
}
