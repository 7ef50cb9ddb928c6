import { describe, expect, it } from 'vitest';
import { mapWithConcurrency } from './pool.js';

describe('mapWithConcurrency', () => {
  it('never runs more than the limit at once and returns results in input order', async () => {
    let running = 0;
    let maxRunning = 0;
    const gates: Array<() => void> = [];
    const run = mapWithConcurrency([0, 1, 2, 3, 4, 5, 6], 3, async (item) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      return item * 10;
    });
    // Release waiting tasks one at a time, newest first, until all seven have been released.
    for (let released = 0; released < 7; ) {
      await new Promise((resolve) => setImmediate(resolve));
      const gate = gates.pop();
      if (gate !== undefined) {
        gate();
        released++;
      }
    }
    expect(await run).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(maxRunning).toBe(3);
  });

  it('awaits every task and rethrows the first failure', async () => {
    const finished: number[] = [];
    await expect(
      mapWithConcurrency([0, 1, 2, 3], 2, async (item) => {
        if (item === 1) throw new Error('task 1 failed');
        await new Promise((resolve) => setImmediate(resolve));
        finished.push(item);
        return item;
      }),
    ).rejects.toThrow('task 1 failed');
    expect(finished.sort()).toEqual([0, 2, 3]);
  });

  it('refuses a non-positive limit', async () => {
    await expect(mapWithConcurrency([1], 0, async (x) => x)).rejects.toThrow(RangeError);
  });
});
