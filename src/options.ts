import type { Clock } from "./internal/clock.js";
import { systemClock } from "./internal/clock.js";
import type { Executor } from "./types.js";

export type { Clock };

/** Why a batch was cut from the queue. */
export type CutReason =
  /** It reached `maxBatchSize`. */
  | "size"
  /** Its oldest item waited `maxQueueTime`. */
  | "time"
  /** `flush()` asked for everything queued. */
  | "flush"
  /** It reached `maxBatchWeight`: the next item would not fit. */
  | "weight"
  /** A graceful `stop()` is draining the queue. */
  | "stop"
  /** Items retried alone (their result was an `Error`) rejoined the queue after their backoff. */
  | "retry";

/** What a caller gets when the batch's `Map` has no entry for its item's key. */
export type MissingResultPolicy =
  /** Reject with `MissingResultError`, which names the key. */
  | "reject"
  /** Resolve with `undefined` (a lookup that found nothing). */
  | "undefined";

/**
 * Retrying failed items: a batch that throws is tried again (its items still wanted, together),
 * and an `Error` returned for one item is tried again for that item alone.
 */
export interface RetryOptions {
  /** Most tries of one item in all, the first included: a positive integer (1 retries nothing). */
  attempts: number;
  /**
   * Backoff in ms before the try after failed try number `attempt` (1 after the first failure).
   * A number is the first backoff, doubled after each failure (exponential backoff); a function
   * gives it outright.
   * @default 100
   */
  delay?: number | ((attempt: number, error: unknown) => number);
  /**
   * Most backoff in ms, whatever `delay` says.
   * @default Infinity
   */
  maxDelay?: number;
  /**
   * "Full jitter": each backoff is drawn uniformly from 0 to the computed one, so callers that
   * failed together do not retry together.
   * @default false
   */
  jitter?: boolean;
  /**
   * Whether an error is worth another try (a dropped connection is, a constraint violation is
   * not). Not retried: the items reject with it, or split with `splitOnError`. A `retryIf` that
   * throws counts as `false`.
   * @default every error is retried
   */
  retryIf?: (error: unknown) => boolean;
}

/** One step of the batcher's flow, as given to a `logger` and printed by `NODE_DEBUG=async-batcher`. */
export type BatcherLogEvent =
  | {
      type: "batchCut";
      /** The batcher's `name`. */
      batcher: string;
      batchId: number;
      size: number;
      /** The batch's key, with `batchKey`. */
      key?: string | number;
      /** The batch's total weight, with `weigh`. */
      weight?: number;
      reason: CutReason;
      /** How long the batch's oldest item waited in the queue, in ms. */
      waitMs: number;
    }
  | {
      type: "batchDone";
      batcher: string;
      batchId: number;
      size: number;
      /** From the call of the batch function to the settling of its callers, in ms. */
      durationMs: number;
      /** `ok`: results were delivered (some may be per-item errors); `error`: the batch failed as a whole. */
      outcome: "ok" | "error";
      resolved: number;
      rejected: number;
      /** The batch's error when `outcome` is `error`. */
      error?: unknown;
    }
  | {
      type: "retry";
      batcher: string;
      /** The batch that failed. */
      batchId: number;
      /** `batch`: the batch threw; `item`: it returned an `Error` for these items. */
      scope: "batch" | "item";
      size: number;
      /** Attempt number of the coming try. */
      attempt: number;
      delayMs: number;
    }
  | {
      /** An event listener threw; the batcher went on. */
      type: "listenerError";
      batcher: string;
      event: string;
      error: unknown;
    }
  | {
      type: "stop";
      batcher: string;
      force: boolean;
      /** Items still waiting when the stop began (or was forced). */
      queued: number;
      /** Items in running batches when the stop began (or was forced). */
      inFlight: number;
    };

/** Receives every log event. It must not throw; what it throws is ignored. */
export type BatcherLogger = (event: BatcherLogEvent) => void;

