/** What a batch function tells about the batch it runs. */
export interface BatchContext {
  /**
   * Aborted when the batch's results are no longer wanted: the batcher was force-stopped (or its
   * graceful stop timed out), with the `BatcherStoppedError` the callers received as `reason`; or
   * every item of the batch was aborted or timed out, with the last one's reason.
   */
  readonly signal: AbortSignal;
  /** Numbers the batches of one batcher from 1, in the order they were cut. */
  readonly batchId: number;
  /** The key every item of this batch shares, with the `batchKey` option; otherwise `undefined`. */
  readonly key: string | number | undefined;
}

/** Options of one `process()` call. */
export interface ProcessOptions {
  /**
   * Cancels this item. Already aborted: `process()` rejects at once with `signal.reason` and
   * nothing is queued. Aborted while the item waits: it leaves the queue and the caller rejects
   * with `signal.reason`. Aborted while its batch runs: the caller rejects at once and the item's
   * result is dropped when it comes; when every item of a running batch is aborted, the batch's
   * `context.signal` is aborted too. One listener per signal, removed when its items settle.
   */
  signal?: AbortSignal;
  /**
   * Most milliseconds, from this call, before the caller rejects with `ItemTimeoutError`; the
   * item is then dropped as if aborted. `Infinity` for none.
   * @default the batcher's `itemTimeout`
   */
  timeout?: number;
  /**
   * Higher goes first: a batch takes the highest-priority waiting items, first come first served
   * within a priority. Any finite number. `maxQueueTime` still counts from the oldest waiting
   * item, whatever its priority, so low priorities are delayed, never stranded.
   * @default 0
   */
  priority?: number;
}

/**
 * What a batch function returns: one entry per item, in the batch's order (an `Error` entry
 * rejects that item's caller alone); with `keyOf`, a `Map` from each item's key to its result
 * (or `Error`), in any order, where a key may be absent (see `onMissingResult`); or nothing,
 * which resolves every caller with `undefined`.
 */
export type BatchResult<R> =
  | ReadonlyArray<R | Error>
  | ReadonlyMap<unknown, R | Error>
  | undefined
  // biome-ignore lint/suspicious/noConfusingVoidType: lets a batch function be `async () => {}`
  | void;

/** A function that processes a whole batch at once. */
export type BatchFunction<T, R> = (
  batch: T[],
  context: BatchContext,
) => BatchResult<R> | PromiseLike<BatchResult<R>>;

/** Options of `stop()`. */
export interface StopOptions {
  /**
   * Reject every queued and in-flight item at once with `BatcherStoppedError` and abort the
   * `signal` of every running batch, instead of draining.
   * @default false
   */
  force?: boolean;
  /**
   * For a graceful stop: milliseconds to wait for the drain before escalating to a force stop.
   * @default Infinity (wait as long as it takes)
   */
  timeout?: number;
}

/** Options of `Executor.close()`. */
export interface ExecutorCloseOptions {
  /** Abort the batches still running instead of letting them finish. */
  force?: boolean;
}

/**
 * Runs batches somewhere other than inline on the event loop: a worker-thread pool, a child
 * process, a remote service. With the `executor` option, every batch goes through `run` and
 * `processBatch` is never called.
 */
export interface Executor<T, R> {
  /** Runs one batch; resolves with its results, like a batch function. */
  run(batch: T[], context: BatchContext): Promise<BatchResult<R>>;
  /** Releases what the executor holds (threads, connections). Called by `stop()` when the batcher owns it. */
  close(options?: ExecutorCloseOptions): Promise<void>;
}
