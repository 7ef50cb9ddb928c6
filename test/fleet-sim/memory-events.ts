/**
 * Kernel change notifications for a simulated router: what `ip monitor` reports on a real
 * one. The simulator fires them when it edits the memory kernel behind the agent's back.
 */
import type { KernelEvent, KernelEvents } from '../../agent/src/daemon/kernel-watch.js';

export class MemoryEvents implements KernelEvents {
  readonly #listeners: ((event: KernelEvent) => void)[] = [];

  onEvent(listener: (event: KernelEvent) => void): void {
    this.#listeners.push(listener);
  }

  emit(event: KernelEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  async close(): Promise<void> {
    this.#listeners.length = 0;
  }
}
