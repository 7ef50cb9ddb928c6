/**
 * The agent's results, validated with the protocol's result schemas
 * (agent/src/model/protocol.ts `resultSchemas`). A result that does not match its schema is
 * not guessed at: it is a ProtocolError (the agent broke the protocol, kind `failed`).
 */
import type { z } from 'zod';
import {
  type ApplyResult,
  type ConfirmResult,
  type HelloResult,
  type Method,
  resultSchemas,
  type StatusResult,
} from '#agent/model';
import { ProtocolError } from './transport-errors.js';

export type ResultOf<M extends Method> = z.infer<(typeof resultSchemas)[M]>;

/**
 * Validate the result of `method` with its schema; throws ProtocolError naming the first
 * few mismatches. `site` is only for the message.
 */
export function parseResult<M extends Method>(method: M, result: unknown, site = 'agent'): ResultOf<M> {
  const parsed = resultSchemas[method].safeParse(result);
  if (parsed.success) return parsed.data as ResultOf<M>;
  const problems = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(result)'}: ${i.message}`);
  const more = parsed.error.issues.length > 3 ? `; and ${parsed.error.issues.length - 3} more` : '';
  throw new ProtocolError(
    site,
    `${site}: ${method}: the agent's result is not valid protocol (${problems.join('; ')}${more})`,
  );
}

export const parseHelloResult = (result: unknown, site?: string): HelloResult =>
  parseResult('hello', result, site);
export const parseApplyResult = (result: unknown, site?: string): ApplyResult =>
  parseResult('apply', result, site);
export const parseConfirmResult = (result: unknown, site?: string): ConfirmResult =>
  parseResult('confirm', result, site);
export const parseStatusResult = (result: unknown, site?: string): StatusResult =>
  parseResult('status', result, site);

export interface ApplyResultSummary {
  /** How many changes the apply made. */
  readonly changes: number;
  /** Whether a revert deadline is armed (the apply must be confirmed). */
  readonly pending: boolean;
}

/**
 * The two fields the controller acts on, from a schema-valid apply result. Throws
 * ProtocolError when the result is not one.
 */
export function readApplyResult(result: unknown, site?: string): ApplyResultSummary {
  const parsed = parseApplyResult(result, site);
  return { changes: parsed.changes.length, pending: parsed.pending !== null };
}

/**
 * Confirm can be skipped only when the agent says both that nothing changed and that
 * nothing is pending: then there is nothing to revert and nothing to prove.
 */
export function needsConfirm(summary: ApplyResultSummary): boolean {
  return !(summary.changes === 0 && !summary.pending);
}
