/** The controller's recent events, newest last, bounded (for /api/status and `uplink status`). */
import type { ApiEvent } from '../http/api-status.js';

export class EventLog {
  readonly #events: ApiEvent[] = [];

  constructor(readonly limit = 100) {}

  add(event: ApiEvent): void {
    this.#events.push(event);
    if (this.#events.length > this.limit) this.#events.splice(0, this.#events.length - this.limit);
  }

  list(): readonly ApiEvent[] {
    return this.#events.slice();
  }
}
