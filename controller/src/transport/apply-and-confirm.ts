/**
 * Commit-confirmed apply of one site (DESIGN.md, "Safety: commit-confirmed"):
 *
 * 1. connection 1: hello, apply(desired, generation, confirmWithinMs); close it;
 * 2. connection 2, a NEW one — it proves the management path works through the new
 *    routing — hello, confirm(generation).
 *
 * If connection 2 cannot be made before the agent's deadline, nothing is confirmed and the
 * agent reverts by itself: the outcome is 'unconfirmed' (status later says 'reverted').
 * Only transient failures are retried; apply is never re-sent once it may have reached the
 * agent. Never throws: every failure becomes an outcome.
 *
 * Bounded whatever the network does (D104): once the apply request is written, the outcome
 * is known — and this returns, connections closed — within `confirmWithinMs` plus
 * `settleMarginMs` (default 10 s): the apply's answer must come within that, the confirm
 * phase ends before it, and every close is cut off after a short grace (a dead link never
 * completes a polite close).
 */
import type { Logger } from 'pino';
import type { DesiredState } from '#agent/model';
import { type ErrorKind, UplinkError } from '../errors.js';
import { needsConfirm, readApplyResult } from './agent-results.js';
import { type RetryOptions, sleep as realSleep, withRetry } from './retry.js';
import { AgentSession, type RpcOptions } from './rpc-client.js';
import {
  CLOSE_GRACE_MS,
  type ConnectOptions,
  connectSsh,
  DEFAULT_CONNECT_OPTIONS,
  type SshConnection,
  type SshTarget,
} from './ssh-transport.js';
import { AgentError, TransportError } from './transport-errors.js';

export type ApplyOutcomeKind =
  /** Applied and confirmed over a second connection. */
  | 'applied'
  /** Nothing to change (confirmed, or nothing was pending). */
  | 'unchanged'
  /** The agent refused (conflict, management path, …) or the router is not who we pinned: nothing changed. */
  | 'refused'
  /** The router or its agent could not be reached: nothing was sent that changes it. */
  | 'unreachable'
  /** Apply may have happened but was not confirmed; the agent reverts at its deadline. */
  | 'unconfirmed'
  /** The apply ran and failed (kernel, verify; the agent restored the previous state), or the agent broke protocol. */
  | 'failed';

export interface ApplyOutcome {
  readonly site: string;
  readonly generation: string;
  readonly outcome: ApplyOutcomeKind;
  /** Number of changes the agent reports for the apply, when it says. */
  readonly changes?: number;
  readonly error?: { readonly kind: ErrorKind; readonly message: string; readonly code?: string };
  /** Connections attempted for the apply and for the confirm (0 when no confirm was needed). */
  readonly attempts: { readonly apply: number; readonly confirm: number };
}

export interface ApplyAndConfirmOptions {
  readonly connect?: ConnectOptions;
  /** How to open a connection; default connectSsh. Tests use it to make one connection fail. */
  readonly connector?: (target: SshTarget, options: ConnectOptions) => Promise<SshConnection>;
  readonly rpc?: RpcOptions;
  /** Connection attempts per phase (default 4) and backoff (default 1 s doubling, at most 15 s). */
  readonly retry?: Partial<Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>>;
  /** Jitter source; default Math.random. */
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
  /** Stop trying to confirm this long before the agent's deadline (our clock starts after its). Default min(5 s, window/4). */
  readonly confirmMarginMs?: number;
  /** The outcome is known at most this long after `confirmWithinMs` from sending the apply (default 10 s). */
  readonly settleMarginMs?: number;
  readonly allowManagementChange?: boolean;
  readonly log?: Pick<Logger, 'info' | 'warn' | 'debug'>;
}

export const DEFAULT_SETTLE_MARGIN_MS = 10_000;

export async function applyAndConfirm(
  target: SshTarget,
  desired: DesiredState,
  generation: string,
  confirmWithinMs: number,
  options: ApplyAndConfirmOptions = {},
): Promise<ApplyOutcome> {
  const closing: Promise<void>[] = [];
  try {
    return await applyThenConfirm(target, desired, generation, confirmWithinMs, options, closing);
  } finally {
    // Each close is bounded (AgentSession.close, SshConnection.close): this never hangs.
    await Promise.all(closing);
  }
}

