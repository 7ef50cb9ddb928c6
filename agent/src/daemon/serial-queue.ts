/**
 * One writer: state-changing work (apply, confirm, revert, the revert timer) runs one task
 * at a time, in arrival order. A failing task does not stop the queue.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #length = 0;

  run<T>(task: () => Promise<T>): Promise<T> {
    this.#length++;
    const result = this.#tail.then(task);
    this.#tail = result.then(
      () => this.#length--,
      () => this.#length--,
    );
    return result;
  }

  /** Tasks queued or running. */
  get length(): number {
    return this.#length;
  }

  /** Resolves when everything queued so far has finished. */
  async idle(): Promise<void> {
    await this.#tail;
  }
}