/** What `process()` does when `maxQueueSize` items are waiting. */
export type QueueFullPolicy =
  /** Reject the new item with `QueueFullError`. */
  | "reject"
  /** Make the new item wait, first come first served, until there is room. */
  | "wait"
  /** Admit the new item and reject the oldest waiting one with `QueueFullError`. */
  | "dropOldest";

/** A quota on dispatches: at most `batches` batches and/or `items` items per rolling `interval`. */
export interface RateLimit {
  /** Most batches started in any window of `interval` ms: a positive integer. */
  batches?: number;
  /**
   * Most items in the batches started in any window of `interval` ms: a positive integer. A
   * batch that would go over it is cut smaller; none is cut while the quota is used up.
   */
  items?: number;
  /** Length of the rolling window, in ms: a positive number. */
  interval: number;
}

/** The options `setOptions()` can change on a running batcher. */
export interface TunableOptions {
  maxBatchSize?: number;
  maxQueueTime?: number;
  concurrency?: number;
  maxQueueSize?: number;
  maxBatchWeight?: number;
  /** `undefined` removes the rate limit. */
  rateLimit?: RateLimit | undefined;
}

/**
 * Options of a batcher. Every field is optional; times are in milliseconds.
 *
 * @typeParam T - the item type, for `executor`
 * @typeParam R - the result type, for `executor`. The defaults make a plain `BatcherOptions`
 *   fit a batcher of any types.
 */
