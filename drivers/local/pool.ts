/**
 * A bounded pool for the per-platform builds of the `local` driver.
 * @module
 */

/**
 * Runs `fn` on every item, at most `limit` at once, and returns the results in item order. On
 * the first failure no further item starts; the running ones finish, what they produced is
 * released with `release`, and the first failure is thrown.
 */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T, index: number) => Promise<R>,
  release: (result: R) => Promise<void>,
): Promise<R[]> {
  const results: (R | undefined)[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      if (signal?.aborted) {
        failure ??= { error: signal.reason };
        break;
      }
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  await Promise.all(workers);
  if (failure) {
    await Promise.all(results.map((r) => r === undefined ? undefined : release(r).catch(() => {})));
    throw failure.error;
  }
  return results as R[];
}
