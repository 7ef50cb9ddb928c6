/**
 * The agent RPC client: one exec channel running the forced command `uplink-agent rpc`,
 * JSON lines in both directions (agent/src/model/protocol.ts). Requests carry an id and
 * responses are matched by it; every response line is validated with the protocol's zod
 * schema and refused if longer than MAX_LINE_BYTES. Several calls may share one session.
 *
 * Retry safety: once `apply` or `revert` has been written and not answered, a lost channel
 * or a timeout is NOT retryable — the agent may have acted on it, and re-sending could apply
 * twice (overwriting its revert snapshot). `hello`, `plan`, `status` and `confirm` are
 * safe to repeat.
 */
import type { ClientChannel } from 'ssh2';
import {
  type DesiredState,
  type HelloResult,
  LineSplitter,
  MAX_LINE_BYTES,
  type Method,
  PROTOCOL_REVISION,
  PROTOCOL_VERSION,
  type Request,
  request as requestSchema,
  requiredRevision,
  response as responseSchema,
} from '#agent/model';
import { UplinkError } from '../errors.js';
import { parseHelloResult } from './agent-results.js';
import type { SshConnection } from './ssh-transport.js';
import { AgentError, ProtocolError, TransportError } from './transport-errors.js';

/** What the router's forced command is; the server ignores it, but it shows in its logs. */
export const RPC_COMMAND = 'uplink-agent rpc';
export const CLIENT_NAME = 'uplink-controller/0.1.0';

/** Methods that change the router; a lost answer to one of them makes retrying unsafe. */
const NON_IDEMPOTENT: ReadonlySet<Method> = new Set<Method>(['apply', 'revert']);

export interface RpcOptions {
  /** Each call must be answered within this time. Default 120 s (an apply of a large state takes a while). */
  readonly callTimeoutMs?: number | undefined;
  /** Refuse response lines longer than this. Default MAX_LINE_BYTES from the protocol. */
  readonly maxLineBytes?: number | undefined;
}

export const DEFAULT_CALL_TIMEOUT_MS = 120_000;

interface PendingCall {
  readonly method: Method;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export interface ApplyRequest {
  readonly desired: DesiredState;
  readonly generation: string;
  readonly confirmWithinMs: number;
  readonly allowManagementChange?: boolean | undefined;
}

/**
 * A session with one agent. Results are `unknown` until the protocol defines result
 * schemas; callers validate what they use (see agent-results.ts).
 */
export class AgentSession {
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private readonly splitter: LineSplitter;
  private readonly callTimeoutMs: number;
  /** A non-idempotent request is in flight: losing the session now leaves its outcome unknown. */
  private unsettledMutations = 0;
  private failure: Error | undefined;
  private revision = 1;
  private stderrTail = '';
  private channelClosed = false;

