import { AsyncBatcher } from "./batcher.js";
import { type BatcherOptions, resolveOptions } from "./options.js";
import type { BatchContext, BatchFunction, BatchResult } from "./types.js";

class FunctionBatcher<T, R> extends AsyncBatcher<T, R> {
  readonly #fn: BatchFunction<T, R>;

  constructor(fn: BatchFunction<T, R>, options: BatcherOptions<T, R> | undefined) {
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
// `R = void`: a batch function that returns nothing gives callers `Promise<void>`, not `unknown`.
export function createBatcher<T, R = void>(
  processBatch: BatchFunction<T, R>,
  options?: BatcherOptions<T, R>,
): AsyncBatcher<T, R> {
  if (typeof processBatch !== "function") {
    throw new TypeError(`processBatch must be a function, got ${typeof processBatch}`);
  }
  if (options !== undefined && (options === null || typeof options !== "object")) {
    // Checked here as well: spreading a non-object below would hide it from resolveOptions.
    resolveOptions(options);
  }
  const name = options?.name === undefined ? "AsyncBatcher" : options.name;
  return new FunctionBatcher(processBatch, { ...options, name });
}
