/**
 * Constants the rpc bridge needs. The bridge runs on every SSH connection and must start
 * fast, so it imports nothing heavy: these duplicate model/protocol.ts (which pulls in zod),
 * and a test keeps the two equal.
 */

/** = MAX_LINE_BYTES in model/protocol.ts. */
export const WIRE_MAX_LINE_BYTES = 8 * 1024 * 1024;
/** = PROTOCOL_VERSION in model/protocol.ts. */
export const WIRE_PROTOCOL_VERSION = 1;
/** Where the bridge looks for the daemon unless told otherwise (systemd RuntimeDirectory). */
export const DEFAULT_SOCKET_PATH = '/run/uplink-agent/agent.sock';
/** Environment variable naming the daemon socket, for the bridge and the daemon. */
export const SOCKET_ENV = 'UPLINK_AGENT_SOCKET';
/**
 * The first line the bridge sends on a new daemon connection, before any client byte:
 * `{"bridge":1,"sshConnection":"<SSH_CONNECTION or null>"}`. Only line 1 is read as one,
 * so a client behind the bridge cannot forge it.
 */
export const PREAMBLE_KEY = 'bridge';
