/**
 * SSH connections to routers, on ssh2's Client: pinned host keys (never trust-on-first-use),
 * key authentication only (no password, no agent, no forwarding), connect/exec timeouts and
 * keepalives. Errors come out typed (transport-errors.ts) with `retryable` already decided.
 *
 * Every operation has a deadline (D104), closing included: `close()` ends the connection
 * politely and destroys the socket if the router has not closed its side within a grace
 * period — over a dead link a polite end would otherwise keep the socket (and the process)
 * alive for as long as TCP retransmits its FIN, a quarter of an hour.
 */
import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { Client, type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { UplinkError } from '../errors.js';
import { hostKeyAlgorithms } from './host-key.js';
import { classifyConnectError } from './retry.js';
import { AuthenticationError, HostKeyError, TransportError } from './transport-errors.js';
import { type HostKeyVerdict, resolveTrustedHostKeys, verifyHostKey } from './trusted-host-keys.js';

/** How to reach one site's agent. */
export interface SshTarget {
  /** Site name, for messages and outcomes. */
  readonly site: string;
  readonly host: string;
  /** Default 22. */
  readonly port?: number | undefined;
  readonly user: string;
  /** Pinned host key from the fleet spec, an OpenSSH public key line: `ssh-ed25519 AAAA… [comment]`. */
  readonly hostKey?: string | undefined;
  /** Contents of an OpenSSH known_hosts file (see `readKnownHosts`); used only when `hostKey` is not set. */
  readonly knownHosts?: string | undefined;
  /** The controller's private key (OpenSSH or PEM format). */
  readonly privateKey: Buffer;
  readonly passphrase?: string | undefined;
}

export interface ConnectOptions {
  /** TCP connect + SSH handshake + authentication (ssh2 `readyTimeout`). Default 15 s. */
  readonly connectTimeoutMs?: number | undefined;
  /** Opening an exec channel. Default 10 s. */
  readonly execTimeoutMs?: number | undefined;
  /** SSH keepalive interval; a dead path is noticed after interval × countMax. Default 5 s. */
  readonly keepaliveIntervalMs?: number | undefined;
  /** Default 3. */
  readonly keepaliveCountMax?: number | undefined;
}

export const DEFAULT_CONNECT_OPTIONS = {
  connectTimeoutMs: 15_000,
  execTimeoutMs: 10_000,
  keepaliveIntervalMs: 5_000,
  keepaliveCountMax: 3,
} as const;

/** How long `close()` waits for the router to close its side before destroying the socket. */
export const CLOSE_GRACE_MS = 2_000;

/** Read a known_hosts file for `SshTarget.knownHosts`. */
export function readKnownHosts(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

/** An authenticated SSH connection to one router. Close it when done. */
export class SshConnection {
  private closedFlag = false;
  private lastError: Error | undefined;
  private closing: Promise<void> | undefined;

  /** @internal use connectSsh */
  constructor(
    readonly target: SshTarget,
    private readonly client: Client,
    private readonly execTimeoutMs: number,
    /** The TCP socket under ssh2: ssh2's own destroy() does nothing once end() was called. */
    private readonly socket: Socket,
  ) {
    client.on('error', (error) => {
      this.lastError = error;
    });
    client.on('close', () => {
      this.closedFlag = true;
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Why the connection failed after it was established (keepalive timeout, reset), if it did. */
  get failure(): Error | undefined {
    return this.lastError;
  }

  /** Open an exec channel. The router's forced command ignores `command`, but OpenSSH records it. */
  exec(command: string): Promise<ClientChannel> {
    const { site } = this.target;
    if (this.closedFlag) {
      return Promise.reject(
        new TransportError(site, 'closed', `${site}: the SSH connection is closed`, true),
      );
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.close();
        reject(
          new TransportError(
            site,
            'exec-timeout',
            `${site}: no exec channel within ${this.execTimeoutMs} ms`,
            true,
          ),
        );
      }, this.execTimeoutMs);
      const onClose = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(this.closedError());
      };
      this.client.once('close', onClose);
      try {
        this.client.exec(command, (error, channel) => {
          this.client.off('close', onClose);
          if (settled) {
            channel?.close();
            return;
          }
          settled = true;
          clearTimeout(timer);
          if (error !== undefined && error !== null) {
            reject(
              new TransportError(
                site,
                'other',
                `${site}: the router refused an exec channel: ${error.message}`,
                false,
              ),
            );
          } else {
            resolve(channel);
          }
        });
      } catch (error) {
        // ssh2 throws synchronously when the connection is already gone.
        this.client.off('close', onClose);
        settled = true;
        clearTimeout(timer);
        reject(this.closedError(error));
      }
    });
  }

  /** The error for "the connection went away": keepalive timeouts and resets are transient. */
  closedError(cause?: unknown): TransportError {
    const { site } = this.target;
    const error = this.lastError ?? cause;
    if (error === undefined)
      return new TransportError(site, 'closed', `${site}: the SSH connection closed`, true);
    const { reason, retryable } = classifyConnectError(error);
    return new TransportError(
      site,
      reason === 'other' ? 'closed' : reason,
      `${site}: the SSH connection failed: ${error instanceof Error ? error.message : String(error)}`,
      retryable,
    );
  }

  /**
   * Ends the connection. Resolves once the socket is gone: when the router closed its side,
   * or after `graceMs`, when it is destroyed (a dead link never answers). Never rejects.
   */
  close(graceMs: number = CLOSE_GRACE_MS): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    this.closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, graceMs);
      this.client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.end();
    });
    return this.closing;
  }

  /** Drops the connection at once, without the polite end (a deadline passed). */
  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Connect and authenticate. Throws HostKeyError (kind 'refused') when the router's key is
 * not the pinned one — before anything is sent on the connection — AuthenticationError when
 * the router does not accept our key, and TransportError (retryable or not) otherwise.
 */
