/** The controller's SSH transport and agent RPC client. */
export { type ApplyResultSummary, needsConfirm, readApplyResult } from './agent-results.js';
export {
  type ApplyAndConfirmOptions,
  type ApplyOutcome,
  type ApplyOutcomeKind,
  applyAndConfirm,
} from './apply-and-confirm.js';
export { fingerprintSha256, type PublicKey, parsePublicKeyLine } from './host-key.js';
export { findHostKeys, parseKnownHosts } from './known-hosts.js';
export { mapWithConcurrency } from './pool.js';
export { backoffDelay, classifyConnectError, isTransient, type RetryOptions, withRetry } from './retry.js';
export { AgentSession, type ApplyRequest, RPC_COMMAND, type RpcOptions } from './rpc-client.js';
export {
  type ConnectOptions,
  connectSsh,
  readKnownHosts,
  SshConnection,
  type SshTarget,
} from './ssh-transport.js';
export {
  AgentError,
  AuthenticationError,
  HostKeyError,
  ProtocolError,
  TransportError,
  type TransportReason,
} from './transport-errors.js';
