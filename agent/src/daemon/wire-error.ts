/**
 * Errors on the wire: `{ok:false, error:{code, message, retryable}}`, never a stack trace.
 * The daemon's handlers throw WireError for protocol-level refusals; `toWireError` maps the
 * engine's typed errors to wire codes, and anything else to `internal` (logged locally).
 */
import { formatChanges } from '../core/format-changes.js';
import { isAgentError } from '../errors.js';
import { type ErrorCode, type ErrorResponse, PROTOCOL_VERSION } from '../model/protocol.js';

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

export function errorResponse(id: string | number | null, error: WireError): ErrorResponse {
  const message =
    error.message.length > MAX_MESSAGE ? `${error.message.slice(0, MAX_MESSAGE - 1)}…` : error.message;
  return {
    v: PROTOCOL_VERSION,
    id,
    ok: false,
    error: { code: error.code, message, retryable: error.retryable },
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
      return /locked/.test(error.message)
        ? new WireError('busy', error.message)
        : new WireError('internal', error.message);
  }
}

function revertWords(outcome: string, detail: string | undefined): string {
  if (outcome === 'reverted') return 'the previous state was restored';
  if (outcome === 'revert-failed') return `restoring the previous state FAILED: ${detail ?? 'unknown'}`;
  return 'nothing was changed';
}
