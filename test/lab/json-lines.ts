/**
 * A JSON-lines client for the agent daemon's unix socket (tests): send lines, collect the
 * answers. The bridge and SSH are tested separately; this talks to the daemon directly.
 */
import { connect, type Socket } from 'node:net';

export class JsonLinesClient {
  readonly #socket: Socket;
  #buffer = '';
  readonly #lines: string[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let newline = this.#buffer.indexOf('\n');
      while (newline !== -1) {
        this.#lines.push(this.#buffer.slice(0, newline));
        this.#buffer = this.#buffer.slice(newline + 1);
        newline = this.#buffer.indexOf('\n');
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static open(path: string): Promise<JsonLinesClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new JsonLinesClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes raw text (add the newline yourself). */
  write(text: string | Buffer): void {
    this.#socket.write(text);
  }

  send(message: unknown): void {
    this.write(`${JSON.stringify(message)}\n`);
  }

  /** Waits for `count` more answer lines (parsed), or throws after `timeoutMs`. */
  async read(count = 1, timeoutMs = 30_000): Promise<Array<Record<string, unknown>>> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length < count) {
      if (this.#closed) throw new Error(`connection closed after ${this.#lines.length}/${count} lines`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout: ${this.#lines.length}/${count} lines`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.#lines.splice(0, count).map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Sends one request and returns its answer. */
  async call(id: number | string, method: string, params: unknown): Promise<Record<string, unknown>> {
    this.send({ v: 1, id, method, params });
    const [answer] = await this.read(1);
    return answer!;
  }

  end(): void {
    this.#socket.end();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * One request on a fresh connection to the daemon's socket; returns the answer's result, or
 * throws `WHAT: ANSWER` (WHAT defaults to the method) when the answer is not ok.
 */
export async function callOnSocket(
  path: string,
  method: string,
  params: unknown,
  what = method,
): Promise<unknown> {
  const client = await JsonLinesClient.open(path);
  try {
    const answer = await client.call(1, method, params);
    if (answer.ok !== true) throw new Error(`${what}: ${JSON.stringify(answer)}`);
    return answer.result;
  } finally {
    client.end();
  }
}