  private constructor(
    readonly site: string,
    private readonly connection: SshConnection,
    private readonly channel: ClientChannel,
    options: RpcOptions,
  ) {
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.splitter = new LineSplitter(options.maxLineBytes ?? MAX_LINE_BYTES);
    channel.on('data', (chunk: Buffer) => this.onData(chunk));
    channel.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-2000);
    });
    channel.on('close', () => {
      this.channelClosed = true;
      this.onClose();
    });
    channel.on('error', (error: Error) =>
      this.fail(this.lostError(`the RPC channel failed: ${error.message}`)),
    );
  }

  /** Open the RPC channel on an established connection. */
  static async open(connection: SshConnection, options: RpcOptions = {}): Promise<AgentSession> {
    const channel = await connection.exec(RPC_COMMAND);
    return new AgentSession(connection.target.site, connection, channel, options);
  }

  /**
   * Negotiates the protocol revision (D91): asks for ours, the agent answers with the highest
   * both speak. An agent from before negotiation refuses any revision but 1 with
   * `unsupported-version`; it is asked again for revision 1.
   */
  async hello(): Promise<HelloResult> {
    let result: unknown;
    try {
      result = await this.call('hello', { protocol: PROTOCOL_REVISION, client: CLIENT_NAME });
    } catch (error) {
      if (!(error instanceof AgentError && error.code === 'unsupported-version')) throw error;
      result = await this.call('hello', { protocol: 1, client: CLIENT_NAME });
    }
    const hello = parseHelloResult(result, this.site);
    this.revision = Math.max(1, Math.min(hello.protocol, PROTOCOL_REVISION));
    return hello;
  }

  /** The negotiated protocol revision (1 until hello has answered). */
  get protocolRevision(): number {
    return this.revision;
  }

  plan(desired: DesiredState): Promise<unknown> {
    const refused = this.refuseUnsupported(desired, 'plan');
    return refused ?? this.call('plan', { desired });
  }

  /** `timeoutMs` overrides the session's call timeout for this call (applyAndConfirm's deadline, D104). */
  apply(params: ApplyRequest, options: { readonly timeoutMs?: number } = {}): Promise<unknown> {
    const refused = this.refuseUnsupported(params.desired, 'apply');
    if (refused !== undefined) return refused;
    const { allowManagementChange, ...rest } = params;
    return this.call(
      'apply',
      allowManagementChange === undefined ? rest : { ...rest, allowManagementChange },
      options.timeoutMs,
    );
  }

  /** A state that uses features the agent's revision lacks is not sent: the agent would refuse it less clearly. */
  private refuseUnsupported(desired: DesiredState, method: Method): Promise<never> | undefined {
    const needed = requiredRevision(desired);
    if (needed.revision <= this.revision) return undefined;
    return Promise.reject(
      new UplinkError(
        'refused',
        `${this.site}: ${method}: the spec uses ${needed.features.join(', ')}, which needs uplink-agent protocol revision ${needed.revision}; the router's agent speaks revision ${this.revision} — upgrade uplink-agent on it (nothing was sent)`,
      ),
    );
  }

  confirm(generation: string): Promise<unknown> {
    return this.call('confirm', { generation });
  }

  revert(): Promise<unknown> {
    return this.call('revert', {});
  }

  /** `factsHash`: the router facts the controller holds (D170); an older agent ignores it. */
  status(params: { readonly factsHash?: string } = {}): Promise<unknown> {
    return this.call('status', params.factsHash === undefined ? {} : { factsHash: params.factsHash });
  }

  /**
   * End the session gracefully: send end-of-input and wait until the router closes the
   * channel (OpenSSH does that once the forced command has exited), at most `graceMs`; then
   * close it from our side. Afterwards the agent's session is over, not just abandoned.
   */
  async close(graceMs = 2_000): Promise<void> {
    if (!this.channelClosed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.channel.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        this.channel.end();
      });
    }
    this.channel.close();
  }

  private call(method: Method, params: unknown, timeoutMs = this.callTimeoutMs): Promise<unknown> {
    const { site } = this;
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    const checked = requestSchema.safeParse({ v: PROTOCOL_VERSION, id, method, params });
    if (!checked.success) {
      const problems = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).slice(0, 5);
      return Promise.reject(
        new UplinkError(
          'internal',
          `${site}: ${method}: the request is not valid protocol: ${problems.join('; ')}`,
        ),
      );
    }
    const line = `${JSON.stringify(checked.data satisfies Request)}\n`;
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
      return Promise.reject(
        new UplinkError(
          'refused',
          `${site}: ${method}: the request is ${Buffer.byteLength(line)} bytes, over the protocol's ${MAX_LINE_BYTES}-byte limit`,
        ),
      );
    }
    const mutation = NON_IDEMPOTENT.has(method);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const call = this.pending.get(id);
        if (call === undefined) return;
        this.settle(id);
        const error = new TransportError(
          site,
          'call-timeout',
          `${site}: ${method}: no answer within ${timeoutMs} ms${mutation ? '; its outcome is unknown' : ''}`,
          this.unsettledMutations === 0 && !mutation,
        );
        reject(error);
        // The session's state is unknown now; do not reuse it.
        this.fail(error);
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      if (mutation) this.unsettledMutations++;
      this.channel.write(line);
    });
  }

  /** Remove a pending call and its bookkeeping; returns it. */
  private settle(id: number): PendingCall | undefined {
    const call = this.pending.get(id);
    if (call === undefined) return undefined;
    this.pending.delete(id);
    clearTimeout(call.timer);
    if (NON_IDEMPOTENT.has(call.method)) this.unsettledMutations--;
    return call;
  }

  private onData(chunk: Buffer): void {
    if (this.failure !== undefined) return;
    const items = this.splitter.push(chunk);
    for (const item of items) {
      if ('tooLong' in item) break;
      this.onLine(item.line.toString('utf8'));
      if (this.failure !== undefined) return;
    }
    // Refused as soon as it is known to be too long, without waiting for (or buffering) the rest.
    if (this.splitter.overflowing || items.some((item) => 'tooLong' in item)) {
      this.fail(
        new ProtocolError(
          this.site,
          `${this.site}: the agent sent a line over ${this.splitter.maxBytes} bytes; refused unread`,
        ),
      );
    }
  }

  private onLine(line: string): void {
    const { site } = this;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.fail(new ProtocolError(site, `${site}: the agent sent a line that is not JSON: ${preview(line)}`));
      return;
    }
    const parsed = responseSchema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues
        .map((i) => `${i.path.join('.') || '(line)'}: ${i.message}`)
        .slice(0, 3);
      this.fail(
        new ProtocolError(
          site,
          `${site}: the agent sent an invalid response (${problems.join('; ')}): ${preview(line)}`,
        ),
      );
      return;
    }
    const message = parsed.data;
    if (message.id === null) {
      // Only an error has a null id: the agent could not read a request well enough to answer it.
      const error = message.ok ? undefined : message.error;
      this.fail(
        new ProtocolError(
          site,
          `${site}: the agent rejected a request it could not read: ${error?.code}: ${error?.message}`,
        ),
      );
      return;
    }
    const id = typeof message.id === 'number' ? message.id : Number.NaN;
    const call = this.settle(id);
    if (call === undefined) {
      this.fail(
        new ProtocolError(
          site,
          `${site}: the agent answered request id ${JSON.stringify(message.id)}, which was never sent`,
        ),
      );
      return;
    }
    if (message.ok) call.resolve(message.result);
    else call.reject(new AgentError(site, call.method, message.error.code, message.error.message));
  }

  private onClose(): void {
    const stderr = this.stderrTail.trim();
    const what =
      this.pending.size > 0
        ? 'the agent closed the RPC channel before answering'
        : 'the RPC channel is closed';
    this.fail(this.lostError(`${what}${stderr === '' ? '' : ` (agent stderr: ${preview(stderr)})`}`));
  }

  /** A lost channel: retryable only if nothing that changes the router is awaiting an answer. */
  private lostError(what: string): TransportError {
    const connectionFailure = this.connection.failure;
    const detail = connectionFailure === undefined ? what : `${what}: ${connectionFailure.message}`;
    const mutation = this.unsettledMutations > 0;
    return new TransportError(
      this.site,
      'closed-before-response',
      `${this.site}: ${detail}${mutation ? '; the outcome of the pending apply/revert is unknown' : ''}`,
      !mutation,
    );
  }

  /** Fail every pending call with `error` and refuse further calls; closes the channel. */
  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    // Decide retryability per call before settling changes the mutation count.
    const calls = [...this.pending.keys()].map((id) => this.pending.get(id)!);
    for (const id of [...this.pending.keys()]) this.settle(id);
    this.failure = error;
    for (const call of calls) call.reject(error);
    this.channel.close();
  }
}

function preview(text: string): string {
  return text.length > 200 ? `${JSON.stringify(text.slice(0, 200))}…` : JSON.stringify(text);
}
