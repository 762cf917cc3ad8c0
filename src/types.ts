/** What a batch function tells about the batch it runs. */
export interface BatchContext {
  /**
   * Aborted when the batch's results are no longer wanted: the batcher was force-stopped (or its
   * graceful stop timed out). Its `reason` is the `BatcherStoppedError` the callers received.
   */
  readonly signal: AbortSignal;
  /** Numbers the batches of one batcher from 1, in the order they were cut. */
  readonly batchId: number;
}

/**
 * What a batch function returns: one entry per item, in the batch's order (an `Error` entry
 * rejects that item's caller alone), or nothing, which resolves every caller with `undefined`.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: lets a batch function be `async () => {}`
export type BatchResult<R> = ReadonlyArray<R | Error> | undefined | void;

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