export interface BatcherOptions<T = unknown, R = never> {
  /**
   * Most items in one batch: a positive integer or `Infinity`.
   * A batch is cut as soon as this many items are waiting and a slot is free.
   * @default Infinity
   */
  maxBatchSize?: number;
  /**
   * Most milliseconds the oldest waiting item waits before its (possibly partial) batch is cut,
   * when a slot is free. Counted from that item's arrival, not from when a slot became free.
   * `0` cuts at the end of the current tick, so everything submitted together forms one batch;
   * `Infinity` cuts only by size, `flush()` and `stop()`.
   * @default 10
   */
  maxQueueTime?: number;
  /**
   * Most batches processed at once: a positive integer or `Infinity`.
   * @default 1
   */
  concurrency?: number;
  /**
   * Most items waiting (queued, not yet in a batch): a positive integer or `Infinity`.
   * When it is reached, `process()` rejects with `QueueFullError`.
   * @default Infinity
   */
  maxQueueSize?: number;
  /**
   * What `process()` does when `maxQueueSize` items are waiting: `"reject"` it with
   * `QueueFullError`, make it `"wait"` for room (first come first served; its `signal` and
   * `timeout` still apply), or admit it and reject the oldest waiting item (`"dropOldest"`).
   * @default "reject"
   */
  onQueueFull?: QueueFullPolicy;
  /**
   * Default `timeout` of every item, in ms from `process()`: when it passes before the item has
   * settled, the caller rejects with `ItemTimeoutError` and the item is dropped (see the
   * `timeout` of `process()`). One timer serves every item, whatever their number.
   * @default Infinity (no timeout)
   */
  itemTimeout?: number;
  /**
   * The weight of an item (bytes, tokens, rows): a finite, non-negative number. Called once per
   * item, in `process()`. With `maxBatchWeight`, bounds the total weight of a batch.
   * @default undefined (weights are not counted)
   */
  weigh?(item: T): number;
  /**
   * Most total weight in one batch (needs `weigh`): a batch is cut before the item that would push
   * it over. An item heavier than this on its own is rejected with `ItemTooLargeError`.
   * @default Infinity
   */
  maxBatchWeight?: number;
  /**
   * Items with different keys never share a batch: each key forms its own batches, with its own
   * `maxQueueTime` clock, and `context.key` tells the batch function which key it serves. All keys
   * share `concurrency` and `maxQueueSize`; when a slot frees, the key whose oldest item has
   * waited longest goes first. Called once per item, in `process()`.
   * @default undefined (one key for every item)
   */
  batchKey?(item: T): string | number;
  /**
   * At most `batches` batches and/or `items` items dispatched per rolling `interval` ms. Items
   * wait in the queue meanwhile (`maxQueueSize` and `onQueueFull` apply).
   * @default undefined (no limit)
   */
  rateLimit?: RateLimit;
  /**
   * The key of an item's result. With it, the batch function may return a `Map` from key to
   * result (or `Error`) instead of an array in the batch's order: databases return rows in any
   * order, and some keys have no row (see `onMissingResult`). Called once per item, in
   * `process()`; keys compare as `Map` keys do (`SameValueZero`).
   * @default undefined (results are matched by position)
   */
  keyOf?(item: T): unknown;
  /**
   * With `keyOf` and a `Map` result: what a caller whose key has no entry gets.
   * @default "reject" (with `MissingResultError`)
   */
  onMissingResult?: MissingResultPolicy;
  /**
   * Needs `keyOf`. Items with the same key in one batch reach the batch function once (the first
   * one in the batch's order), count once toward `maxBatchSize` and `maxBatchWeight` (with the
   * heaviest weight among them), and every caller gets that result. An abort or timeout of one
   * caller does not cancel the item for the others. Nothing is cached across batches.
   * @default false
   */
  dedupe?: boolean;
  /**
   * Retries failed items with backoff (see `RetryOptions`). Retries wait for a concurrency slot
   * and the rate limit like any batch, and callers that abort or time out meanwhile leave.
   * @default undefined (a failure rejects at once)
   */
  retry?: RetryOptions;
  /**
   * When a batch throws (and is not retried): try each half on its own, recursively, so that only
   * the items that fail alone reject, each with its own error. A batch of n with k bad items costs
   * at most about 2k·log2(n) extra calls.
   * @default false
   */
  splitOnError?: boolean;
  /**
   * Names the batcher in log lines, events, `stats()` and metrics.
   * @default the class name (`AsyncBatcher` for `createBatcher`)
   */
  name?: string;
  /**
   * Receives the flow: each batch cut and done, and stops. `NODE_DEBUG=async-batcher` prints the
   * same events on stderr.
   * @default undefined (nothing is logged)
   */
  logger?: BatcherLogger;
  /**
   * Where time comes from. Leave it alone except in tests that drive time by hand.
   * @default the host's `performance.now`, `setTimeout` and `clearTimeout`
   */
  clock?: Clock;
  /**
   * Runs every batch instead of `processBatch`: for synchronous or CPU-bound batch functions,
   * `WorkerPoolExecutor` from `async-batcher/worker` runs them in worker threads.
   * @default undefined (batches run inline, on the event loop)
   */
  executor?: Executor<T, R>;
  /**
   * Whether `stop()` closes the `executor` (a force stop closes it with `{ force: true }`), and
   * resolves only once it is closed. An executor you pass in is yours: it stays open unless you
   * set this. Batchers that create their executor (`createWorkerBatcher`) set it.
   * @default false
   */
  closeExecutor?: boolean;
}

/** Options with every default applied and every value checked. */
export interface ResolvedOptions {
  readonly maxBatchSize: number;
  readonly maxQueueTime: number;
  readonly concurrency: number;
  readonly maxQueueSize: number;
  readonly onQueueFull: QueueFullPolicy;
  readonly itemTimeout: number;
  readonly weigh: ((item: unknown) => number) | undefined;
  readonly maxBatchWeight: number;
  readonly batchKey: ((item: unknown) => string | number) | undefined;
  readonly rateLimit: ResolvedRateLimit | undefined;
  readonly keyOf: ((item: unknown) => unknown) | undefined;
  readonly onMissingResult: MissingResultPolicy;
  readonly dedupe: boolean;
  readonly retry: ResolvedRetry | undefined;
  readonly splitOnError: boolean;
  readonly name: string | undefined;
  readonly logger: BatcherLogger | undefined;
  readonly clock: Clock;
  readonly executor: Executor<unknown, unknown> | undefined;
  readonly closeExecutor: boolean;
}

