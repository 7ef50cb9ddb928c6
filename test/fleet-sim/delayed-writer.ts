/**
 * A one-way wire delay: every chunk written reaches `target` `delay()` ms later, in order
 * (timers of equal duration fire first-in first-out). With no delay it writes through.
 */
import { Writable } from 'node:stream';

export class DelayedWriter extends Writable {
  #inFlight = 0;
  #idle: (() => void)[] = [];

  constructor(
    private readonly target: NodeJS.WritableStream,
    private readonly delay: () => number,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const ms = this.delay();
    if (ms <= 0) {
      this.target.write(chunk);
      callback();
      return;
    }
    this.#inFlight++;
    setTimeout(() => {
      this.target.write(chunk);
      this.#inFlight--;
      if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }, ms);
    callback();
  }

  /** Resolves when every chunk written so far has reached the target. */
  flushed(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
