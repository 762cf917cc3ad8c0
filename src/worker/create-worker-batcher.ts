import { AsyncBatcher } from "../batcher.js";
import { type BatcherOptions, describe, resolveOptions } from "../options.js";
import type { BatchResult } from "../types.js";
import { WorkerPoolExecutor } from "./executor.js";
import { resolveWorkerPoolOptions, WORKER_POOL_KEYS, type WorkerPoolOptions } from "./options.js";
import type { WorkerItem, WorkerModule, WorkerResult } from "./types.js";

/**
 * Options of `createWorkerBatcher`: the batcher's (except `executor` and `closeExecutor`: the
 * batcher makes its pool and closes it on `stop()`) and the pool's (except `filename`).
 */
export interface WorkerBatcherOptions<T, R>
  extends Omit<BatcherOptions<T, R>, "executor" | "closeExecutor">,
    Omit<WorkerPoolOptions<T>, "filename"> {
  /**
   * Most batches processed at once: a positive integer or `Infinity`. More than `maxThreads`
   * only queues batches in the pool, where they are cut already and no longer grow.
   * @default maxThreads
   */
  concurrency?: number;
}

/** A batcher whose batches run in the worker pool it owns. */
export interface WorkerBatcher<T, R> extends AsyncBatcher<T, R> {
  /** The pool, for monitoring. `stop()` closes it. */
  readonly executor: WorkerPoolExecutor<T, R>;
}

class PoolBatcher<T, R> extends AsyncBatcher<T, R> implements WorkerBatcher<T, R> {
  readonly executor: WorkerPoolExecutor<T, R>;

  constructor(executor: WorkerPoolExecutor<T, R>, options: BatcherOptions<T, R>) {
    super({ ...options, executor, closeExecutor: true });
    this.executor = executor;
  }

  processBatch(): BatchResult<R> {
    // The engine hands every batch to the executor; this is never called.
    throw new Error("a worker batcher runs its batches in its worker pool");
  }
}

/**
 * A batcher whose batches run in a pool of worker threads that it owns: `stop()` drains the
 * batcher, then closes the pool (a force stop stops the threads at once). `concurrency` defaults
 * to `maxThreads`. The worker module exports `(batch: T[]) => R[] | Promise<R[]>`.
 *
 * Type it from the module, or name the types:
 *
 * ```ts
 * const embed = createWorkerBatcher<typeof import("./embed.worker.js")>(
 *   new URL("./embed.worker.js", import.meta.url),
 *   { maxBatchSize: 32, maxQueueTime: 5 },
 * );
 * const tokens = createWorkerBatcher<string, number[]>("./tokenize.worker.js");
 * ```
 *
 * @typeParam M - the worker module (`typeof import("./model.js")`, default export), or the worker
 *   function's type (`typeof import("./model.js").embed`, with `exportName: "embed"`)
 */
export function createWorkerBatcher<M extends WorkerModule = (batch: unknown[]) => unknown[]>(
  filename: string | URL,
  options?: WorkerBatcherOptions<WorkerItem<M>, WorkerResult<M>>,
): WorkerBatcher<WorkerItem<M>, WorkerResult<M>>;
/**
 * A batcher whose batches run in a pool of worker threads that it owns, with the item type `T`
 * and the result type `R` named.
 */
export function createWorkerBatcher<T, R>(
  filename: string | URL,
  options?: WorkerBatcherOptions<T, R>,
): WorkerBatcher<T, R>;
// The implementation's signature is not part of the API (the overloads above are): `any` lets
// both overloads' types through, the batcher being invariant in its item type.
export function createWorkerBatcher(
  filename: string | URL,
  // biome-ignore lint/suspicious/noExplicitAny: see above
  options?: WorkerBatcherOptions<any, any>,
  // biome-ignore lint/suspicious/noExplicitAny: see above
): WorkerBatcher<any, any> {
  if (options === undefined || options === null) options = {};
  if (typeof options !== "object") {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  for (const key of ["executor", "closeExecutor"] as const) {
    if (key in options) {
      throw new TypeError(
        `${key} cannot be set: createWorkerBatcher makes its worker pool and closes it on stop(); pass a WorkerPoolExecutor to createBatcher for a pool of your own`,
      );
    }
  }
  const poolOptions: WorkerPoolOptions<unknown> = { filename };
  const batcherOptions: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if ((WORKER_POOL_KEYS as readonly string[]).includes(key)) {
      (poolOptions as unknown as Record<string, unknown>)[key] = value;
    } else {
      batcherOptions[key] = value;
    }
  }
  // Check everything before the pool starts threads, so that a bad option leaks none.
  const { maxThreads } = resolveWorkerPoolOptions(poolOptions);
  batcherOptions.concurrency ??= maxThreads;
  batcherOptions.name ??= "WorkerBatcher";
  resolveOptions(batcherOptions);
  const executor = new WorkerPoolExecutor<unknown, unknown>(poolOptions);
  return new PoolBatcher(executor, batcherOptions);
}