/** A rate limit with both quotas set (`Infinity` where none was given). */
export interface ResolvedRateLimit {
  readonly batches: number;
  readonly items: number;
  readonly interval: number;
}

/** A retry policy with every default applied. */
export interface ResolvedRetry {
  readonly attempts: number;
  /** Backoff in ms after failed try number `attempt`, before `maxDelay` and jitter. */
  readonly delay: (attempt: number, error: unknown) => number;
  readonly maxDelay: number;
  readonly jitter: boolean;
  readonly retryIf: ((error: unknown) => boolean) | undefined;
}

/** The default of every option. */
export const DEFAULTS = Object.freeze({
  maxBatchSize: Number.POSITIVE_INFINITY,
  maxQueueTime: 10,
  concurrency: 1,
  maxQueueSize: Number.POSITIVE_INFINITY,
  onQueueFull: "reject" as QueueFullPolicy,
  itemTimeout: Number.POSITIVE_INFINITY,
  maxBatchWeight: Number.POSITIVE_INFINITY,
  onMissingResult: "reject" as MissingResultPolicy,
  retryDelay: 100,
});

/** Shows a received value in an option error: `"5" (string)`, `-1`, `null`, `an object`. */
export function describe(value: unknown): string {
  if (typeof value === "string") return `${JSON.stringify(value)} (string)`;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

/** A positive integer or `Infinity`. */
function countOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a positive integer or Infinity, got ${describe(value)}`);
  }
  if (!(value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value > 0))) {
    throw new RangeError(`${name} must be a positive integer or Infinity, got ${describe(value)}`);
  }
  return value;
}

/** A number of milliseconds: zero, positive, or `Infinity` when `allowInfinity`. */
export function durationOption(
  name: string,
  value: unknown,
  fallback: number,
  allowInfinity = true,
): number {
  const expected = allowInfinity
    ? "a non-negative number of milliseconds or Infinity"
    : "a non-negative finite number of milliseconds";
  if (value === undefined) return fallback;
  if (typeof value !== "number")
    throw new TypeError(`${name} must be ${expected}, got ${describe(value)}`);
  if (Number.isNaN(value) || value < 0 || (!allowInfinity && !Number.isFinite(value))) {
    throw new RangeError(`${name} must be ${expected}, got ${describe(value)}`);
  }
  return value;
}

export function functionOption<F>(name: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function")
    throw new TypeError(`${name} must be a function, got ${describe(value)}`);
  return value as F;
}

/** A positive number (`Infinity` when `allowInfinity`). */
function positiveOption(name: string, value: unknown, fallback: number, allowInfinity: boolean) {
  const expected = allowInfinity ? "a positive number or Infinity" : "a positive finite number";
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be ${expected}, got ${describe(value)}`);
  }
  if (!(value > 0) || (!allowInfinity && !Number.isFinite(value))) {
    throw new RangeError(`${name} must be ${expected}, got ${describe(value)}`);
  }
  return value;
}

const QUEUE_FULL_POLICIES: readonly QueueFullPolicy[] = ["reject", "wait", "dropOldest"];

function queueFullOption(value: unknown): QueueFullPolicy {
  if (value === undefined) return DEFAULTS.onQueueFull;
  if (!QUEUE_FULL_POLICIES.includes(value as QueueFullPolicy)) {
    throw new TypeError(
      `onQueueFull must be "reject", "wait" or "dropOldest", got ${describe(value)}`,
    );
  }
  return value as QueueFullPolicy;
}

function rateLimitOption(value: unknown): ResolvedRateLimit | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(
      `rateLimit must be an object like { items: 100, interval: 1000 }, got ${describe(value)}`,
    );
  }
  const limit = value as RateLimit;
  const interval = positiveOption("rateLimit.interval", limit.interval, Number.NaN, false);
  if (Number.isNaN(interval)) {
    throw new TypeError("rateLimit.interval must be a positive finite number, got undefined");
  }
  const batches = countOption("rateLimit.batches", limit.batches, Number.POSITIVE_INFINITY);
  const items = countOption("rateLimit.items", limit.items, Number.POSITIVE_INFINITY);
  if (limit.batches === undefined && limit.items === undefined) {
    throw new TypeError("rateLimit must set batches, items or both");
  }
  return { batches, items, interval };
}

