/**
 * `uplink-agent rpc`: the SSH forced command. Bridges the exec channel (stdin/stdout) to the
 * daemon's unix socket, line by line. It runs on every SSH connection, so it imports only
 * node:net and two dependency-free modules: it does not parse JSON, it only counts bytes per
 * line and refuses over-long lines itself (the daemon checks again, and validates everything).
 *
 * Its first line to the daemon is the preamble carrying SSH_CONNECTION, so the daemon knows
 * the controller's address for the management-path guard.
 */
import { connect } from 'node:net';
import { LineSplitter, type SplitItem } from '../model/line-splitter.js';
import { PREAMBLE_KEY, WIRE_MAX_LINE_BYTES, WIRE_PROTOCOL_VERSION } from './wire-limits.js';

export interface BridgeIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** `ok`: the client closed its side; `unavailable`: no daemon; `lost`: the daemon went away. */
export type BridgeOutcome = 'ok' | 'unavailable' | 'lost';

export function runRpcBridge(
  options: { readonly socketPath: string; readonly maxLineBytes?: number },
  io: BridgeIo,
): Promise<BridgeOutcome> {
  const maxLineBytes = options.maxLineBytes ?? WIRE_MAX_LINE_BYTES;
  return new Promise((resolve) => {
    const socket = connect(options.socketPath);
    const fromClient = new LineSplitter(maxLineBytes);
    // The daemon's lines are whole lines too: the bridge's own error lines must not land
    // in the middle of one.
    const fromDaemon = new LineSplitter(maxLineBytes);
    let connected = false;
    let clientDone = false;
    let settled = false;
    const finish = (outcome: BridgeOutcome) => {
      if (settled) return;
      settled = true;
      io.stdin.removeListener('data', onClientData);
      io.stdin.removeListener('end', onClientEnd);
      io.stdin.pause();
      resolve(outcome);
    };

    const writeClientItems = (items: SplitItem[]) => {
      for (const item of items) {
        if ('line' in item) {
          if (!socket.write(Buffer.concat([item.line, NEWLINE]))) {
            io.stdin.pause();
            socket.once('drain', () => io.stdin.resume());
          }
        } else {
          io.stdout.write(
            errorLine(
              'too-large',
              `the request line is ${item.tooLong} bytes, over the ${maxLineBytes}-byte limit; refused unread`,
              false,
            ),
          );
        }
      }
    };
    const onClientData = (chunk: Buffer | string) => {
      writeClientItems(fromClient.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    };
    const onClientEnd = () => {
      clientDone = true;
      writeClientItems(fromClient.end());
      socket.end();
    };

    socket.on('connect', () => {
      connected = true;
      const sshConnection = io.env.SSH_CONNECTION ?? null;
      socket.write(`${JSON.stringify({ [PREAMBLE_KEY]: 1, sshConnection })}\n`);
      io.stdin.on('data', onClientData);
      io.stdin.on('end', onClientEnd);
      io.stdin.resume();
    });
    socket.on('data', (chunk: Buffer) => {
      for (const item of fromDaemon.push(chunk)) {
        if ('line' in item) io.stdout.write(Buffer.concat([item.line, NEWLINE]));
        else io.stdout.write(errorLine('internal', 'the agent sent an over-long line; dropped', false));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected) {
        io.stdout.write(
          errorLine(
            'unavailable',
            `the uplink-agent daemon is not reachable at ${options.socketPath} (${error.code ?? error.message})`,
            true,
          ),
        );
        io.stderr(`uplink-agent rpc: cannot reach the daemon at ${options.socketPath}: ${error.message}\n`);
        finish('unavailable');
        return;
      }
      io.stderr(`uplink-agent rpc: daemon connection failed: ${error.message}\n`);
    });
    socket.on('close', () => {
      if (!connected) return finish('unavailable');
      for (const item of fromDaemon.end()) {
        if ('line' in item) io.stdout.write(Buffer.concat([item.line, NEWLINE]));
      }
      if (!clientDone) io.stderr('uplink-agent rpc: the daemon closed the connection\n');
      finish(clientDone ? 'ok' : 'lost');
    });
  });
}

const NEWLINE = Buffer.from('\n');

/** A protocol error response, built by hand (no zod here); id null: the request was not read. */
function errorLine(code: string, message: string, retryable: boolean): string {
  return `${JSON.stringify({ v: WIRE_PROTOCOL_VERSION, id: null, ok: false, error: { code, message, retryable } })}\n`;
}
