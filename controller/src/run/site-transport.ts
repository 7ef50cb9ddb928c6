/**
 * How a rollout reaches one site's agent. The daemon and `uplink rollout` use SSH
 * (createSshSiteTransport); the fleet simulator and tests may pass their own. Every call is
 * one connection at most, except `apply`, which is commit-confirmed: apply on one
 * connection and confirm on a second, new one (DESIGN.md "Safety").
 */
import type { Logger } from 'pino';
import type { DesiredState } from '../../../agent/src/model/desired-state.js';
import type { StatusResult } from '../../../agent/src/model/protocol.js';
import type { ValidSite } from '../spec/valid-site.js';
import { parseConfirmResult, parseStatusResult } from '../transport/agent-results.js';
import {
  AgentSession,
  type ApplyOutcome,
  applyAndConfirm,
  type ConnectOptions,
  connectSsh,
  type SshTarget,
} from '../transport/index.js';

export interface SiteTransport {
  /** One status call; throws when the agent cannot be asked. */
  status(site: ValidSite): Promise<StatusResult>;
  /** Apply and confirm; never throws (every failure is an outcome). */
  apply(
    site: ValidSite,
    desired: DesiredState,
    generation: string,
    confirmWithinMs: number,
  ): Promise<ApplyOutcome>;
  /** Confirm a pending apply (after a controller restart); throws when it cannot. */
  confirm(site: ValidSite, generation: string): Promise<void>;
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
}

export function sshTargetOf(site: ValidSite, options: SshSiteTransportOptions): SshTarget {
  return {
    site: site.name,
    host: site.management.address,
    port: site.management.port,
    user: site.management.user,
    hostKey: site.management.hostKey || undefined,
    knownHosts: options.knownHosts,
    privateKey: options.privateKey,
  };
}

export function createSshSiteTransport(options: SshSiteTransportOptions): SiteTransport {
  const rpc = { callTimeoutMs: options.callTimeoutMs ?? 60_000 };
  const session = async <T>(site: ValidSite, call: (s: AgentSession) => Promise<T>): Promise<T> => {
    const connection = await connectSsh(sshTargetOf(site, options), options.connect ?? {});
    try {
      const s = await AgentSession.open(connection, rpc);
      const result = await call(s);
      await s.close();
      return result;
    } finally {
      connection.close();
    }
  };
  return {
    status: (site) => session(site, async (s) => parseStatusResult(await s.status(), site.name)),
    apply: (site, desired, generation, confirmWithinMs) =>
      applyAndConfirm(sshTargetOf(site, options), desired, generation, confirmWithinMs, {
        ...(options.connect ? { connect: options.connect } : {}),
        ...(options.log ? { log: options.log } : {}),
        ...(options.allowManagementChange ? { allowManagementChange: true } : {}),
      }),
    confirm: (site, generation) =>
      session(site, async (s) => {
        await s.hello();
        parseConfirmResult(await s.confirm(generation), site.name);
      }),
  };
}
