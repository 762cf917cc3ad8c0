/**
 * Every error the library itself creates is a `BatcherError` with a stable `code`.
 * Errors thrown or returned by the user's batch function reach callers unchanged.
 */

/** The stable codes of the errors this library throws. */
export type BatcherErrorCode =
  | "ERR_QUEUE_FULL"
  | "ERR_BATCHER_STOPPED"
  | "ERR_BATCH_RESULT"
  | "ERR_WORKER_CRASHED"
  | "ERR_INVALID_INPUT"
  | "ERR_ITEM_TIMEOUT"
  | "ERR_ITEM_TOO_LARGE"
  | "ERR_MISSING_RESULT";

/** Base class of every error created by the library. Match on `code`, not on the message. */
export class BatcherError extends Error {
  override name = "BatcherError";
  readonly code: BatcherErrorCode;

  constructor(code: BatcherErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The queue was full: `process()` was called while `maxQueueSize` items were waiting (with
 * `onQueueFull: "reject"`), or this item was the oldest waiting one and a newer item took its
 * place (with `onQueueFull: "dropOldest"`).
 */
export class QueueFullError extends BatcherError {
  override name = "QueueFullError" as const;
  declare readonly code: "ERR_QUEUE_FULL";
  /** The `maxQueueSize` that was reached. */
  readonly maxQueueSize: number;

  constructor(maxQueueSize: number, message?: string) {
    super("ERR_QUEUE_FULL", message ?? `queue is full: ${maxQueueSize} items are already waiting`);
    this.maxQueueSize = maxQueueSize;
  }
}

/**
 * The item's `timeout` (or the batcher's `itemTimeout`) passed before it settled, counted from
 * `process()`. The item is then treated as aborted: it leaves the queue, or its result is dropped
 * if its batch was already running.
 */
export class ItemTimeoutError extends BatcherError {
  override name = "ItemTimeoutError" as const;
  declare readonly code: "ERR_ITEM_TIMEOUT";
  /** The timeout that passed, in ms. */
  readonly timeout: number;

  constructor(timeout: number) {
    super("ERR_ITEM_TIMEOUT", `item timed out after ${timeout} ms`);
    this.timeout = timeout;
  }
}

/** The item weighs more than `maxBatchWeight` on its own, so no batch could ever hold it. */
export class ItemTooLargeError extends BatcherError {
  override name = "ItemTooLargeError" as const;
  declare readonly code: "ERR_ITEM_TOO_LARGE";
  /** What `weigh` returned for the item. */
  readonly weight: number;
  /** The `maxBatchWeight` it exceeds. */
  readonly maxBatchWeight: number;

  constructor(weight: number, maxBatchWeight: number) {
    super(
      "ERR_ITEM_TOO_LARGE",
      `item weighs ${weight}, more than maxBatchWeight (${maxBatchWeight}) on its own`,
    );
    this.weight = weight;
    this.maxBatchWeight = maxBatchWeight;
  }
}

/**
 * The batcher is stopping or stopped: `process()` after `stop()`, or an item still queued or in
 * flight when a force stop (or a graceful stop's timeout) ended it.
 */
export class BatcherStoppedError extends BatcherError {
  override name = "BatcherStoppedError" as const;
  declare readonly code: "ERR_BATCHER_STOPPED";

  constructor(message = "batcher is stopped") {
    super("ERR_BATCHER_STOPPED", message);
  }
}

/** The batch function returned something that cannot be matched to the batch's items. */
export class BatchResultError extends BatcherError {
  override name = "BatchResultError" as const;
  declare readonly code: "ERR_BATCH_RESULT";
  /** Number of items in the batch, so the number of results expected. */
  readonly expected: number;
  /** What came back: the array's length, or a description of the value. */
  readonly received: number | string;

  constructor(expected: number, received: number | string) {
    super(
      "ERR_BATCH_RESULT",
      typeof received === "number"
        ? `batch function returned ${received} results for a batch of ${expected} items`
        : `batch function must return an array of ${expected} results or undefined, got ${received}`,
    );
    this.expected = expected;
    this.received = received;
  }
}

/**
 * With `keyOf`, the batch function returned a `Map` without an entry for this item's key (and
 * `onMissingResult` is `"reject"`): the database found no row for it, say.
 */
export class MissingResultError extends BatcherError {
  override name = "MissingResultError" as const;
  declare readonly code: "ERR_MISSING_RESULT";
  /** The item's key, as `keyOf` gave it. */
  readonly key: unknown;

  constructor(key: unknown) {
    super("ERR_MISSING_RESULT", `batch function returned no result for key ${showKey(key)}`);
    this.key = key;
  }
}

function showKey(key: unknown): string {
  if (typeof key === "string") return JSON.stringify(key);
  if (typeof key === "bigint") return `${key}n`;
  if (typeof key === "object" && key !== null) return "(an object)";
  return String(key);
}

/**
 * The worker thread running a batch died (it exited, threw outside the batch function, or ran out
 * of memory under `resourceLimits`). Only that batch's items reject with it; the pool replaces the
 * worker. `cause` is what the pool reported.
 */
export class WorkerCrashedError extends BatcherError {
  override name = "WorkerCrashedError" as const;
  declare readonly code: "ERR_WORKER_CRASHED";

  constructor(message: string, options?: ErrorOptions) {
    super("ERR_WORKER_CRASHED", message, options);
  }
}

/** What was wrong with an item that `InvalidInputError` rejected. */
export type InvalidInputReason =
  /** Not a value of an accepted type (a `Float32Array` or an array of numbers, say). */
  | "type"
  /** An accepted type, but not the expected number of values. */
  | "length"
  /** A value out of the accepted domain: `NaN` or an infinity where finite numbers are required. */
  | "value"
  /** `weigh` returned something other than a finite, non-negative number for the item. */
  | "weight"
  /** `batchKey` returned something other than a string or a finite number for the item. */
  | "key"
  /** A database row with a field that is not one of the batcher's columns (`async-batcher/pg`, `/mysql`). */
  | "column";

/**
 * An item was refused before its batch ran: checked on `process()`, it rejects that caller alone
 * and never reaches the batch (the other callers' items are batched as usual).
 */
export class InvalidInputError extends BatcherError {
  override name = "InvalidInputError" as const;
  declare readonly code: "ERR_INVALID_INPUT";
  readonly reason: InvalidInputReason;
  /** For `reason: "value"`: the position of the first bad value. */
  readonly index: number | undefined;

  constructor(reason: InvalidInputReason, message: string, index?: number) {
    super("ERR_INVALID_INPUT", message);
    this.reason = reason;
    this.index = index;
  }
}