function missingResultOption(value: unknown): MissingResultPolicy {
  if (value === undefined) return DEFAULTS.onMissingResult;
  if (value !== "reject" && value !== "undefined") {
    throw new TypeError(`onMissingResult must be "reject" or "undefined", got ${describe(value)}`);
  }
  return value;
}

function retryOption(value: unknown): ResolvedRetry | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(
      `retry must be an object like { attempts: 3, delay: 100 }, got ${describe(value)}`,
    );
  }
  const retry = value as RetryOptions;
  if (retry.attempts === undefined) {
    throw new TypeError("retry.attempts must be a positive integer, got undefined");
  }
  const attempts = countOption("retry.attempts", retry.attempts, 1);
  if (attempts === Number.POSITIVE_INFINITY) {
    throw new RangeError("retry.attempts must be a positive integer, got Infinity");
  }
  const raw = retry.delay;
  let delay: (attempt: number, error: unknown) => number;
  if (typeof raw === "function") {
    delay = raw;
  } else {
    const base = durationOption("retry.delay", raw, DEFAULTS.retryDelay, false);
    delay = (attempt) => base * 2 ** (attempt - 1);
  }
  return {
    attempts,
    delay,
    maxDelay: durationOption("retry.maxDelay", retry.maxDelay, Number.POSITIVE_INFINITY),
    jitter: booleanOption("retry.jitter", retry.jitter, false),
    retryIf: functionOption<(error: unknown) => boolean>("retry.retryIf", retry.retryIf),
  };
}

function clockOption(value: unknown): Clock {
  if (value === undefined) return systemClock;
  const clock = value as Partial<Clock> | null;
  if (
    clock === null ||
    typeof clock !== "object" ||
    typeof clock.now !== "function" ||
    typeof clock.setTimeout !== "function" ||
    typeof clock.clearTimeout !== "function"
  ) {
    throw new TypeError(
      `clock must be an object with now(), setTimeout() and clearTimeout(), got ${describe(value)}`,
    );
  }
  return clock as Clock;
}

function executorOption(value: unknown): Executor<unknown, unknown> | undefined {
  if (value === undefined) return undefined;
  const executor = value as Partial<Executor<unknown, unknown>> | null;
  if (
    executor === null ||
    typeof executor !== "object" ||
    typeof executor.run !== "function" ||
    typeof executor.close !== "function"
  ) {
    throw new TypeError(
      `executor must be an object with run() and close(), got ${describe(value)}`,
    );
  }
  return executor as Executor<unknown, unknown>;
}

/** `value` when it is a boolean, `fallback` when it is `undefined`; a `TypeError` naming `name` otherwise. */
export function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean")
    throw new TypeError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

