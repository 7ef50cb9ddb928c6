/**
 * How a rollout reaches one site's agent. The daemon and `uplink rollout` use SSH
 * (createSshSiteTransport); the fleet simulator and tests may pass their own. Every call is
 * one connection at most, except `apply`, which is commit-confirmed: apply on one
 * connection and confirm on a second, new one (DESIGN.md "Safety").
 *
 * With `keepStatusConnections` (the one-shot `uplink rollout`), the connection a status call
 * opened stays open for a while and the site's apply runs on it, so a changed site costs two
 * connections (status + apply, then the confirm's new one) instead of three. The confirm
 * never reuses a connection: it must prove the path works after the apply.
 */
import type { Logger } from 'pino';
import type { DesiredState, StatusResult } from '#agent/model';
import type { ValidSite } from '../spec/valid-site.js';
import { parseConfirmResult, parseStatusResult } from '../transport/agent-results.js';
import {
  AgentSession,
  type ApplyAndConfirmOptions,
  type ApplyOutcome,
  applyAndConfirm,
  type ConnectOptions,
  connectSsh,
  type SshConnection,
  type SshTarget,
  TransportError,
  withRetry,
} from '../transport/index.js';
import { siteSshTarget } from './site-ssh-target.js';

export interface SiteTransport {
  /** One status call; throws when the agent cannot be asked. */
  status(site: ValidSite, options?: StatusOptions): Promise<StatusResult>;
  /**
   * Apply and confirm; never throws (every failure is an outcome). Once `signal` aborts (the
   * rollout gave up on the site) no confirm is sent any more — an apply that landed stays
   * pending and the agent reverts it at its deadline — and the call settles soon after.
   */
  apply(
    site: ValidSite,
    desired: DesiredState,
    generation: string,
    confirmWithinMs: number,
    signal?: AbortSignal,
  ): Promise<ApplyOutcome>;
  /** Confirm a pending apply (after a controller restart); throws when it cannot. */
  confirm(site: ValidSite, generation: string): Promise<void>;
  /** Closes connections kept for reuse (call when the rollout is over). */
  close?(): void;
}

export interface SshSiteTransportOptions {
  readonly privateKey: Buffer;
  /** known_hosts text for sites without a pinned hostKey. */
  readonly knownHosts?: string;
  readonly connect?: ConnectOptions;
  readonly log?: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** Default 60 s for status/confirm calls. */
  readonly callTimeoutMs?: number;
  /**
   * Let applies move the route back to the controller (the agent's management-path guard
   * refuses that otherwise). Commit-confirmed still protects the site: a change that cuts
   * the path cannot be confirmed over a new connection, and the agent reverts it.
   */
  readonly allowManagementChange?: boolean;
  /** Keep a status call's connection open this long for the site's apply (0: close at once). */
  readonly keepStatusConnectionsMs?: number;
  /**
   * Connection attempts per status call, transient failures only (default 1: the daemon
   * polls again soon anyway); `uplink drift` asks 3 times, 1–5 s apart, before it says a
   * site could not be checked.
   */
  readonly statusAttempts?: number;
}

/** At most this many connections are kept open for reuse at a time. */
const MAX_KEPT = 256;

export function sshTargetOf(site: ValidSite, options: SshSiteTransportOptions): SshTarget {
  return siteSshTarget(site, options.privateKey, options.knownHosts);
}

