import type { CutReason } from "./options.js";

/**
 * Why a batch started: cut from the queue (`CutReason`, where `"retry"` means items retried alone
 * rejoined it), or made from a batch that failed: its items retried together after a backoff
 * (`"retry"` too, with a `parentId`), or one half of it, with `splitOnError` (`"split"`).
 */
export type BatchStartReason = CutReason | "retry" | "split";

/**
 * Why a caller's promise rejected, as counted by `stats()`:
 * - `error`: its batch threw, or returned an `Error` for it (after any retries);
 * - `missing`: the batch's `Map` had no entry for its key (`onMissingResult: "reject"`);
 * - `abort`, `timeout`: its `signal` aborted, its `timeout` passed;
 * - `queueFull`: rejected or dropped by `maxQueueSize`;
 * - `stopped`: submitted after `stop()`, or rejected by a force stop;
 * - `tooLarge`: heavier than `maxBatchWeight`;
 * - `invalid`: bad `process()` options, or `weigh`, `batchKey` or `keyOf` threw or returned
 *   something unusable.
 */
export type RejectReason =
  | "error"
  | "missing"
  | "abort"
  | "timeout"
  | "queueFull"
  | "stopped"
  | "tooLarge"
  | "invalid";

/** Why callers left before their batch ran (the `drop` event). */
export type DropReason = "abort" | "timeout" | "queueFull" | "stopped" | "tooLarge";

/** A batch function is about to be called. */
export interface BatchStartEvent {
  /** The batcher's `name`. */
  readonly batcher: string;
  /** Numbers the batches of one batcher from 1; a retry or a split half gets a new one. */
  readonly batchId: number;
  /** With `retry` or `split`: the batch it was made from. */
  readonly parentId: number | undefined;
  /** The batch's key, with `batchKey`. */
  readonly key: string | number | undefined;
  /** Items handed to the batch function (with `dedupe`, each distinct key once). */
  readonly size: number;
  /** Callers waiting on the batch: more than `size` when `dedupe` merged some. */
  readonly callers: number;
  /** Total weight of the items, with `weigh`; otherwise 0. */
  readonly weight: number;
  readonly reason: BatchStartReason;
  /** How long the batch's oldest item waited in the queue before the batch was cut, in ms. */
  readonly queueWait: number;
  /** Attempt number of the try this batch is (1 for a first try, 2 for a first retry, ...). */
  readonly attempt: number;
  /**
   * With context capture installed (`instrument()` from `async-batcher/otel` with tracing): what
   * it captured for each caller of the batch, for span links. `undefined` otherwise.
   */
  readonly contexts: readonly unknown[] | undefined;
}

/** A batch's callers are settled (or handed on to a retry or a split). */
export interface BatchEndEvent {
  readonly batcher: string;
  readonly batchId: number;
  readonly key: string | number | undefined;
  readonly size: number;
  /** From the call of the batch function to the settling of its callers, in ms. */
  readonly duration: number;
  /** Callers resolved with a result. */
  readonly resolved: number;
  /** Callers rejected (with an `Error` result, the batch's error, or a missing result). */
  readonly rejected: number;
  /** Callers handed on to a retry or a split batch instead of settling. */
  readonly retried: number;
  /** What the batch function threw or rejected with, or the `BatcherStoppedError` of a force stop. */
  readonly error: unknown;
  /**
   * `true` when the batch function threw (or returned something unusable), or when a force stop
   * ended the batch while it ran (its callers rejected with the stop's error).
   */
  readonly failed: boolean;
}

/** Items are scheduled to be tried again. */
export interface RetryEvent {
  readonly batcher: string;
  /** The batch that failed. */
  readonly batchId: number;
  readonly key: string | number | undefined;
  /**
   * `"batch"`: the batch threw and its items are retried together; `"item"`: the batch returned
   * an `Error` for these items, which rejoin the queue ahead of newer items.
   */
  readonly scope: "batch" | "item";
  /** Items retried. */
  readonly size: number;
  /** Attempt number of the coming try (2 for the first retry). */
  readonly attempt: number;
  /** Backoff before it, in ms. */
  readonly delay: number;
  readonly error: unknown;
}

/** Split-on-error: a failed batch is tried again in two halves. */
export interface SplitEvent {
  readonly batcher: string;
  readonly batchId: number;
  readonly key: string | number | undefined;
  /** Items in the failed batch. */
  readonly size: number;
  readonly error: unknown;
}

/** Callers left before their batch ran (or while it ran, for `abort`, `timeout`, `stopped`). */
export interface DropEvent {
  readonly batcher: string;
  readonly reason: DropReason;
  /** How many callers left together (one abort can take many items). */
  readonly count: number;
  /** What they were rejected with. */
  readonly error: unknown;
}

/** Nothing is queued, waiting, in flight or waiting for a retry. */
export interface IdleEvent {
  readonly batcher: string;
}

/** The events of a batcher, by name: `batcher.on(name, listener)`. */
export interface BatcherEvents {
  batchStart: BatchStartEvent;
  batchEnd: BatchEndEvent;
  retry: RetryEvent;
  split: SplitEvent;
  drop: DropEvent;
  idle: IdleEvent;
}

export type BatcherEventName = keyof BatcherEvents;

/** Percentiles of one distribution, from a fixed-memory histogram (about 4% relative error). */
export interface HistogramSnapshot {
  /** Values recorded. */
  readonly count: number;
  readonly sum: number;
  /** Exact. `0` when nothing was recorded, as every other field. */
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** What `stats()` returns: counters since the batcher was made, gauges now, histograms. */
export interface BatcherStats {
  readonly name: string;
  /** `process()` calls. */
  readonly submitted: number;
  /** Callers resolved with a result. */
  readonly resolved: number;
  /** Callers rejected, by reason; `total` is their sum. */
  readonly rejected: Readonly<Record<RejectReason | "total", number>>;
  /** Batches started, by reason (a retry or a split half counts as a batch); `total` is their sum. */
  readonly batches: Readonly<Record<BatchStartReason | "total", number>>;
  /** Items scheduled for another try (a batch of 10 retried counts 10). */
  readonly retries: number;
  /** Failed batches split in two. */
  readonly splits: number;
  /** Items queued, not yet in a batch. */
  readonly queued: number;
  /** Callers waiting for room (`onQueueFull: "wait"`). */
  readonly waiting: number;
  /** Items in batches cut and not settled, including those waiting for a retry. */
  readonly inFlight: number;
  /** Batches whose function is running (or about to be called). */
  readonly runningBatches: number;
  /** Items handed to each batch function. */
  readonly batchSize: HistogramSnapshot;
  /** How long each batch's oldest item waited in the queue, in ms. */
  readonly queueWait: HistogramSnapshot;
  /** From the call of each batch function to the settling of its callers, in ms. */
  readonly batchDuration: HistogramSnapshot;
}
