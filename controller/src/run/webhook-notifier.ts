/**
 * The outgoing webhook (D130): every controller event at or above `minLevel` is POSTed as
 * JSON to `notify.webhook.url`, one at a time, in order:
 *
 *   { "version": 1, "controller": "<repository URL, without credentials>",
 *     "event": { "at": 1733224935123, "time": "2024-12-03T11:22:15Z", "level": "warn",
 *                "kind": "provider-down", "message": "…", "site": "…", "wave": "…", "commit": "…" } }
 *
 * Headers: `Content-Type: application/json`, `User-Agent: uplink/VERSION`, `X-Uplink-Event:
 * KIND`, and with a secret `X-Uplink-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
 * A failed delivery (no answer within 10 s, or not 2xx) is tried 3 times (1 s, then 4 s
 * apart), then dropped and logged; at most 1,000 events wait, the oldest dropped first.
 * The webhook never slows the loop: `send` only queues.
 */
import { createHmac } from 'node:crypto';
import type { ApiEvent } from '../http/api-status.js';
import { isoTime } from '../report/iso-time.js';

export interface WebhookOptions {
  readonly url: string;
  readonly secret?: string;
  readonly minLevel: 'info' | 'warn' | 'error';
  readonly controller: string;
  readonly version: string;
  readonly log: { warn(obj: object, msg: string): void };
  /** Test hooks. */
  readonly timeoutMs?: number;
  readonly retryDelaysMs?: readonly number[];
}

const LEVELS = { info: 0, warn: 1, error: 2 } as const;
const MAX_QUEUED = 1000;

export class WebhookNotifier {
  readonly #queue: ApiEvent[] = [];
  #running: Promise<void> | null = null;
  #dropped = 0;
  #closed = false;
  /** Deliveries that got a 2xx (for tests and the log). */
  delivered = 0;

  constructor(readonly options: WebhookOptions) {}

  /** Queue an event (filtered by level); returns at once. */
  send(event: ApiEvent): void {
    if (this.#closed || LEVELS[event.level] < LEVELS[this.options.minLevel]) return;
    this.#queue.push(event);
    if (this.#queue.length > MAX_QUEUED) {
      this.#queue.shift();
      this.#dropped++;
    }
    this.#running ??= this.#drain().finally(() => {
      this.#running = null;
    });
  }

  /** The JSON body of one event. */
  body(event: ApiEvent): string {
    return JSON.stringify({
      version: 1,
      controller: this.options.controller,
      event: { ...event, time: isoTime(event.at) },
    });
  }

  /** Waits for the queue to drain (tests, shutdown); stops taking events when `close`. */
  async flush(close = false): Promise<void> {
    if (close) this.#closed = true;
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      if (this.#dropped > 0) {
        this.options.log.warn({ dropped: this.#dropped }, 'webhook: queue full, oldest events dropped');
        this.#dropped = 0;
      }
      const event = this.#queue.shift()!;
      await this.#deliver(event);
    }
  }

  async #deliver(event: ApiEvent): Promise<void> {
    const body = this.body(event);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': `uplink/${this.options.version}`,
      'X-Uplink-Event': event.kind,
    };
    if (this.options.secret)
      headers['X-Uplink-Signature-256'] =
        `sha256=${createHmac('sha256', this.options.secret).update(body).digest('hex')}`;
    const delays = this.options.retryDelaysMs ?? [1_000, 4_000];
    let last = '';
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, delays[attempt - 1]));
      try {
        const res = await fetch(this.options.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.delivered++;
          return;
        }
        last = `answered ${res.status}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
    }
    this.options.log.warn(
      { kind: event.kind, err: last },
      `webhook: ${event.kind} not delivered after ${delays.length + 1} tries; dropped`,
    );
  }
}
