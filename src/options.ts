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
  /** A graceful `stop()` is draining the queue. */
  | "stop";

/** One step of the batcher's flow, as given to a `logger` and printed by `NODE_DEBUG=async-batcher`. */
export type BatcherLogEvent =
  | {
      type: "batchCut";
      /** The batcher's `name`. */
      batcher: string;
      batchId: number;
      size: number;
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
   * Names the batcher in log lines and events.
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
  readonly name: string | undefined;
  readonly logger: BatcherLogger | undefined;
  readonly clock: Clock;
  readonly executor: Executor<unknown, unknown> | undefined;
  readonly closeExecutor: boolean;
}

/** The default of every option. */
export const DEFAULTS = Object.freeze({
  maxBatchSize: Number.POSITIVE_INFINITY,
  maxQueueTime: 10,
  concurrency: 1,
  maxQueueSize: Number.POSITIVE_INFINITY,
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

function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
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
  return {
    maxBatchSize: countOption("maxBatchSize", options.maxBatchSize, DEFAULTS.maxBatchSize),
    maxQueueTime: durationOption("maxQueueTime", options.maxQueueTime, DEFAULTS.maxQueueTime),
    concurrency: countOption("concurrency", options.concurrency, DEFAULTS.concurrency),
    maxQueueSize: countOption("maxQueueSize", options.maxQueueSize, DEFAULTS.maxQueueSize),
    name,
    logger: functionOption<BatcherLogger>("logger", options.logger),
    clock: clockOption(options.clock),
    executor: executorOption(options.executor),
    closeExecutor: booleanOption("closeExecutor", options.closeExecutor, false),
  };
}
