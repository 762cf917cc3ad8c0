import type { BatcherEventName, BatcherEvents, BatcherStats } from "./events.js";
import { Engine } from "./internal/engine.js";
import {
  type BatcherOptions,
  durationOption,
  resolveOptions,
  resolveTunable,
  type TunableOptions,
} from "./options.js";
import type { BatchContext, BatchResult, ProcessOptions, StopOptions } from "./types.js";

/**
 * Installs the capture of each caller's context (for tracing): `batcher[captureContext](fn)`
 * calls `fn()` in every `process()`, and gives what it returned for a batch's callers to
 * `batchStart` as `contexts`; `batcher[captureContext](undefined)` removes it. A registered
 * symbol, so every copy of the library agrees on it. `async-batcher/otel` uses it.
 */
export const captureContext: unique symbol = Symbol.for("async-batcher.captureContext");

/**
 * Installs a scope around every batch function call (for tracing): `batcher[batchScope](fn)`
 * makes the batcher call `fn(batchId, run)` instead of the batch function, and `fn` must call
 * `run()` once, synchronously, and return what it returned (`async-batcher/otel` runs it inside
 * the batch's span, so spans the function starts are its children). `undefined` removes it.
 */
export const batchScope: unique symbol = Symbol.for("async-batcher.batchScope");

/** What `batcher[batchScope]` installs. */
export type BatchScope = (batchId: number, run: () => unknown) => unknown;

// Symbol.asyncDispose is standard from Node 20 on; older hosts get the registered fallback.
const asyncDispose: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);

/**
 * Groups items submitted one at a time with `process()` into batches, runs `processBatch` on each
 * batch with at most `concurrency` batches at once, and settles every caller with its own result.
 *
 * Subclass it and implement `processBatch`, or use `createBatcher(fn, options)`.
 *
 * @typeParam T - the item each caller submits
 * @typeParam R - the result each caller gets
 */
export abstract class AsyncBatcher<T, R> implements AsyncDisposable {
  readonly #engine: Engine<T, R>;
  readonly #weighs: boolean;

