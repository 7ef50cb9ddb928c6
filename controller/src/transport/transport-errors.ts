/**
 * Typed errors of the SSH transport and the agent RPC client. They extend the controller's
 * UplinkError, so the CLI entry maps them like every other error; `retryable` is the only
 * thing the retry loop looks at.
 */
import type { ErrorCode } from '#agent/model';
import { UplinkError } from '../errors.js';

/** Why a connection or a session failed; decides `retryable` (see classify-failure.ts). */
export type TransportReason =
  | 'connection-refused'
  | 'connection-reset'
  | 'timed-out'
  | 'host-unreachable'
  | 'network-unreachable'
  | 'dns'
  | 'handshake-timeout'
  | 'keepalive-timeout'
  | 'exec-timeout'
  | 'call-timeout'
  | 'closed-before-response'
  | 'closed'
  | 'other';

/** The network or the SSH session failed. Retryable only when nothing that changes state may have run. */
export class TransportError extends UplinkError {
  override readonly name = 'TransportError';
  constructor(
    readonly site: string,
    readonly reason: TransportReason,
    message: string,
    retryable: boolean,
  ) {
    super('transport', message, retryable);
  }
}

/** The router presented a host key that is not the pinned one (or no key is pinned). Never retried. */
export class HostKeyError extends UplinkError {
  override readonly name = 'HostKeyError';
  constructor(
    readonly site: string,
    readonly host: string,
    /** SHA256 fingerprint of the key the router presented, `SHA256:…` (undefined if none was seen). */
    readonly presented: string | undefined,
    /** SHA256 fingerprints of the keys we trust for this host (empty: nothing pinned). */
    readonly expected: readonly string[],
    message: string,
  ) {
    super('refused', message, false);
  }
}

/** The router did not accept the controller's key. Retrying does not help. */
export class AuthenticationError extends UplinkError {
  override readonly name = 'AuthenticationError';
  constructor(
    readonly site: string,
    message: string,
  ) {
    super('refused', message, false);
  }
}

/** The agent sent something that is not the protocol: an oversized, malformed or unexpected line. */
export class ProtocolError extends UplinkError {
  override readonly name = 'ProtocolError';
  constructor(
    readonly site: string,
    message: string,
  ) {
    super('failed', message, false);
  }
}

/** The agent answered `ok: false`. `code` is the wire error code. */
export class AgentError extends UplinkError {
  override readonly name = 'AgentError';
  constructor(
    readonly site: string,
    readonly method: string,
    /** A wire error code; a newer agent's codes this controller does not know are kept as they are. */
    readonly code: ErrorCode | (string & {}),
    /** The agent's own message, unchanged. */
    readonly agentMessage: string,
  ) {
    const { kind, retryable } = classifyAgentError(code);
    super(kind, `${site}: ${method} failed: ${code}: ${agentMessage}`, retryable);
  }
}

/**
 * How the controller treats each wire error code. Refusals (the agent looked and said no)
 * are final; `busy` and `unavailable` mean "not now" and are the only retryable codes; a
 * kernel or verify failure means the apply ran and failed (the agent restored the previous
 * state). A fault of the router's environment (a read-only or full state directory, a
 * missing tool, a vanished interface; D103) is a failure that retrying does not fix — the
 * router is reachable, something on it needs fixing.
 */
export function classifyAgentError(code: ErrorCode | (string & {})): {
  kind: 'refused' | 'transport' | 'failed';
  retryable: boolean;
} {
  switch (code) {
    case 'busy':
    case 'unavailable':
      return { kind: 'transport', retryable: true };
    case 'kernel':
    case 'verify-failed':
    case 'internal':
    case 'state-dir-read-only':
    case 'state-dir-full':
    case 'state-dir-unwritable':
    case 'tool-missing':
    case 'interface-missing':
      return { kind: 'failed', retryable: false };
    case 'bad-request':
    case 'unsupported-version':
    case 'unknown-method':
    case 'too-large':
    case 'conflict':
    case 'management-path':
    case 'refused':
    case 'not-pending':
      return { kind: 'refused', retryable: false };
    default:
      // A code from a newer agent: it did not do what was asked, and retrying will not help.
      return { kind: 'failed', retryable: false };
  }
}
