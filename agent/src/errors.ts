/**
 * The agent's typed errors. Each has a `kind`; the CLI entry (cli.ts) is the one place that
 * turns kinds into exit codes and messages. Anything that is not an UplinkError is a bug.
 */

import type { ChangeSet } from './core/diff.js';
import type { Conflict } from './core/find-conflicts.js';

export type UplinkErrorKind =
  /** The desired state (or a CLI argument) is malformed or inconsistent: nothing was changed. */
  | 'invalid-input'
  /** Objects Uplink does not own sit where it would write: nothing was changed. */
  | 'conflict'
  /** The kernel refused a step. `reverted` says whether the previous state was restored. */
  | 'kernel'
  /** The kernel accepted every step but reads back differently; the previous state was restored. */
  | 'verify-failed'
  /** The state directory is missing something or holds something unreadable. */
  | 'state';

export abstract class UplinkError extends Error {
  abstract readonly kind: UplinkErrorKind;
  /** Only retryable kinds are retried by callers (daemon, controller). */
  readonly retryable: boolean = false;
}

export class InvalidInputError extends UplinkError {
  override readonly name = 'InvalidInputError';
  readonly kind = 'invalid-input';
  constructor(
    message: string,
    /** One line per problem, subject first: `rules.3.priority: Too big: expected number to be <=32765`. */
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

export class ConflictError extends UplinkError {
  override readonly name = 'ConflictError';
  readonly kind = 'conflict';
  constructor(readonly conflicts: readonly Conflict[]) {
    super(`refusing to apply: ${conflicts.length} object(s) not owned by Uplink are in the way`);
  }
}

/** What happened to the previous state after a failed apply. */
export type RevertOutcome = 'reverted' | 'revert-failed' | 'not-needed';

export class KernelError extends UplinkError {
  override readonly name = 'KernelError';
  readonly kind = 'kernel';
  override readonly retryable = true;
  constructor(
    message: string,
    readonly detail: string,
    readonly revert: RevertOutcome,
    /** Why the revert failed, when it did. */
    readonly revertDetail?: string,
  ) {
    super(message);
  }
}

export class VerifyFailedError extends UplinkError {
  override readonly name = 'VerifyFailedError';
  readonly kind = 'verify-failed';
  constructor(
    /** What the kernel holds that differs from what was applied (diff(effective, reread)). */
    readonly differences: ChangeSet,
    readonly revert: RevertOutcome,
    readonly revertDetail?: string,
  ) {
    super(`the kernel reads back ${differences.length} difference(s) from what was applied`);
  }
}

export class StateError extends UplinkError {
  override readonly name = 'StateError';
  readonly kind = 'state';
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** Every error the agent raises on purpose; discriminated by `kind`. */
export type AgentError = InvalidInputError | ConflictError | KernelError | VerifyFailedError | StateError;

export function isAgentError(error: unknown): error is AgentError {
  return error instanceof UplinkError;
}
