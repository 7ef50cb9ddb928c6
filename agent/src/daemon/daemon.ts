/**
 * `uplink-agent daemon`: the long-running agent. Listens on a unix socket (mode 0660) for
 * JSON-lines sessions, usually opened by `uplink-agent rpc` on behalf of an SSH client.
 * Every line is size-checked and validated (zod) here, whatever the bridge did; replies
 * carry the request's id, errors are `{ok:false,error:{code,message,retryable}}`, never a
 * stack trace. State-changing methods go through CommitConfirmed's one-writer queue; hello,
 * plan and status answer at once.
 */
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { StateError } from '../errors.js';
import { LineSplitter } from '../model/line-splitter.js';
import {
  MAX_LINE_BYTES,
  PROTOCOL_REVISION,
  PROTOCOL_VERSION,
  type Request,
  type Response,
  resultForRevision,
  SUPPORTED_REVISIONS,
} from '../model/protocol.js';
import { AGENT_NAME } from './agent-version.js';
import { parseSshConnection, type SshConnection } from './check-management-path.js';
import { CommitConfirmed, type CommitOptions } from './commit-confirmed.js';
import { DriftWatch, type WatchOptions } from './drift-watch.js';
import { parseRequestLine } from './parse-request.js';
import { errorResponse, toWireError, WireError } from './wire-error.js';
import { PREAMBLE_KEY } from './wire-limits.js';

export interface DaemonOptions extends CommitOptions {
  readonly socketPath: string;
  /**
   * Follow address and health changes and detect drift (see drift-watch.ts); without it
   * the daemon only applies, confirms and reverts, and `status.drift` stays null.
   */
  readonly watch?: WatchOptions;
}

export interface RunningDaemon {
  readonly socketPath: string;
  readonly commit: CommitConfirmed;
  readonly watch: DriftWatch | undefined;
  /** Stops listening, lets queued work finish, removes the socket. A pending apply stays armed on disk. */
  close(): Promise<void>;
}

interface Session {
  connection: SshConnection | undefined;
  /** The revision negotiated in hello (1 until then): below FAULTS_REVISION faults are told in older words. */
  revision: number;
}

export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  await prepareSocketPath(options.socketPath);
  const commit = await CommitConfirmed.open(options);
  const watch =
    options.watch === undefined
      ? undefined
      : new DriftWatch(
          commit,
          {
            stateDir: options.stateDir,
            dataplane: options.dataplane,
            now: options.now ?? Date.now,
            log: options.log,
          },
          options.watch,
        );
  watch?.start();
  const sockets = new Set<Socket>();
  // allowHalfOpen: a client may send its requests and close its side at once (`echo … | ssh`);
  // the answers still go out, then the daemon ends the connection.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveSession(socket, commit, options);
  });
  await listen(server, options.socketPath);
  let closing: Promise<void> | undefined;
  return {
    socketPath: options.socketPath,
    commit,
    watch,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const socket of sockets) socket.end();
        });
        await watch?.close();
        await commit.close();
        await rm(options.socketPath, { force: true });
      })();
      return closing;
    },
  };
}

function serveSession(socket: Socket, commit: CommitConfirmed, options: DaemonOptions): void {
  const splitter = new LineSplitter(MAX_LINE_BYTES);
  const session: Session = { connection: undefined, revision: 1 };
  let firstLine = true;
  let inFlight = 0;
  let inputEnded = false;
  const maybeEnd = () => {
    if (inputEnded && inFlight === 0 && !socket.destroyed) socket.end();
  };
  const send = (response: Response) => {
    if (socket.destroyed) return;
    let line = `${JSON.stringify(response)}\n`;
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
      line = `${JSON.stringify(
        errorResponse(
          response.id,
          new WireError('too-large', `the answer is over the ${MAX_LINE_BYTES}-byte line limit`),
        ),
      )}\n`;
    }
    socket.write(line);
  };
  const onLine = (text: string) => {
    const wasFirst = firstLine;
    firstLine = false;
    if (text.trim() === '') return;
    if (wasFirst) {
      const preamble = readPreamble(text);
      if (preamble !== undefined) {
        session.connection = preamble ?? undefined;
        return;
      }
    }
    const parsed = parseRequestLine(text);
    if (!parsed.ok) {
      send(parsed.response);
      return;
    }
    const { request } = parsed;
    inFlight++;
    dispatch(request, session, commit)
      .then(
        (result) =>
          send({
            v: PROTOCOL_VERSION,
            id: request.id,
            ok: true,
            result: resultForRevision(request.method, result, session.revision),
          }),
        (error: unknown) =>
          send(
            errorResponse(
              request.id,
              toWireError(error, (bug) =>
                options.log(
                  `${request.method}: unexpected error (a bug): ${bug instanceof Error ? (bug.stack ?? bug.message) : String(bug)}`,
                ),
              ),
              { revision: session.revision },
            ),
          ),
      )
      .finally(() => {
        inFlight--;
        maybeEnd();
      });
  };
  const onItems = (items: ReturnType<LineSplitter['push']>) => {
    for (const item of items) {
      if ('line' in item) onLine(item.line.toString('utf8'));
      else {
        firstLine = false;
        send(
          errorResponse(
            null,
            new WireError(
              'too-large',
              `the request line is ${item.tooLong} bytes, over the ${MAX_LINE_BYTES}-byte limit; refused unread`,
            ),
          ),
        );
      }
    }
  };
  socket.on('data', (chunk: Buffer) => onItems(splitter.push(chunk)));
  socket.on('end', () => {
    onItems(splitter.end());
    inputEnded = true;
    maybeEnd();
  });
  socket.on('error', () => {
    // The client went away; queued work still completes (commit-confirmed covers the rest).
  });
}

async function dispatch(request: Request, session: Session, commit: CommitConfirmed): Promise<unknown> {
  switch (request.method) {
    case 'hello': {
      // The highest revision both ends speak (D91): a newer controller is answered, not refused.
      const revision = Math.min(request.params.protocol, PROTOCOL_REVISION);
      session.revision = revision;
      return {
        protocol: revision,
        supported: [...SUPPORTED_REVISIONS],
        agent: AGENT_NAME,
        site: await commit.site(),
      };
    }
    case 'status':
      return commit.status(request.params, session.connection);
    case 'plan':
      return commit.plan(request.params.desired, session.connection);
    case 'apply':
      return commit.apply(request.params, session.connection);
    case 'confirm':
      return commit.confirm(request.params.generation);
    case 'revert':
      return commit.revert();
  }
}

/** The bridge's first line: `{"bridge":1,"sshConnection":…}`; undefined when line 1 is not one. */
function readPreamble(text: string): SshConnection | undefined | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || (json as Record<string, unknown>)[PREAMBLE_KEY] !== 1) {
    return undefined;
  }
  const value = (json as Record<string, unknown>).sshConnection;
  return parseSshConnection(typeof value === 'string' ? value : undefined) ?? null;
}

/** Creates the socket's directory; removes a stale socket, refuses if a daemon answers there. */
async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const existing = await stat(path).catch(() => undefined);
  if (existing === undefined) return;
  if (!existing.isSocket())
    throw new StateError(`${path} exists and is not a socket; not replacing it`, path);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new StateError(`another uplink-agent daemon is listening on ${path}`, path);
  await rm(path, { force: true });
}

async function listen(server: Server, path: string): Promise<void> {
  // The socket is created with the process umask: narrow it so no moment exists where
  // others can connect, then set the documented mode.
  const previous = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  await chmod(path, 0o660);
}