async function applyThenConfirm(
  target: SshTarget,
  desired: DesiredState,
  generation: string,
  confirmWithinMs: number,
  options: ApplyAndConfirmOptions,
  /** Sessions still closing when this returns; the caller waits for them. */
  closing: Promise<void>[],
): Promise<ApplyOutcome> {
  const { site } = target;
  const now = options.now ?? Date.now;
  const retry: RetryOptions = {
    attempts: options.retry?.attempts ?? 4,
    baseDelayMs: options.retry?.baseDelayMs ?? 1_000,
    maxDelayMs: options.retry?.maxDelayMs ?? 15_000,
    random: options.random ?? Math.random,
    sleep: options.sleep ?? realSleep,
    onRetry: (attempt, delayMs, error) =>
      options.log?.warn({ site, attempt, delayMs, err: describe(error) }, 'transient failure; retrying'),
  };
  const attempts = { apply: 0, confirm: 0 };
  const connect = options.connector ?? connectSsh;

  // Connection 1: hello + apply. Once the apply has answered, the session is ended in the
  // background while connection 2 starts (the agent armed its deadline before answering, so
  // the confirm may arrive at any time); applyAndConfirm returns only after both closed.
  let applySent = false;
  /** Once the apply is written, the outcome is due by then (D104). */
  let settleBy = Number.POSITIVE_INFINITY;
  let applyResult: unknown;
  try {
    applyResult = await withRetry(async () => {
      attempts.apply++;
      // A retried attempt follows only a failure that proves apply was not taken (e.g. busy).
      applySent = false;
      const connection = await connect(target, options.connect ?? {});
      let handedOff = false;
      try {
        const session = await AgentSession.open(connection, options.rpc);
        await session.hello();
        applySent = true;
        settleBy = now() + confirmWithinMs + (options.settleMarginMs ?? DEFAULT_SETTLE_MARGIN_MS);
        const result = await session.apply(
          {
            desired,
            generation,
            confirmWithinMs,
            allowManagementChange: options.allowManagementChange,
          },
          { timeoutMs: Math.max(1, settleBy - now()) },
        );
        closing.push(
          session
            .close()
            .catch(() => {})
            .finally(() => connection.close()),
        );
        handedOff = true;
        return result;
      } finally {
        if (!handedOff) closing.push(connection.close());
      }
    }, retry);
  } catch (error) {
    const outcome = applySent && error instanceof TransportError ? 'unconfirmed' : outcomeOf(error);
    options.log?.warn({ site, generation, outcome, err: describe(error) }, 'apply did not complete');
    return { site, generation, outcome, error: describe(error), attempts };
  }
  const appliedAt = now();
  let summary: ReturnType<typeof readApplyResult>;
  try {
    summary = readApplyResult(applyResult, site);
  } catch (error) {
    // The agent answered, but not in protocol: never confirm what we cannot read, so a
    // pending apply (if any) reverts at its deadline.
    options.log?.warn({ site, generation, err: describe(error) }, 'apply result unreadable; not confirming');
    return { site, generation, outcome: 'unconfirmed', error: describe(error), attempts };
  }
  const changes = { changes: summary.changes };
  const done: ApplyOutcomeKind = summary.changes === 0 ? 'unchanged' : 'applied';
  if (!needsConfirm(summary)) {
    options.log?.info({ site, generation }, 'nothing changed and nothing pending; no confirm needed');
    return { site, generation, outcome: done, ...changes, attempts };
  }

  // Connection 2, a new one: confirm before the agent's deadline, and before the outcome is
  // due (its close must fit too).
  const margin = options.confirmMarginMs ?? Math.min(5_000, Math.floor(confirmWithinMs / 4));
  const deadline = Math.min(appliedAt + confirmWithinMs - margin, settleBy - 2 * CLOSE_GRACE_MS);
  try {
    await withRetry(
      async () => {
        attempts.confirm++;
        const remaining = deadline - now();
        if (remaining <= 0) {
          throw new TransportError(site, 'timed-out', `${site}: the confirm window has passed`, false);
        }
        const connectTimeoutMs = Math.min(
          options.connect?.connectTimeoutMs ?? DEFAULT_CONNECT_OPTIONS.connectTimeoutMs,
          remaining,
        );
        const connection = await connect(target, { ...options.connect, connectTimeoutMs });
        try {
          const session = await AgentSession.open(connection, {
            ...options.rpc,
            callTimeoutMs: Math.max(1, Math.min(options.rpc?.callTimeoutMs ?? remaining, deadline - now())),
          });
          await session.hello();
          const result = await session.confirm(generation);
          await session.close(Math.min(CLOSE_GRACE_MS, Math.max(1, settleBy - CLOSE_GRACE_MS - now())));
          return result;
        } finally {
          await connection.close();
        }
      },
      { ...retry, deadline, now },
    );
  } catch (error) {
    options.log?.warn(
      { site, generation, err: describe(error) },
      'confirm failed; the agent reverts at its deadline',
    );
    return { site, generation, outcome: 'unconfirmed', ...changes, error: describe(error), attempts };
  }
  options.log?.info({ site, generation, ...changes }, 'applied and confirmed');
  return { site, generation, outcome: done, ...changes, attempts };
}

/** Outcome of a failure before apply could have reached the agent. */
function outcomeOf(error: unknown): ApplyOutcomeKind {
  if (!(error instanceof UplinkError)) return 'failed';
  switch (error.kind) {
    case 'refused':
      return 'refused';
    case 'transport':
      return 'unreachable';
    default:
      return 'failed';
  }
}

function describe(error: unknown): { kind: ErrorKind; message: string; code?: string } {
  if (error instanceof AgentError) return { kind: error.kind, message: error.message, code: error.code };
  if (error instanceof TransportError)
    return { kind: error.kind, message: error.message, code: error.reason };
  if (error instanceof UplinkError) return { kind: error.kind, message: error.message };
  return {
    kind: 'internal',
    message: `this is a bug: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  };
}
