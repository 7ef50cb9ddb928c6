/**
 * Ask one site's agent for its status over SSH (hello, status, close), retrying transient
 * failures. Never throws: a failure becomes an `error` answer naming its kind, so one
 * unreachable router never hides the verdicts of the others.
 */

import { UplinkError } from '../errors.js';
import type { SiteStatusAnswer } from '../report/index.js';
import { parseStatusResult } from '../transport/agent-results.js';
import {
  AgentSession,
  type ConnectOptions,
  connectSsh,
  type RetryOptions,
  type SshTarget,
  withRetry,
} from '../transport/index.js';

export interface QueryOptions {
  readonly connect?: ConnectOptions;
  /** Per call; status is cheap, so a slow answer is a sick agent. Default 30 s. */
  readonly callTimeoutMs?: number;
  readonly retry?: Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>;
  readonly now?: () => number;
}

export async function querySiteStatus(
  target: SshTarget,
  desiredHash: string,
  options: QueryOptions = {},
): Promise<SiteStatusAnswer> {
  const now = options.now ?? Date.now;
  const started = now();
  const base = { site: target.site, host: target.host, desiredHash };
  try {
    const status = await withRetry(
      async () => {
        const connection = await connectSsh(target, options.connect ?? {});
        try {
          const session = await AgentSession.open(connection, {
            callTimeoutMs: options.callTimeoutMs ?? 30_000,
          });
          await session.hello();
          const result = parseStatusResult(await session.status(), target.site);
          await session.close();
          return result;
        } finally {
          connection.close();
        }
      },
      {
        attempts: options.retry?.attempts ?? 3,
        baseDelayMs: options.retry?.baseDelayMs ?? 1_000,
        maxDelayMs: options.retry?.maxDelayMs ?? 5_000,
        random: Math.random,
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      },
    );
    return { ...base, status, durationMs: now() - started };
  } catch (error) {
    return { ...base, error: describeError(error), durationMs: now() - started };
  }
}

function describeError(error: unknown): { kind: string; message: string } {
  if (error instanceof UplinkError) {
    const reason = (error as { reason?: string }).reason;
    return { kind: reason === undefined ? error.kind : `${error.kind} (${reason})`, message: error.message };
  }
  return { kind: 'internal', message: error instanceof Error ? error.message : String(error) };
}