/** Applies the defaults and checks every value, naming the option, what it accepts and what came. */
export function resolveOptions<T, R>(options: BatcherOptions<T, R> | undefined): ResolvedOptions {
  if (options === undefined || options === null) options = {};
  if (typeof options !== "object") {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const name = options.name;
  if (name !== undefined && typeof name !== "string") {
    throw new TypeError(`name must be a string, got ${describe(name)}`);
  }
  const weigh = functionOption<(item: unknown) => number>("weigh", options.weigh);
  const maxBatchWeight = positiveOption(
    "maxBatchWeight",
    options.maxBatchWeight,
    DEFAULTS.maxBatchWeight,
    true,
  );
  if (options.maxBatchWeight !== undefined && weigh === undefined) {
    throw new TypeError("maxBatchWeight needs weigh, the function that gives each item's weight");
  }
  const keyOf = functionOption<(item: unknown) => unknown>("keyOf", options.keyOf);
  const dedupe = booleanOption("dedupe", options.dedupe, false);
  if (dedupe && keyOf === undefined) {
    throw new TypeError("dedupe needs keyOf, the function that gives each item's key");
  }
  if (options.onMissingResult !== undefined && keyOf === undefined) {
    throw new TypeError("onMissingResult needs keyOf: results are matched by key only with it");
  }
  return {
    maxBatchSize: countOption("maxBatchSize", options.maxBatchSize, DEFAULTS.maxBatchSize),
    maxQueueTime: durationOption("maxQueueTime", options.maxQueueTime, DEFAULTS.maxQueueTime),
    concurrency: countOption("concurrency", options.concurrency, DEFAULTS.concurrency),
    maxQueueSize: countOption("maxQueueSize", options.maxQueueSize, DEFAULTS.maxQueueSize),
    onQueueFull: queueFullOption(options.onQueueFull),
    itemTimeout: durationOption("itemTimeout", options.itemTimeout, DEFAULTS.itemTimeout),
    weigh,
    maxBatchWeight,
    batchKey: functionOption<(item: unknown) => string | number>("batchKey", options.batchKey),
    rateLimit: rateLimitOption(options.rateLimit),
    keyOf,
    onMissingResult: missingResultOption(options.onMissingResult),
    dedupe,
    retry: retryOption(options.retry),
    splitOnError: booleanOption("splitOnError", options.splitOnError, false),
    name,
    logger: functionOption<BatcherLogger>("logger", options.logger),
    clock: clockOption(options.clock),
    executor: executorOption(options.executor),
    closeExecutor: booleanOption("closeExecutor", options.closeExecutor, false),
  };
}

/** The values `setOptions()` changes, checked; a key absent from the input is absent here. */
export interface ResolvedTunable {
  maxBatchSize?: number;
  maxQueueTime?: number;
  concurrency?: number;
  maxQueueSize?: number;
  maxBatchWeight?: number;
  /** Present (possibly `undefined`, which removes the limit) when the input named it. */
  rateLimit?: ResolvedRateLimit | undefined;
}

const TUNABLE: readonly (keyof TunableOptions)[] = [
  "maxBatchSize",
  "maxQueueTime",
  "concurrency",
  "maxQueueSize",
  "maxBatchWeight",
  "rateLimit",
];

/**
 * Checks the input of `setOptions()` as the constructor would, all of it before anything changes.
 * A key set to `undefined` goes back to its default.
 */
export function resolveTunable(options: unknown, weighs: boolean): ResolvedTunable {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`setOptions() takes an object, got ${describe(options)}`);
  }
  const input = options as TunableOptions;
  for (const key of Object.keys(input)) {
    if (!TUNABLE.includes(key as keyof TunableOptions)) {
      throw new TypeError(
        `setOptions() cannot change ${key}: it changes ${TUNABLE.join(", ")} only`,
      );
    }
  }
  const out: ResolvedTunable = {};
  if ("maxBatchSize" in input) {
    out.maxBatchSize = countOption("maxBatchSize", input.maxBatchSize, DEFAULTS.maxBatchSize);
  }
  if ("maxQueueTime" in input) {
    out.maxQueueTime = durationOption("maxQueueTime", input.maxQueueTime, DEFAULTS.maxQueueTime);
  }
  if ("concurrency" in input) {
    out.concurrency = countOption("concurrency", input.concurrency, DEFAULTS.concurrency);
  }
  if ("maxQueueSize" in input) {
    out.maxQueueSize = countOption("maxQueueSize", input.maxQueueSize, DEFAULTS.maxQueueSize);
  }
  if ("maxBatchWeight" in input) {
    if (!weighs && input.maxBatchWeight !== undefined) {
      throw new TypeError("maxBatchWeight needs weigh, which can only be set in the constructor");
    }
    out.maxBatchWeight = positiveOption(
      "maxBatchWeight",
      input.maxBatchWeight,
      DEFAULTS.maxBatchWeight,
      true,
    );
  }
  if ("rateLimit" in input) out.rateLimit = rateLimitOption(input.rateLimit);
  return out;
}