export function connectSsh(target: SshTarget, options: ConnectOptions = {}): Promise<SshConnection> {
  const port = target.port ?? 22;
  const { site, host } = target;
  const trust = resolveTrustedHostKeys({
    site,
    host,
    port,
    hostKey: target.hostKey,
    knownHosts: target.knownHosts,
  });
  if (!trust.ok) return Promise.reject(new HostKeyError(site, host, undefined, [], trust.error));
  const keys = trust.keys;

  let verdict: HostKeyVerdict | undefined;
  const config: Omit<ConnectConfig, 'sock'> = {
    host,
    port,
    username: target.user,
    privateKey: target.privateKey,
    passphrase: target.passphrase,
    // Key authentication only: no password, no keyboard-interactive, no agent or its forwarding.
    authHandler: ['publickey'],
    tryKeyboard: false,
    agentForward: false,
    readyTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_OPTIONS.connectTimeoutMs,
    keepaliveInterval: options.keepaliveIntervalMs ?? DEFAULT_CONNECT_OPTIONS.keepaliveIntervalMs,
    keepaliveCountMax: options.keepaliveCountMax ?? DEFAULT_CONNECT_OPTIONS.keepaliveCountMax,
    algorithms: {
      serverHostKey: hostKeyAlgorithms(keys.trusted.map((key) => key.type)) as ServerHostKeyAlgorithm[],
    },
    hostVerifier: (key: Buffer) => {
      verdict = verifyHostKey(key, keys, { site, host, port });
      return verdict.ok;
    },
  };

  return new Promise((resolve, reject) => {
    const client = new Client();
    // Our own socket, so it can be destroyed whatever state ssh2 is in (D104).
    const socket = netConnect({ host, port });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      // Nothing to say politely on a connection that never became one; a half-open socket
      // to a dead host would keep the process alive.
      socket.destroy();
      reject(error);
    };
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      resolve(
        new SshConnection(
          target,
          client,
          options.execTimeoutMs ?? DEFAULT_CONNECT_OPTIONS.execTimeoutMs,
          socket,
        ),
      );
    });
    client.on('error', (error) => {
      if (verdict !== undefined && !verdict.ok) {
        fail(new HostKeyError(site, host, verdict.presented, verdict.expected, verdict.message));
      } else if (error.level === 'client-authentication') {
        fail(
          new AuthenticationError(
            site,
            `${site}: ${target.user}@${host}:${port} did not accept the controller's key (is it installed with the forced command?)`,
          ),
        );
      } else {
        const { reason, retryable } = classifyConnectError(error);
        fail(
          new TransportError(
            site,
            reason,
            `${site}: cannot connect to ${host}:${port}: ${error.message}`,
            retryable,
          ),
        );
      }
    });
    client.once('close', () => {
      fail(
        new TransportError(
          site,
          'closed',
          `${site}: ${host}:${port} closed the connection during the handshake`,
          true,
        ),
      );
    });
    try {
      client.connect({ ...config, sock: socket });
    } catch (error) {
      // ssh2 validates the private key synchronously.
      fail(
        new UplinkError(
          'usage',
          `${site}: the controller's private key cannot be used: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    }
  });
}
