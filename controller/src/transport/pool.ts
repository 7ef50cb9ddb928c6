/**
 * Run one task per item with bounded concurrency (p-limit). Each task writes its own
 * result slot — no shared mutable map — so results come back in input order.
 */
import pLimit from 'p-limit';

/**
 * `run` should return an outcome rather than throw (applyAndConfirm does). If some task
 * throws anyway, every task is still awaited and the first error is rethrown, so no task
 * is left running unobserved.
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  concurrency: number,
  run: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const limit = pLimit(concurrency);
  const results = new Array<R>(items.length);
  const errors = new Array<{ error: unknown } | undefined>(items.length);
  await Promise.all(
    items.map(async (item, i) => {
      try {
        results[i] = await limit(() => run(item, i));
      } catch (error) {
        errors[i] = { error };
      }
    }),
  );
  const first = errors.find((e) => e !== undefined);
  if (first !== undefined) throw first.error;
  return results;
}
