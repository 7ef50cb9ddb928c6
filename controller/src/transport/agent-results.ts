/**
 * Lenient readers for the few result fields the controller acts on, until the daemon adds
 * result schemas to agent/src/model/protocol.ts (then replace these with those schemas).
 *
 * Assumed `apply` result: `{ changes: Change[] | number, pending: PendingInfo | null, … }`.
 * Anything else reads as "unknown", and unknown always means the safe path (confirm).
 */
import { z } from 'zod';

const applyResultFields = z.looseObject({
  changes: z.union([z.array(z.unknown()), z.number().int().min(0)]).optional(),
  pending: z.unknown().optional(),
});

export interface ApplyResultSummary {
  /** How many changes the apply made; undefined if the result does not say. */
  readonly changes: number | undefined;
  /** Whether a revert deadline is armed; undefined if the result does not say. */
  readonly pending: boolean | undefined;
}

export function readApplyResult(result: unknown): ApplyResultSummary {
  const parsed = applyResultFields.safeParse(result);
  if (!parsed.success) return { changes: undefined, pending: undefined };
  const { changes, pending } = parsed.data;
  return {
    changes: changes === undefined ? undefined : Array.isArray(changes) ? changes.length : changes,
    pending: pending === undefined ? undefined : pending !== null && pending !== false,
  };
}

/**
 * Confirm can be skipped only when the agent says both that nothing changed and that
 * nothing is pending: then there is nothing to revert and nothing to prove.
 */
export function needsConfirm(summary: ApplyResultSummary): boolean {
  return !(summary.changes === 0 && summary.pending === false);
}
