/**
 * Errors on the wire: `{ok:false, error:{code, message, retryable}}`, never a stack trace.
 * The daemon's handlers throw WireError for protocol-level refusals; `toWireError` maps the
 * engine's typed errors to wire codes, and anything else to `internal` (logged locally).
 */
import { formatChanges } from '../core/format-changes.js';
import { isAgentError, StateLockedError } from '../errors.js';
import {
  codeForRevision,
  type ErrorCode,
  type ErrorResponse,
  PROTOCOL_REVISION,
  PROTOCOL_VERSION,
} from '../model/protocol.js';

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['busy', 'unavailable']);
const MAX_MESSAGE = 4000;

export class WireError extends Error {
  override readonly name = 'WireError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable: boolean = RETRYABLE.has(code),
  ) {
    super(message);
  }
}

/**
 * The error line for `id`, in the words of the session's protocol `revision` (default: ours):
 * below revision 3 a fault code is sent as the older code nearest to it, with the same message.
 */
export function errorResponse(
  id: string | number | null,
  error: WireError,
  options: { readonly revision?: number } = {},
): ErrorResponse {
  const message =
    error.message.length > MAX_MESSAGE ? `${error.message.slice(0, MAX_MESSAGE - 1)}…` : error.message;
  return {
    v: PROTOCOL_VERSION,
    id,
    ok: false,
    error: {
      code: codeForRevision(error.code, options.revision ?? PROTOCOL_REVISION),
      message,
      retryable: error.retryable,
    },
  };
}

/** The engine's errors in wire words. `onBug` receives what is not an expected error. */
export function toWireError(error: unknown, onBug: (error: unknown) => void): WireError {
  if (error instanceof WireError) return error;
  if (!isAgentError(error)) {
    onBug(error);
    return new WireError('internal', 'internal error in uplink-agent (this is a bug; see the agent log)');
  }
  const detail = (lines: readonly string[]) =>
    lines.length === 0 ? '' : `: ${lines.slice(0, 20).join('; ')}${lines.length > 20 ? '; …' : ''}`;
  const after = error.revert === 'not-needed' ? '' : ` (${revertWords(error.revert, error.revertDetail)})`;
  switch (error.kind) {
    case 'invalid-input':
      return new WireError('refused', `${error.message}${detail(error.problems)}`);
    case 'conflict':
      return new WireError('conflict', `${error.message}${detail(error.conflicts.map((c) => c.message))}`);
    case 'kernel':
      return new WireError(
        'kernel',
        `${error.message}: ${error.detail.trim()} (${revertWords(error.revert, error.revertDetail)})`,
        true,
      );
    case 'verify-failed':
      return new WireError(
        'verify-failed',
        `${error.message}${detail(formatChanges(error.differences))} (${revertWords(error.revert, error.revertDetail)})`,
      );
    case 'state':
      return error instanceof StateLockedError
        ? new WireError('busy', error.message)
        : new WireError('internal', error.message);
    case 'state-dir':
      return new WireError(
        `state-dir-${error.fault}`,
        `${error.message}${after || ' (nothing was changed)'}`,
      );
    case 'tool-missing':
      return new WireError('tool-missing', `${error.message}${after || ' (nothing was changed)'}`);
    case 'interface-missing':
      return new WireError('interface-missing', `${error.message}${after}`);
  }
}

export function revertWords(outcome: string, detail: string | undefined): string {
  if (outcome === 'reverted') return 'the previous state was restored';
  if (outcome === 'revert-failed') return `restoring the previous state FAILED: ${detail ?? 'unknown'}`;
  return 'nothing was changed';
}
