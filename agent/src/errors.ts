/**
 * The agent's typed errors. Each has a `kind`; the CLI entry (cli.ts) is the one place that
 * turns kinds into exit codes and messages, and wire-error.ts the one place that turns them
 * into wire codes. Anything that is not an UplinkError is a bug.
 *
 * Faults of the router's environment are errors of their own (D103): a state directory
 * that is read-only, full or not writable (`state-dir`), a tool that is not installed
 * (`tool-missing`), an interface that vanished during an apply (`interface-missing`). They
 * are never reported as "busy", "unreachable" or "a bug".
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
  /** The state directory holds something unreadable or is locked by another agent. */
  | 'state'
  /** The state directory cannot be written: read-only, full, or not writable (D103). */
  | 'state-dir'
  /** A program the agent runs (ip, nft, sysctl, ping, conntrack, socat) is not installed. */
  | 'tool-missing'
  /** An interface the apply used vanished while it ran. */
  | 'interface-missing';

/** What happened to the previous state after a failed apply. */
export type RevertOutcome = 'reverted' | 'revert-failed' | 'not-needed';

export abstract class UplinkError extends Error {
  abstract readonly kind: UplinkErrorKind;
  /** Only retryable kinds are retried by callers (daemon, controller). */
  readonly retryable: boolean = false;
  /**
   * What became of the previous state after this failure: `not-needed` when the kernel had
   * not changed yet; set by whoever rolled back (see `recordRollback`).
   */
  revert: RevertOutcome = 'not-needed';
  /** Why the rollback failed, when it did. */
  revertDetail: string | undefined;
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

export class KernelError extends UplinkError {
  override readonly name = 'KernelError';
  readonly kind = 'kernel';
  override readonly retryable = true;
  constructor(
    message: string,
    readonly detail: string,
    revert: RevertOutcome,
    /** Why the revert failed, when it did. */
    revertDetail?: string,
  ) {
    super(message);
    this.revert = revert;
    this.revertDetail = revertDetail;
  }
}

export class VerifyFailedError extends UplinkError {
  override readonly name = 'VerifyFailedError';
  readonly kind = 'verify-failed';
  constructor(
    /** What the kernel holds that differs from what was applied (diff(effective, reread)). */
    readonly differences: ChangeSet,
    revert: RevertOutcome,
    revertDetail?: string,
  ) {
    super(`the kernel reads back ${differences.length} difference(s) from what was applied`);
    this.revert = revert;
    this.revertDetail = revertDetail;
  }
}

export class StateError extends UplinkError {
  override readonly name: string = 'StateError';
  readonly kind = 'state';
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** Another uplink-agent holds the state directory's lock: try again later (`busy`). */
export class StateLockedError extends StateError {
  override readonly name = 'StateLockedError';
  override readonly retryable = true;
}

/** How a state directory cannot be written. */
export type StateDirFault = 'read-only' | 'full' | 'unwritable';

/**
 * Writing the state directory failed: the filesystem is read-only (EROFS), full (ENOSPC,
 * EDQUOT), or refuses the agent (EACCES, EPERM, EIO, …). Nothing about the desired state is
 * wrong, and retrying before someone fixes the directory gets the same answer.
 */
export class StateDirError extends UplinkError {
  override readonly name = 'StateDirError';
  readonly kind = 'state-dir';
  constructor(
    readonly fault: StateDirFault,
    /** The state directory. */
    readonly dir: string,
    /** What was being done, e.g. `writing applied.json`, `fsync of commit.json`. */
    readonly operation: string,
    /** The errno code, e.g. `ENOSPC`. */
    readonly code: string,
  ) {
    super(`${stateDirFaultWords(fault, dir)} (${code} ${operation})${stateDirRemedy(fault)}`);
  }
}

export function stateDirFaultWords(fault: StateDirFault, dir: string): string {
  switch (fault) {
    case 'read-only':
      return `state directory ${dir} is on a read-only filesystem`;
    case 'full':
      return `state directory ${dir} is on a full filesystem`;
    case 'unwritable':
      return `state directory ${dir} cannot be written`;
  }
}

function stateDirRemedy(fault: StateDirFault): string {
  switch (fault) {
    case 'read-only':
      return ': remount it read-write';
    case 'full':
      return ': free space on its filesystem';
    case 'unwritable':
      return ': the agent needs to write there (owner root, mode 0700, a healthy disk)';
  }
}

/** Debian packages of the tools the agent runs, for messages. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  nft: 'nftables',
  sysctl: 'procps',
  ping: 'iputils-ping',
  conntrack: 'conntrack',
  socat: 'socat',
};

/** A program the agent needs is not installed (or not executable). Nothing it would have done was done. */
export class ToolMissingError extends UplinkError {
  override readonly name = 'ToolMissingError';
  readonly kind = 'tool-missing';
  constructor(
    readonly tool: string,
    /** The spawn error, e.g. `spawn nft ENOENT`. */
    readonly detail: string,
  ) {
    const pkg = TOOL_PACKAGES[tool];
    super(
      `${tool} is not installed or not executable (${detail})${pkg ? `: install the Debian package ${pkg}` : ''}`,
    );
  }
}

/** Interfaces that existed when the apply was planned vanished while it ran. */
export class InterfaceMissingError extends UplinkError {
  override readonly name = 'InterfaceMissingError';
  readonly kind = 'interface-missing';
  constructor(
    readonly interfaces: readonly string[],
    /** The failure the vanished interface caused (the kernel's refusal, a verify difference). */
    readonly detail: string,
  ) {
    super(
      `interface ${interfaces.join(', ')} vanished during the apply (${detail}); its routes and sysctls are gone with it`,
    );
  }
}

/** Every error the agent raises on purpose; discriminated by `kind`. */
export type AgentError =
  | InvalidInputError
  | ConflictError
  | KernelError
  | VerifyFailedError
  | StateError
  | StateDirError
  | ToolMissingError
  | InterfaceMissingError;

export function isAgentError(error: unknown): error is AgentError {
  return error instanceof UplinkError;
}

/** Notes on `error` what became of the previous state after it (no-op for errors that are not the agent's). */
export function recordRollback(error: unknown, outcome: RevertOutcome, detail?: string): void {
  if (!(error instanceof UplinkError)) return;
  error.revert = outcome;
  error.revertDetail = detail;
}

/** Node's errno code of a filesystem or spawn error, if it has one. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A filesystem error while writing the state directory, as the fault it is; undefined for other errors. */
export function classifyStateDirError(
  error: unknown,
  dir: string,
  operation: string,
): StateDirError | undefined {
  if (error instanceof StateDirError) return error;
  const code = errnoCode(error);
  if (code === undefined) return undefined;
  switch (code) {
    case 'EROFS':
      return new StateDirError('read-only', dir, operation, code);
    case 'ENOSPC':
    case 'EDQUOT':
      return new StateDirError('full', dir, operation, code);
    case 'EACCES':
    case 'EPERM':
    case 'EIO':
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ENOENT':
    case 'ELOOP':
    case 'EMFILE':
    case 'ENFILE':
      return new StateDirError('unwritable', dir, operation, code);
    default:
      return new StateDirError('unwritable', dir, operation, code);
  }
}
