import { AsyncBatcher } from "./batcher.js";
import type { BatcherOptions } from "./options.js";
import type { BatchContext, BatchFunction, BatchResult } from "./types.js";

class FunctionBatcher<T, R> extends AsyncBatcher<T, R> {
  readonly #fn: BatchFunction<T, R>;

  constructor(fn: BatchFunction<T, R>, options: BatcherOptions | undefined) {
    super(options);
    this.#fn = fn;
  }

  processBatch(batch: T[], context: BatchContext): BatchResult<R> | PromiseLike<BatchResult<R>> {
    return this.#fn(batch, context);
  }
}

/**
 * A batcher from a plain batch function; `T` and `R` are inferred from it.
 *
 * ```ts
 * const users = createBatcher(async (ids: number[]) => db.usersByIds(ids), { maxBatchSize: 100 });
 * const user = await users.process(42);
 * ```
 */
export function createBatcher<T, R>(
  processBatch: BatchFunction<T, R>,
  options?: BatcherOptions,
): AsyncBatcher<T, R> {
  if (typeof processBatch !== "function") {
    throw new TypeError(`processBatch must be a function, got ${typeof processBatch}`);
  }
  return new FunctionBatcher(processBatch, { name: "AsyncBatcher", ...options });
}
