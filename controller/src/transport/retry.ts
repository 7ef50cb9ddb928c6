/**
 * Retries with exponential backoff and jitter, for transient failures only. A refused
 * apply, a host-key mismatch, an authentication failure or a protocol error is final: the
 * same request would get the same answer, or (host key) retrying would be the attack's goal.
 */
import { UplinkError } from '../errors.js';
import type { TransportReason } from './transport-errors.js';

export interface FailureClass {
  readonly reason: TransportReason;
  readonly retryable: boolean;
}

const SOCKET_CODES: Readonly<Record<string, FailureClass>> = {
  ECONNREFUSED: { reason: 'connection-refused', retryable: true },
  ECONNRESET: { reason: 'connection-reset', retryable: true },
  EPIPE: { reason: 'connection-reset', retryable: true },
  ETIMEDOUT: { reason: 'timed-out', retryable: true },
  EHOSTUNREACH: { reason: 'host-unreachable', retryable: true },
  EHOSTDOWN: { reason: 'host-unreachable', retryable: true },
  ENETUNREACH: { reason: 'network-unreachable', retryable: true },
  EAI_AGAIN: { reason: 'dns', retryable: true },
  ENOTFOUND: { reason: 'dns', retryable: false },
};

/**
 * Classify a raw error from `net`/ssh2 raised while connecting or during the handshake.
 * ssh2 marks its own errors with `level` (`client-socket`, `client-timeout`, …) and socket
 * errors keep their errno `code`.
 */
export function classifyConnectError(error: unknown): FailureClass {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    level?: unknown;
    message?: unknown;
  };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined && SOCKET_CODES[code] !== undefined) return SOCKET_CODES[code];
  const message = typeof e.message === 'string' ? e.message : '';
  if (e.level === 'client-timeout') {
    return /keepalive/i.test(message)
      ? { reason: 'keepalive-timeout', retryable: true }
      : { reason: 'handshake-timeout', retryable: true };
  }
  if (e.level === 'client-dns') return { reason: 'dns', retryable: false };
  // The peer went away mid-handshake (sshd restarting, MaxStartups): worth another try.
  if (e.level === 'client-socket' || /connection lost before handshake/i.test(message)) {
    return { reason: 'connection-reset', retryable: true };
  }
  return { reason: 'other', retryable: false };
}

/** Whether another attempt may succeed: only errors marked retryable (typed errors say so themselves). */
export function isTransient(error: unknown): boolean {
  if (error instanceof UplinkError) return error.retryable;
  return classifyConnectError(error).retryable;
}

export interface BackoffOptions {
  /** Delay before the second attempt, before jitter. */
  readonly baseDelayMs: number;
  /** Upper bound of any one delay. */
  readonly maxDelayMs: number;
}

/**
 * Delay before attempt `attempt + 1` (attempt counts from 1): exponential, capped, with
 * "equal jitter" — half fixed, half random — so retries spread out but never hammer.
 * `random` is in [0, 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: number): number {
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + (exponential / 2) * random);
}

export interface RetryOptions extends BackoffOptions {
  /** Total attempts, including the first (1 = no retry). */
  readonly attempts: number;
  /** Randomness for jitter, in [0, 1). Passed in so tests are deterministic. */
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Stop retrying when the next attempt would start after this time (epoch ms per `now`). */
  readonly deadline?: number | undefined;
  readonly now?: (() => number) | undefined;
  /** Called before each wait: for logs. */
  readonly onRetry?: ((attempt: number, delayMs: number, error: unknown) => void) | undefined;
  /** Which errors to retry; defaults to `isTransient`. */
  readonly shouldRetry?: ((error: unknown) => boolean) | undefined;
}

/** Run `attempt` until it succeeds, fails with a final error, or attempts/deadline run out; throws the last error. */
export async function withRetry<T>(run: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const shouldRetry = options.shouldRetry ?? isTransient;
  for (let attempt = 1; ; attempt++) {
    try {
      return await run(attempt);
    } catch (error) {
      if (attempt >= options.attempts || !shouldRetry(error)) throw error;
      const delay = backoffDelay(attempt, options, options.random());
      if (
        options.deadline !== undefined &&
        options.now !== undefined &&
        options.now() + delay >= options.deadline
      ) {
        throw error;
      }
      options.onRetry?.(attempt, delay, error);
      await options.sleep(delay);
    }
  }
}

/** The shell's sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