export function createSshSiteTransport(options: SshSiteTransportOptions): SiteTransport {
  const rpc = { callTimeoutMs: options.callTimeoutMs ?? 60_000 };
  const kept = new KeptConnections(options.keepStatusConnectionsMs ?? 0);
  const session = async <T>(
    site: ValidSite,
    call: (s: AgentSession) => Promise<T>,
    keep = false,
  ): Promise<T> => {
    const connection = await connectSsh(sshTargetOf(site, options), options.connect ?? {});
    let handedOver = false;
    try {
      const s = await AgentSession.open(connection, rpc);
      const result = await call(s);
      await s.close();
      handedOver = keep && kept.keep(site.name, connection);
      return result;
    } finally {
      if (!handedOver) connection.close();
    }
  };
  const attempts = options.statusAttempts ?? 1;
  // hello first, on the same round trip (the agent reads lines in order): it negotiates the
  // revision, and only a revision-3 session is told the router's faults (D91, D103).
  const status = (site: ValidSite, statusOptions: StatusOptions = {}) =>
    session(
      site,
      async (s) => {
        const [, answer] = await Promise.all([s.hello(), s.status(statusOptions)]);
        return parseStatusResult(answer, site.name);
      },
      true,
    );
  return {
    status: (site, statusOptions) =>
      attempts <= 1
        ? status(site, statusOptions)
        : withRetry(() => status(site, statusOptions), {
            attempts,
            baseDelayMs: 1_000,
            maxDelayMs: 5_000,
            random: Math.random,
            sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
          }),
    apply: (site, desired, generation, confirmWithinMs, signal) => {
      // Only the first connection (the apply's first attempt) may be a kept one.
      let first = true;
      const base: Connector = (target, connect) => {
        const reuse = first ? kept.take(site.name) : undefined;
        first = false;
        return reuse ? Promise.resolve(reuse) : connectSsh(target, connect);
      };
      return applyAndConfirm(sshTargetOf(site, options), desired, generation, confirmWithinMs, {
        ...(options.connect ? { connect: options.connect } : {}),
        ...(options.log ? { log: options.log } : {}),
        ...(options.allowManagementChange ? { allowManagementChange: true } : {}),
        ...(signal ? abortable(signal, base) : { connector: base }),
      });
    },
    confirm: (site, generation) =>
      session(site, async (s) => {
        await s.hello();
        parseConfirmResult(await s.confirm(generation), site.name);
      }),
    close: () => kept.closeAll(),
  };
}

/** `factsHash`: the router facts the controller holds, so unchanged ones come back as their hash. */
export interface StatusOptions {
  readonly factsHash?: string;
}

type Connector = NonNullable<ApplyAndConfirmOptions['connector']>;

/** Open connections kept after a status call, per site, each closed after `ttlMs` unused. */
class KeptConnections {
  readonly #bySite = new Map<string, { connection: SshConnection; timer: NodeJS.Timeout }>();
  constructor(readonly ttlMs: number) {}

  /** True when kept (the caller must not close it). */
  keep(site: string, connection: SshConnection): boolean {
    if (this.ttlMs <= 0 || this.#bySite.size >= MAX_KEPT || connection.closed) return false;
    this.#drop(site);
    const timer = setTimeout(() => this.#drop(site), this.ttlMs);
    timer.unref();
    this.#bySite.set(site, { connection, timer });
    return true;
  }

  /** The site's kept connection, if still open; the caller owns it from now on. */
  take(site: string): SshConnection | undefined {
    const entry = this.#bySite.get(site);
    if (entry === undefined) return undefined;
    this.#bySite.delete(site);
    clearTimeout(entry.timer);
    if (entry.connection.closed) return undefined;
    return entry.connection;
  }

  closeAll(): void {
    for (const site of [...this.#bySite.keys()]) this.#drop(site);
  }

  #drop(site: string): void {
    const entry = this.#bySite.get(site);
    if (entry === undefined) return;
    this.#bySite.delete(site);
    clearTimeout(entry.timer);
    entry.connection.close();
  }
}

/**
 * applyAndConfirm's hooks wired to an AbortSignal: once it aborts, every connection this
 * apply opened is closed (a confirm not yet written is never sent; an apply in flight is
 * left to the agent's deadline), no new connection is opened, and a retry's wait ends at
 * once — so the call settles promptly with `unconfirmed` (apply may have landed) or
 * `unreachable` (it cannot have).
 */
function abortable(
  signal: AbortSignal,
  base: Connector,
): Pick<ApplyAndConfirmOptions, 'connector' | 'sleep'> {
  const open = new Set<SshConnection>();
  signal.addEventListener('abort', () => {
    for (const c of open) c.close();
  });
  return {
    connector: async (target, connect) => {
      const aborted = () =>
        new TransportError(
          target.site,
          'other',
          `${target.site}: given up by the rollout (site timeout)`,
          false,
        );
      if (signal.aborted) throw aborted();
      const connection = await base(target, connect);
      if (signal.aborted) {
        connection.close();
        throw aborted();
      }
      open.add(connection);
      return connection;
    },
    sleep: (ms) =>
      signal.aborted
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(t);
              resolve();
            };
            const t = setTimeout(() => {
              signal.removeEventListener('abort', done);
              resolve();
            }, ms);
            signal.addEventListener('abort', done, { once: true });
          }),
  };
}