  constructor(options?: BatcherOptions<T, R>) {
    const resolved = resolveOptions(options);
    this.#weighs = resolved.weigh !== undefined;
    this.#engine = new Engine<T, R>(
      resolved,
      (batch, context) => this.processBatch(batch, context),
      new.target.name || "AsyncBatcher",
    );
  }

  /**
   * Processes one batch. Return one result per item, in the batch's order (an `Error` at position
   * `i` rejects item `i` alone), or nothing to resolve every item with `undefined`. A throw or a
   * rejection rejects every item of the batch with that error. Not called when the `executor`
   * option is set: the executor runs every batch.
   */
  abstract processBatch(
    batch: T[],
    context: BatchContext,
  ): BatchResult<R> | PromiseLike<BatchResult<R>>;

  /**
   * Queues one item and resolves with its own result once its batch has run.
   *
   * Rejects with `BatcherStoppedError` once `stop()` has been called; with `QueueFullError` when
   * `maxQueueSize` items are waiting (see `onQueueFull`); with `signal.reason` when `signal`
   * aborts first, and with `ItemTimeoutError` when `timeout` passes first; with
   * `ItemTooLargeError` when the item weighs more than `maxBatchWeight`; with what `weigh` or
   * `batchKey` threw, or `InvalidInputError` when they returned something unusable; and with a
   * `TypeError` or `RangeError` for bad `options`. Never throws.
   */
  process(item: T, options?: ProcessOptions): Promise<R> {
    return this.#engine.submit(item, options);
  }

  /**
   * Changes limits on the running batcher: `maxBatchSize`, `maxQueueTime`, `concurrency`,
   * `maxQueueSize`, `maxBatchWeight` and `rateLimit`. Checked like the constructor's options (all
   * of them before any applies; a key set to `undefined` goes back to its default), and applied
   * at once: a larger `concurrency` or a smaller `maxBatchSize` cuts the batches now due, a larger
   * `maxQueueSize` lets waiting callers in. Items already queued stay queued when `maxQueueSize`
   * shrinks; items heavier than a lowered `maxBatchWeight` reject with `ItemTooLargeError`.
   */
  setOptions(options: TunableOptions): void {
    this.#engine.setOptions(resolveTunable(options, this.#weighs));
  }

  /**
   * Cuts everything queued now into batches without waiting for `maxQueueTime` (concurrency still
   * applies), and resolves once those items have settled.
   */
  flush(): Promise<void> {
    return this.#engine.flush();
  }

  /** Resolves when nothing is queued or in flight. */
  onIdle(): Promise<void> {
    return this.#engine.onIdle();
  }

  /**
   * Stops the batcher; `process()` rejects with `BatcherStoppedError` from now on.
   *
   * Graceful (the default): queued items are cut at once (concurrency still applies) and the
   * promise resolves when every item has settled; with `timeout`, once it passes, the stop is
   * forced. Forced: every queued and in-flight item rejects at once with `BatcherStoppedError`
   * and the `signal` of every running batch is aborted; results that come later are dropped.
   *
   * Idempotent: later calls return the same promise, and `{ force: true }` escalates a graceful
   * stop in progress.
   */
  stop(options?: StopOptions): Promise<void> {
    let force = false;
    let timeout = Number.POSITIVE_INFINITY;
    if (options !== undefined) {
      if (options === null || typeof options !== "object") {
        return Promise.reject(
          new TypeError(`stop options must be an object, got ${String(options)}`),
        );
      }
      try {
        if (options.force !== undefined && typeof options.force !== "boolean") {
          throw new TypeError(`force must be a boolean, got ${String(options.force)}`);
        }
        force = options.force ?? false;
        timeout = durationOption("timeout", options.timeout, timeout);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#engine.stop(force, timeout);
  }

  /** True from the first `process()` until `stop()` has completed. */
  get isRunning(): boolean {
    return this.#engine.isRunning;
  }

  /** Items waiting in the queue, not yet in a batch (counted against `maxQueueSize`). */
  get queueSize(): number {
    return this.#engine.queueSize;
  }

  /** Callers waiting for room in a full queue, with `onQueueFull: "wait"`. */
  get waiting(): number {
    return this.#engine.waiting;
  }

  /** Items in batches that are being processed, or waiting for a retry. */
  get inFlight(): number {
    return this.#engine.inFlight;
  }

  /** The batcher's name, as used in log lines, events, `stats()` and metrics. */
  get name(): string {
    return this.#engine.name;
  }

  /**
   * Subscribes to one event: `batchStart`, `batchEnd`, `retry`, `split`, `drop` or `idle` (see
   * `BatcherEvents`). Returns the function that unsubscribes. Listeners run synchronously, in
   * the order they subscribed; one that throws never breaks the batcher (what it threw goes to
   * the `logger` as a `listenerError` event). With no listener, events cost nothing.
   */
  on<K extends BatcherEventName>(
    event: K,
    listener: (event: BatcherEvents[K]) => void,
  ): () => void {
    return this.#engine.on(event, listener);
  }

  /**
   * A snapshot of what the batcher did and holds: counters since it was made, gauges now, and
   * percentiles of batch size, queue wait and batch duration (kept in fixed memory).
   */
  stats(): BatcherStats {
    return this.#engine.stats();
  }

  /** See `batchScope`. */
  [batchScope](scope: BatchScope | undefined): void {
    if (scope !== undefined && typeof scope !== "function") {
      throw new TypeError(`scope must be a function or undefined, got ${typeof scope}`);
    }
    this.#engine.batchScope(scope);
  }

  /** See `captureContext`. */
  [captureContext](capture: (() => unknown) | undefined): void {
    if (capture !== undefined && typeof capture !== "function") {
      throw new TypeError(`capture must be a function or undefined, got ${typeof capture}`);
    }
    this.#engine.captureContext(capture);
  }

  /** A graceful `stop()`, so that `await using batcher = ...` stops it at the end of the block. */
  [asyncDispose](): Promise<void> {
    return this.stop();
  }
}
