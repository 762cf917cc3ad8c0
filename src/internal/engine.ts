import {
  BatcherStoppedError,
  BatchResultError,
  InvalidInputError,
  ItemTimeoutError,
  ItemTooLargeError,
  MissingResultError,
  QueueFullError,
} from "../errors.js";
import type {
  BatcherEventName,
  BatcherEvents,
  BatcherStats,
  BatchStartReason,
  DropReason,
  RejectReason,
} from "../events.js";
import {
  type BatcherLogger,
  type CutReason,
  describe,
  type MissingResultPolicy,
  type QueueFullPolicy,
  type ResolvedOptions,
  type ResolvedRetry,
  type ResolvedTunable,
} from "../options.js";
import type { BatchFunction, BatchResult, Executor, ProcessOptions } from "../types.js";
import { Batch, CANCELLED, type FlushWaiter, Phase, RunningList } from "./batch.js";
import { afterTick } from "./clock.js";
import {
  Cohort,
  type CohortRun,
  CohortState,
  SignalRegistry,
  TimeoutSchedule,
  type Waiter,
} from "./cohort.js";
import { resolveLogger } from "./debug.js";
import { Emitter } from "./emitter.js";
import { IndexedHeap } from "./heap.js";
import { Histogram } from "./histogram.js";
import { Lane } from "./lane.js";
import type { Entry, ItemQueue, Settle } from "./queue.js";
import { RateWindow } from "./rate.js";
import { DeadlineTimer, EPSILON_MS, TickClock } from "./timer.js";

const EVENT_NAMES: readonly BatcherEventName[] = [
  "batchStart",
  "batchEnd",
  "retry",
  "split",
  "drop",
  "idle",
];

const REJECT_REASONS: readonly RejectReason[] = [
  "error",
  "missing",
  "abort",
  "timeout",
  "queueFull",
  "stopped",
  "tooLarge",
  "invalid",
];

const START_REASONS: readonly BatchStartReason[] = [
  "size",
  "weight",
  "time",
  "flush",
  "stop",
  "retry",
  "split",
];

/** Counters by name, all starting at 0. */
function counters<K extends string>(names: readonly K[]): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const name of names) out[name] = 0;
  return out;
}

/** Sums counters into a frozen snapshot with a `total`. */
function withTotal<K extends string>(counts: Record<K, number>): Record<K | "total", number> {
  let total = 0;
  for (const key in counts) total += counts[key];
  return Object.freeze({ ...counts, total });
}

function isError(value: unknown): value is Error {
  return typeof value === "object" && value !== null && value instanceof Error;
}

enum State {
  /** No item submitted yet. */
  New = 0,
  Running = 1,
  /** A graceful stop is draining the queue. */
  Stopping = 2,
  Stopped = 3,
}

// `new Promise(capture)` hands the resolve function over without a closure per item: the
// executor runs synchronously, so the module-level slot is read right after it is written.
let captured: Settle = () => {};
function capture(resolve: Settle): void {
  captured = resolve;
}

/**
 * Rejects a caller through its resolve function: resolving with a rejected promise settles the
 * caller with that reason. The queue keeps one function per item instead of two, which is most of
 * its memory per waiting item; the cost is two extra microtask hops on the error path only.
 */
function rejectCaller(settle: Settle, error: unknown): void {
  settle(Promise.reject(error));
}

function describeResult(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === "string" && name !== "" && name !== "Object" ? `a ${name}` : "an object";
  }
  return typeof value;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function isSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as AbortSignal).aborted === "boolean" &&
    typeof (value as AbortSignal).addEventListener === "function" &&
    typeof (value as AbortSignal).removeEventListener === "function"
  );
}

/** A bad per-call option: `TypeError` for a wrong type, `RangeError` for a number out of range. */
function optionError(
  kind: "type" | "range",
  name: string,
  expected: string,
  value: unknown,
): Error {
  const message = `${name} must be ${expected}, got ${describe(value)}`;
  return kind === "range" ? new RangeError(message) : new TypeError(message);
}

const NO_ENTRIES: Entry[] = [];

/** The longest a host timer waits: a longer delay fires at once (Node.js makes it 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function badKey(key: unknown): InvalidInputError {
  return new InvalidInputError(
    "key",
    `batchKey must return a string or a finite number, got ${describe(key)}`,
  );
}

/**
 * The batcher's engine: admission, queues, scheduler and dispatcher in one small state machine.
 *
 * - Waiting items live in lanes, one per key (a single lane without `batchKey`); a lane holds one
 *   FIFO per priority. The non-empty lanes sit in a heap by their oldest item, and, with keys,
 *   the lanes that hold a full batch (by count or weight) in `#full` (the only lane of a batcher
 *   without keys is the oldest anyway).
 * - A batch is *cut* (taken off a lane and counted in flight) when its lane is due and a
 *   concurrency slot (and the rate limit) allows; it is *started* (the batch function is called)
 *   at once, or on the next microtask when the cut happened inside a public method, so
 *   `process()` never runs user code synchronously.
 * - One timer at most for batching (`DeadlineTimer`), armed for the oldest lane's deadline or for
 *   when the rate limit lets the next batch go. It may fire early; the pump then finds nothing due
 *   and re-arms for what is left. Item timeouts share one more timer (`TimeoutSchedule`).
 * - Time is read through the clock at most once per tick (`TickClock`), not once per item.
 * - Every item is its caller's bare resolve function in the queue. Items with a signal or a
 *   timeout also belong to a `Cohort` (one per run of items sharing both, not one per item),
 *   which listens to the signal and sits in the timeout schedule.
 */
export class Engine<T, R> {
  readonly #run: BatchFunction<T, R>;
  readonly #time: TickClock;
  /** At most one timer, for the oldest lane's deadline or the rate limit's next opening. */
  readonly #timer: DeadlineTimer;
  readonly #logger: BatcherLogger | undefined;
  readonly #name: string;
  #maxBatchSize: number;
  #maxQueueTime: number;
  #concurrency: number;
  #maxQueueSize: number;
  #maxBatchWeight: number;
  readonly #onQueueFull: QueueFullPolicy;
  readonly #itemTimeout: number;
  readonly #weigh: ((item: unknown) => number) | undefined;
  readonly #batchKey: ((item: unknown) => string | number) | undefined;
  #rate: RateWindow | undefined;
  readonly #keyOf: ((item: unknown) => unknown) | undefined;
  readonly #dedupe: boolean;
  readonly #onMissing: MissingResultPolicy;
  readonly #retry: ResolvedRetry | undefined;
  readonly #splitOnError: boolean;
  /** Batches keep each item's weight (with `weigh`), to weigh what is left of them later. */
  readonly #withWeights: boolean;
  /** No option that needs per-item work on admission: `process(item)` takes the short path. */
  #plain = false;
  /** `batchKey` is the only such option: `process(item)` takes the keyed short path. */
  #keyedOnly = false;

  /** Made by the first `on()`: with no listener, events cost one field check. */
  #events: Emitter<BatcherEvents> | undefined = undefined;
  /** Captures each caller's context (tracing), kept until its batch starts. */
  #capture: (() => unknown) | undefined = undefined;
  #contexts: WeakMap<Entry, unknown> | undefined = undefined;
  /** Wraps each batch function call (tracing), when installed. */
  #scope: ((batchId: number, run: () => unknown) => unknown) | undefined = undefined;

  // Statistics: counters bumped where things happen, histograms fed once per batch.
  #submitted = 0;
  #resolved = 0;
  readonly #rejected = counters(REJECT_REASONS);
  readonly #started = counters(START_REASONS);
  #retries = 0;
  #splits = 0;
  readonly #sizes = new Histogram(true);
  readonly #waits = new Histogram();
  readonly #durations = new Histogram();
  /** `#submitted` when the batcher was last idle: more since means a busy period (`idle` event). */
  #idleAt = 0;

  /** The only lane without `batchKey`. */
  readonly #lane0: Lane<T> | undefined;
  /** The non-empty lanes by key, with `batchKey`. */
  readonly #keys: Map<string | number, Lane<T>> | undefined;
  /** The lane an item went to last, with `batchKey`: items in a row often share their key. */
  #lastLane: Lane<T> | undefined = undefined;
  /** The non-empty lanes, oldest item first. */
  readonly #lanes = new IndexedHeap<Lane<T>>((a, b) => a.oldestSeq < b.oldestSeq);
  /** The lanes holding a full batch, by count or by weight. */
  readonly #full = new Set<Lane<T>>();
  /** Items admitted and not yet in a batch. */
  #queued = 0;
  /** Sequence number of the next admitted item: the arrival order over all lanes. */
  #seq = 0;

  /** `onQueueFull: "wait"`: the items waiting for room, FIFO; settled ones are skipped. */
  #waiters: (Cohort | undefined)[] = [];
  #waitersHead = 0;
  #waiting = 0;

  #signals: SignalRegistry | undefined = undefined;
  #timeouts: TimeoutSchedule | undefined = undefined;

  /**
   * Batches not yet settled: cut (started, or waiting in `#ready`), and retries (in their
   * backoff, or in `#retryReady`).
   */
  readonly #running = new RunningList<T>();
  /** Batches holding a concurrency slot. */
  #busy = 0;
  /** Retries past their backoff and split halves, waiting for a slot, oldest first. */
  #retryReady: Batch<T>[] = [];
  #inFlight = 0;
  #nextBatchId = 1;
  #state = State.New;

  /** Batches cut inside a public method, started together on the next microtask, in order. */
  #ready: Batch<T>[] = [];
  #readyScheduled = false;
  #pumping = false;

  /** With `maxQueueTime: 0`: items with a lower sequence number are due (their tick ended). */
  #tickDue = 0;
  #tickScheduled = false;

  /** Items with a lower sequence number were queued when `flush()` was last called. */
  #flushSeq = 0;
  #flushWaiters: FlushWaiter[] = [];
  #idleWaiters: (() => void)[] = [];

  #stopPromise: Promise<void> | undefined = undefined;
  #stopResolve: (() => void) | undefined = undefined;
  #stopReject: ((error: unknown) => void) | undefined = undefined;
  #stopTimer: unknown = undefined;
  /** The executor `stop()` closes (`closeExecutor`), if any. */
  readonly #ownedExecutor: Executor<unknown, unknown> | undefined;
  /**
   * How the owned executor is being closed; a forced close supersedes a graceful one. `closed`:
   * the close that decides has settled, so nothing closes it again.
   */
  #closing: "no" | "graceful" | "forced" | "closed" = "no";

  constructor(options: ResolvedOptions, run: BatchFunction<T, R>, defaultName: string) {
    const executor = options.executor;
    this.#run =
      executor === undefined
        ? run
        : (batch, context) => executor.run(batch, context) as Promise<BatchResult<R>>;
    this.#ownedExecutor = options.closeExecutor ? executor : undefined;
    this.#time = new TickClock(options.clock);
    this.#timer = new DeadlineTimer(this.#time, () => this.#pump(false));
    this.#logger = resolveLogger(options.logger);
    this.#name = options.name ?? defaultName;
    this.#maxBatchSize = options.maxBatchSize;
    this.#maxQueueTime = options.maxQueueTime;
    this.#concurrency = options.concurrency;
    this.#maxQueueSize = options.maxQueueSize;
    this.#maxBatchWeight = options.maxBatchWeight;
    this.#onQueueFull = options.onQueueFull;
    this.#itemTimeout = options.itemTimeout;
    this.#weigh = options.weigh;
    this.#batchKey = options.batchKey;
    this.#rate = options.rateLimit === undefined ? undefined : new RateWindow(options.rateLimit);
    this.#keyOf = options.keyOf;
    this.#dedupe = options.dedupe;
    this.#onMissing = options.onMissingResult;
    this.#retry = options.retry;
    this.#splitOnError = options.splitOnError;
    this.#withWeights = this.#weigh !== undefined;
    this.#choosePaths();
    if (this.#batchKey === undefined) {
      this.#lane0 = this.#newLane(undefined);
      this.#keys = undefined;
    } else {
      this.#lane0 = undefined;
      this.#keys = new Map();
    }
  }

  get name(): string {
    return this.#name;
  }

  get queueSize(): number {
    return this.#queued;
  }

  get waiting(): number {
    return this.#waiting;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get isRunning(): boolean {
    return this.#state === State.Running || this.#state === State.Stopping;
  }

  on<K extends BatcherEventName>(name: K, listener: (event: BatcherEvents[K]) => void): () => void {
    this.#events ??= new Emitter<BatcherEvents>(EVENT_NAMES, (error, event) => {
      if (this.#logger !== undefined) {
        this.#log({ type: "listenerError", batcher: this.#name, event, error });
      }
    });
    return this.#events.on(name, listener);
  }

  /** Installs (or removes) the scope every batch function call runs in. */
  batchScope(scope: ((batchId: number, run: () => unknown) => unknown) | undefined): void {
    this.#scope = scope;
  }

  /** Installs (or removes) the capture of each caller's context, given to `batchStart`. */
  captureContext(capture: (() => unknown) | undefined): void {
    this.#capture = capture;
    this.#contexts = capture === undefined ? undefined : new WeakMap();
    this.#choosePaths();
  }

  /** Which short path `process(item)` may take: none when any option needs work per item. */
  #choosePaths(): void {
    const perItem =
      this.#weigh !== undefined ||
      this.#keyOf !== undefined ||
      this.#capture !== undefined ||
      this.#itemTimeout !== Number.POSITIVE_INFINITY;
    this.#plain = !perItem && this.#batchKey === undefined;
    this.#keyedOnly = !perItem && this.#batchKey !== undefined;
  }

  stats(): BatcherStats {
    return Object.freeze({
      name: this.#name,
      submitted: this.#submitted,
      resolved: this.#resolved,
      rejected: withTotal(this.#rejected),
      batches: withTotal(this.#started),
      retries: this.#retries,
      splits: this.#splits,
      queued: this.#queued,
      waiting: this.#waiting,
      inFlight: this.#inFlight,
      runningBatches: this.#busy,
      batchSize: Object.freeze(this.#sizes.snapshot()),
      queueWait: Object.freeze(this.#waits.snapshot()),
      batchDuration: Object.freeze(this.#durations.snapshot()),
    });
  }

  /** A caller refused at admission: counted, reported, rejected. */
  #refuse(reason: RejectReason, error: unknown): Promise<never> {
    this.#rejected[reason]++;
    if (reason !== "invalid" && reason !== "error" && reason !== "missing") {
      this.#dropped(reason, 1, error);
    }
    return Promise.reject(error);
  }

  /** Callers left without their item being processed (or while it was). */
  #dropped(reason: DropReason, count: number, error: unknown): void {
    if (this.#events?.has("drop") === true) {
      this.#events.emit("drop", { batcher: this.#name, reason, count, error });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Admission. The hot path first.

  submit(item: T, options: ProcessOptions | undefined): Promise<R> {
    if (options !== undefined || !this.#plain) {
      return this.#keyedOnly && options === undefined
        ? this.#submitKeyed(item)
        : this.#submitWith(item, options);
    }
    if (this.#state >= State.Stopping || this.#queued >= this.#maxQueueSize) {
      return this.#submitWith(item, undefined);
    }
    this.#submitted++;
    this.#state = State.Running;
    const promise = new Promise<R>(capture as (resolve: (value: R) => void) => void);
    const lane = this.#lane0 as Lane<T>;
    lane.q0.push(item, captured, this.#time.now(), this.#seq++, 0, undefined);
    this.#queued++;
    const size = ++lane.size;
    if (size === 1) this.#laneFilled(lane);
    if (size >= this.#maxBatchSize) this.#laneFull(lane);
    return promise;
  }

  /** `process(item)` with `batchKey` and no other per-item work: the keyed hot path. */
  #submitKeyed(item: T): Promise<R> {
    if (this.#state >= State.Stopping || this.#queued >= this.#maxQueueSize) {
      return this.#submitWith(item, undefined);
    }
    this.#submitted++;
    let key: string | number;
    try {
      key = (this.#batchKey as (item: unknown) => string | number)(item);
    } catch (error) {
      return this.#refuse("invalid", error);
    }
    if (typeof key !== "string" && !(typeof key === "number" && Number.isFinite(key))) {
      return this.#refuse("invalid", badKey(key));
    }
    this.#state = State.Running;
    const promise = new Promise<R>(capture as (resolve: (value: R) => void) => void);
    const lane = this.#laneFor(key);
    this.#push(lane, lane.q0, item, captured, 0, undefined);
    return promise;
  }

  /** `process()` with per-call options, or with options that need work per item. */
  #submitWith(item: T, options: ProcessOptions | undefined): Promise<R> {
    this.#submitted++;
    if (this.#state >= State.Stopping) return this.#refuse("stopped", new BatcherStoppedError());
    let signal: AbortSignal | undefined;
    let timeout = this.#itemTimeout;
    let priority = 0;
    if (options !== undefined) {
      if (options === null || typeof options !== "object") {
        return this.#refuse(
          "invalid",
          optionError("type", "process() options", "an object", options),
        );
      }
      signal = options.signal;
      // A signal with a live group is known good and not aborted (its group would have fired).
      if (signal !== undefined && this.#signals?.listening(signal) !== true) {
        if (!isSignal(signal)) {
          return this.#refuse("invalid", optionError("type", "signal", "an AbortSignal", signal));
        }
        if (signal.aborted) return this.#refuse("abort", signal.reason);
      }
      const t = options.timeout;
      if (t !== undefined) {
        if (typeof t !== "number" || !(t >= 0)) {
          return this.#refuse(
            "invalid",
            optionError(
              typeof t === "number" ? "range" : "type",
              "timeout",
              "a non-negative number of milliseconds or Infinity",
              t,
            ),
          );
        }
        timeout = t;
      }
      const p = options.priority;
      if (p !== undefined) {
        if (typeof p !== "number" || !Number.isFinite(p)) {
          return this.#refuse(
            "invalid",
            optionError(typeof p === "number" ? "range" : "type", "priority", "a finite number", p),
          );
        }
        priority = p;
      }
    }
    let key: string | number | undefined;
    const batchKey = this.#batchKey;
    if (batchKey !== undefined) {
      try {
        key = batchKey(item);
      } catch (error) {
        return this.#refuse("invalid", error);
      }
      if (typeof key !== "string" && !(typeof key === "number" && Number.isFinite(key))) {
        return this.#refuse("invalid", badKey(key));
      }
    }
    let resultKey: unknown;
    const keyOf = this.#keyOf;
    if (keyOf !== undefined) {
      try {
        resultKey = keyOf(item);
      } catch (error) {
        return this.#refuse("invalid", error);
      }
    }
    let weight = 0;
    const weigh = this.#weigh;
    if (weigh !== undefined) {
      try {
        weight = weigh(item);
      } catch (error) {
        return this.#refuse("invalid", error);
      }
      if (typeof weight !== "number" || !(weight >= 0) || weight === Number.POSITIVE_INFINITY) {
        return this.#refuse(
          "invalid",
          new InvalidInputError(
            "weight",
            `weigh must return a finite, non-negative number, got ${describe(weight)}`,
          ),
        );
      }
      if (weight > this.#maxBatchWeight) {
        return this.#refuse("tooLarge", new ItemTooLargeError(weight, this.#maxBatchWeight));
      }
    }

    if (this.#queued >= this.#maxQueueSize || this.#waiting > 0) {
      const policy = this.#onQueueFull;
      if (policy === "reject") {
        return this.#refuse("queueFull", new QueueFullError(this.#maxQueueSize));
      }
      if (policy === "dropOldest") {
        while (this.#queued >= this.#maxQueueSize) this.#dropOldest();
      } else {
        const promise = new Promise<R>(capture as (resolve: (value: R) => void) => void);
        const cohort = new Cohort(signal, timeout);
        cohort.state = CohortState.Waiting;
        cohort.sealed = true;
        cohort.live = 1;
        cohort.waiting = { item, resolve: captured, priority, key, weight, resultKey };
        this.#captureFor(captured);
        this.#state = State.Running;
        this.#watch(cohort);
        this.#waiters.push(cohort);
        this.#waiting++;
        return promise;
      }
    }

    this.#state = State.Running;
    const promise = new Promise<R>(capture as (resolve: (value: R) => void) => void);
    this.#captureFor(captured);
    if (signal === undefined && timeout === Number.POSITIVE_INFINITY) {
      const lane = this.#laneFor(key);
      this.#push(lane, lane.queueFor(priority), item, captured, weight, undefined, resultKey);
    } else {
      this.#enqueueWatched(item, captured, signal, timeout, priority, key, weight, resultKey);
    }
    return promise;
  }

  /** With tracing: remembers the caller's context for its batch's `batchStart`. */
  #captureFor(entry: Entry): void {
    const capture = this.#capture;
    if (capture === undefined) return;
    let context: unknown;
    try {
      context = capture();
    } catch {
      return; // a failing capture costs the caller its link, nothing else
    }
    if (context !== undefined) (this.#contexts as WeakMap<Entry, unknown>).set(entry, context);
  }

  /** Listens to the cohort's signal and schedules its timeout. */
  #watch(cohort: Cohort): void {
    const signal = cohort.signal;
    if (signal !== undefined) {
      this.#signals ??= new SignalRegistry(this.#cancel);
      this.#signals.add(cohort, signal);
    }
    if (cohort.duration !== Number.POSITIVE_INFINITY) {
      this.#timeouts ??= new TimeoutSchedule(this.#time, this.#cancel);
      this.#timeouts.add(cohort);
    }
  }

  /**
   * Admits an item with a signal or a timeout: into the cohort of the item before it when that one
   * came in the same tick, into the same queue, with the same signal and timeout; else into a new
   * cohort.
   */
  #enqueueWatched(
    item: T,
    resolve: Settle,
    signal: AbortSignal | undefined,
    timeout: number,
    priority: number,
    key: string | number | undefined,
    weight: number,
    resultKey: unknown,
  ): void {
    const lane = this.#laneFor(key);
    const queue = lane.queueFor(priority);
    let cohort = queue.openCohort(this.#time.now(), this.#seq);
    if (
      cohort === undefined ||
      cohort.sealed ||
      cohort.signal !== signal ||
      cohort.duration !== timeout
    ) {
      cohort = new Cohort(signal, timeout);
      cohort.lane = lane as Lane<unknown>;
      cohort.queue = queue as ItemQueue<unknown>;
      cohort.start = queue.tailPos;
      this.#watch(cohort);
    }
    cohort.live++;
    cohort.end = queue.tailPos + 1;
    this.#push(lane, queue, item, resolve, weight, cohort, resultKey);
  }

  #newLane(key: string | number | undefined): Lane<T> {
    return new Lane<T>(key, this.#weigh !== undefined, this.#keyOf !== undefined, this.#dedupe);
  }

  /** The lane of `key`, made on first use. */
  #laneFor(key: string | number | undefined): Lane<T> {
    let lane = this.#lane0;
    if (lane !== undefined) return lane;
    lane = this.#lastLane;
    // A lane stays in `#keys` while it holds items: the cached one is good while it does.
    if (lane === undefined || lane.key !== key || lane.size === 0) {
      const keys = this.#keys as Map<string | number, Lane<T>>;
      lane = keys.get(key as string | number);
      if (lane === undefined) {
        lane = this.#newLane(key);
        keys.set(key as string | number, lane);
      }
      this.#lastLane = lane;
    }
    return lane;
  }

  #push(
    lane: Lane<T>,
    queue: ItemQueue<T>,
    item: T,
    entry: Entry,
    weight: number,
    cohort: Cohort | undefined,
    resultKey?: unknown,
    tries?: number,
  ): void {
    if (this.#keyOf === undefined && tries === undefined) {
      queue.push(item, entry, this.#time.now(), this.#seq++, weight, cohort);
    } else {
      queue.pushWith(
        item,
        entry,
        this.#time.now(),
        this.#seq++,
        weight,
        cohort,
        resultKey,
        tries ?? 1,
      );
    }
    this.#queued++;
    if (lane.dedupe !== undefined) lane.countKey(resultKey, weight);
    if (++lane.size === 1) this.#laneFilled(lane);
    if (this.#isFull(lane)) this.#laneFull(lane);
  }

  /** Takes the waiting item at `pos` out of its queue early; returns its caller. */
  #removeAt(lane: Lane<T>, queue: ItemQueue<T>, pos: number): Entry | undefined {
    if (lane.dedupe !== undefined && queue.entryAt(pos) !== undefined) {
      lane.uncountKey(queue.keyAt(pos), queue.weightAt(pos));
    }
    return queue.remove(pos);
  }

  /** A lane got its first item (the one just pushed): it joins the heap, and its clock starts. */
  #laneFilled(lane: Lane<T>): void {
    lane.oldestSeq = this.#seq - 1;
    lane.oldestArrival = this.#time.now();
    this.#lanes.push(lane);
    this.#scheduleLane(lane);
  }

  /** Whether `lane` is due whatever the time: a full batch waits, or retried items do. */
  #isFull(lane: Lane<T>): boolean {
    return (
      lane.count >= this.#maxBatchSize ||
      (this.#weigh !== undefined && lane.batchWeight >= this.#maxBatchWeight) ||
      (this.#retry !== undefined && lane.retrying)
    );
  }

  /** A lane holds a full batch: cut it now if a slot is free. */
  #laneFull(lane: Lane<T>): void {
    if (this.#keys !== undefined) this.#full.add(lane); // one lane: it is the oldest anyway
    if (this.#busy < this.#concurrency && !this.#requeuing) this.#pump(true);
  }

  /** Retried items are being put back: no batch is cut until they all are. */
  #requeuing = false;

  /** After items left a lane: its place in the heap, and with keys in `#full` and `#keys`. */
  #laneChanged(lane: Lane<T>): void {
    const keys = this.#keys;
    if (lane.size === 0) {
      this.#lanes.remove(lane);
      lane.oldestSeq = Number.POSITIVE_INFINITY;
      if (keys !== undefined) {
        this.#full.delete(lane);
        keys.delete(lane.key as string | number);
      }
      return;
    }
    lane.refresh();
    this.#lanes.update(lane);
    if (keys === undefined) return;
    if (this.#isFull(lane)) this.#full.add(lane);
    else this.#full.delete(lane);
  }

  /** Lets waiting items in while there is room, first come first served. */
  #admit(): void {
    // Fields, not locals: admitting may cut a batch, which admits again (and may compact).
    while (this.#waiting > 0 && this.#queued < this.#maxQueueSize) {
      const cohort = this.#waiters[this.#waitersHead];
      this.#waiters[this.#waitersHead++] = undefined;
      if (cohort === undefined || cohort.state !== CohortState.Waiting) continue;
      this.#waiting--;
      const waiter = cohort.waiting as Waiter;
      // Its abort or timeout may be on its way (delivered to several items in turn): honour it.
      const signal = cohort.signal;
      if (signal?.aborted === true) {
        cohort.detach();
        this.#leave("abort", [waiter.resolve], signal.reason);
        continue;
      }
      if (cohort.timeoutList !== undefined && cohort.deadline <= this.#time.now() + EPSILON_MS) {
        cohort.detach();
        this.#leave("timeout", [waiter.resolve], new ItemTimeoutError(cohort.duration));
        continue;
      }
      const lane = this.#laneFor(waiter.key);
      const queue = lane.queueFor(waiter.priority);
      cohort.state = CohortState.Admitted;
      cohort.waiting = undefined;
      cohort.lane = lane as Lane<unknown>;
      cohort.queue = queue as ItemQueue<unknown>;
      cohort.start = queue.tailPos;
      cohort.end = cohort.start + 1;
      this.#push(
        lane,
        queue,
        waiter.item as T,
        waiter.resolve,
        waiter.weight,
        cohort,
        waiter.resultKey,
      );
    }
    if (this.#waiting === 0) {
      this.#waiters = [];
      this.#waitersHead = 0;
    } else if (this.#waitersHead >= 1024 && this.#waitersHead * 2 >= this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#waitersHead);
      this.#waitersHead = 0;
    }
  }

  /** `onQueueFull: "dropOldest"`: rejects the oldest waiting item to make room. */
  #dropOldest(): void {
    const lane = this.#lanes.peek() as Lane<T>;
    const queue = lane.oldestQueue();
    const pos = queue.headPos;
    const cohort = queue.cohortAt(pos);
    const entry = this.#removeAt(lane, queue, pos) as Entry;
    this.#queued--;
    lane.size--;
    this.#laneChanged(lane);
    if (cohort !== undefined && --cohort.live === 0) cohort.detach();
    this.#leave(
      "queueFull",
      [entry],
      new QueueFullError(
        this.#maxQueueSize,
        `dropped: the queue was full (${this.#maxQueueSize} items) and a newer item took this one's place`,
      ),
    );
    if (this.#flushWaiters.length > 0) this.#settleFlushWaiters();
  }

  /**
   * Cohorts whose signal aborted or whose timeout passed: every caller still waiting on them
   * leaves with its cohort's reason, wherever its item is (waiting for room, queued, or in a
   * running batch, whose result for it is then dropped). All of one abort or one timer tick go
   * together, and only then does the batcher move on: admit waiting callers, cut batches, and
   * abort the `context.signal` of running batches that nobody waits for any more.
   */
  readonly #cancel = (
    cohorts: readonly Cohort[],
    reasonOf: (cohort: Cohort) => unknown,
    kind: "abort" | "timeout",
  ): void => {
    // Per cohort: its reason (its callers share it) and its turn (the order callers leave in).
    const reasons = new Map<Cohort, [unknown, number]>();
    let left = 0;
    let firstReason: unknown;
    for (let turn = 0; turn < cohorts.length; turn++) {
      const cohort = cohorts[turn] as Cohort;
      const reason = reasonOf(cohort);
      if (turn === 0) firstReason = reason;
      if (cohort.state === CohortState.Waiting) {
        this.#waiting--;
        const waiter = cohort.waiting as Waiter;
        cohort.detach();
        rejectCaller(waiter.resolve, reason);
        left++;
      } else if (cohort.state === CohortState.Admitted) {
        left += this.#cancelQueued(cohort, reason);
        if (cohort.live > 0) reasons.set(cohort, [reason, turn]);
        else cohort.detach();
      }
    }
    const unwanted: [Batch<T>, unknown][] = [];
    if (reasons.size > 0) {
      for (const batch of this.#running.values()) {
        const runs = batch.cohorts;
        if (runs === undefined || batch.done) continue;
        // The batch's signal gets the reason of the last caller to leave it.
        let last: unknown;
        let lastTurn = -1;
        for (const run of runs) {
          const found = reasons.get(run.cohort);
          if (found === undefined) continue;
          const [reason, turn] = found;
          const cancelled = this.#cancelRunning(batch, run, reason);
          left += cancelled;
          if (cancelled > 0 && turn > lastTurn) {
            last = reason;
            lastTurn = turn;
          }
        }
        if (lastTurn >= 0 && batch.cancelled === batch.size) unwanted.push([batch, last]);
      }
      for (const cohort of reasons.keys()) cohort.detach();
    }
    if (left > 0) {
      this.#rejected[kind] += left;
      this.#dropped(kind, left, firstReason);
    }
    // Retries nobody waits for any more are dropped now, not when their turn comes.
    for (const [batch] of unwanted) {
      if (batch.phase === Phase.Backoff || batch.phase === Phase.Ready) {
        this.#finish(batch, 0, 0, false, undefined);
      }
    }
    this.#admit();
    if (this.#flushWaiters.length > 0) this.#settleFlushWaiters();
    this.#pump(true);
    this.#checkIdle();
    // Last, as it runs the batch functions' listeners.
    for (const [batch, reason] of unwanted) batch.abort(reason);
  };

  /** Takes the cohort's queued items out and rejects their callers; returns how many. */
  #cancelQueued(cohort: Cohort, reason: unknown): number {
    const queue = cohort.queue as ItemQueue<T>;
    const lane = cohort.lane as unknown as Lane<T>;
    let removed = 0;
    for (let pos = cohort.start; pos < cohort.end; pos++) {
      const entry = this.#removeAt(lane, queue, pos);
      if (entry === undefined) continue; // in a batch already, or gone
      rejectCaller(entry, reason);
      removed++;
    }
    if (removed === 0) return 0;
    cohort.live -= removed;
    this.#queued -= removed;
    lane.size -= removed;
    this.#laneChanged(lane);
    return removed;
  }

  /**
   * Rejects the callers of `run` still waiting on `batch`; their results will be dropped. Returns
   * how many there were.
   */
  #cancelRunning(batch: Batch<T>, run: CohortRun, reason: unknown): number {
    const entries = batch.entries;
    const end = run.start + run.count;
    let cancelled = 0;
    for (let i = run.start; i < end; i++) {
      const entry = entries[i] as Entry;
      if (entry === CANCELLED) continue;
      entries[i] = CANCELLED;
      rejectCaller(entry, reason);
      cancelled++;
    }
    run.cancelled += cancelled;
    batch.cancelled += cancelled;
    run.cohort.live -= cancelled;
    return cancelled;
  }

  /** Rejects callers who leave for `reason` (not through a cohort), counted and reported. */
  #leave(reason: DropReason, entries: readonly Entry[], error: unknown): void {
    for (const entry of entries) rejectCaller(entry, error);
    if (entries.length === 0) return;
    this.#rejected[reason] += entries.length;
    this.#dropped(reason, entries.length, error);
  }

  // ---------------------------------------------------------------------------------------------
  // Scheduling: when is a lane due?

  /** Makes sure something will wake the batcher when `lane`'s oldest item falls due. */
  #scheduleLane(lane: Lane<T>): void {
    const maxQueueTime = this.#maxQueueTime;
    if (maxQueueTime === 0) {
      if (!this.#tickScheduled) {
        this.#tickScheduled = true;
        afterTick(this.#onTick);
      }
    } else if (maxQueueTime !== Number.POSITIVE_INFINITY) {
      this.#timer.arm(lane.oldestArrival + maxQueueTime);
    }
  }

  readonly #onTick = (): void => {
    this.#tickScheduled = false;
    this.#tickDue = this.#seq;
    this.#pump(false);
  };

  /** Why `lane` should be cut now, or `undefined` if it should wait. */
  #dueReason(lane: Lane<T>): CutReason | undefined {
    if (lane.count >= this.#maxBatchSize) return "size";
    if (this.#weigh !== undefined && lane.batchWeight >= this.#maxBatchWeight) return "weight";
    // Retried items have waited their backoff: they go with the next batch of their key.
    if (this.#retry !== undefined && lane.retrying) return "retry";
    if (this.#state === State.Stopping) return "stop";
    const oldest = lane.oldestSeq;
    if (oldest < this.#flushSeq) return "flush";
    const maxQueueTime = this.#maxQueueTime;
    if (maxQueueTime === 0) return oldest < this.#tickDue ? "time" : undefined;
    if (maxQueueTime === Number.POSITIVE_INFINITY) return undefined;
    return this.#time.now() >= lane.oldestArrival + maxQueueTime - EPSILON_MS ? "time" : undefined;
  }

  #pickedReason: CutReason = "size";

  /**
   * The lane to cut next, its reason in `#pickedReason`: the oldest lane if it is due, else the
   * oldest of the full ones. Every other lane is younger than the oldest, so not due by time.
   */
  #pick(): Lane<T> | undefined {
    const top = this.#lanes.peek();
    if (top === undefined) return undefined;
    const reason = this.#dueReason(top);
    if (reason !== undefined) {
      this.#pickedReason = reason;
      return top;
    }
    if (this.#full.size === 0) return undefined;
    let best: Lane<T> | undefined;
    for (const lane of this.#full)
      if (best === undefined || lane.oldestSeq < best.oldestSeq) best = lane;
    this.#pickedReason = this.#dueReason(best as Lane<T>) as CutReason;
    return best;
  }

  // ---------------------------------------------------------------------------------------------
  // Dispatching: cut due batches while a slot is free.

  /**
   * Starts the retries and split halves that wait for a slot, then cuts every due batch that a
   * free slot (and the rate limit) can take. `fromUser`: called inside a public method, so
   * batches are started on the next microtask instead of now.
   */
  #pump(fromUser: boolean): void {
    // Re-entered from a batch that settled synchronously: the loop below goes on by itself.
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      // A batch started here may fail synchronously and leave split halves: go round again.
      while (this.#pumpRetries(fromUser) && this.#pumpLanes(fromUser)) {}
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Starts the retries and split halves waiting for a slot: their items are older than anything
   * queued, so they go first. Returns whether none is left waiting.
   */
  #pumpRetries(fromUser: boolean): boolean {
    const retries = this.#retryReady;
    while (retries.length > 0 && this.#busy < this.#concurrency) {
      const batch = retries[0] as Batch<T>;
      if (batch.done) {
        retries.shift();
        continue;
      }
      const rate = this.#rate;
      if (rate !== undefined) {
        const allowed = rate.allowance(this.#time.now());
        // A retry is not cut smaller: it waits until the quota can take it (or a full quota).
        if (allowed === 0 || (allowed < batch.items.length && allowed < rate.limit.items)) {
          this.#timer.arm(rate.nextAt(Math.min(batch.items.length, rate.limit.items)));
          return false;
        }
        rate.record(this.#time.now(), batch.items.length);
      }
      retries.shift();
      batch.busy = true;
      this.#busy++;
      this.#dispatch(batch, fromUser);
    }
    return retries.length === 0;
  }

  /**
   * Cuts due batches while a slot is free and no retry waits. Returns whether a batch started
   * here left retries or split halves waiting, and a slot is free for them.
   */
  #pumpLanes(fromUser: boolean): boolean {
    const retries = this.#retryReady;
    while (this.#queued > 0 && this.#busy < this.#concurrency && retries.length === 0) {
      const lane = this.#pick();
      if (lane === undefined) {
        const oldest = this.#lanes.peek();
        if (oldest !== undefined) this.#scheduleLane(oldest);
        break;
      }
      let maxCount = this.#maxBatchSize;
      const rate = this.#rate;
      if (rate !== undefined) {
        const allowed = rate.allowance(this.#time.now());
        if (allowed === 0) {
          this.#timer.arm(rate.nextAt(1));
          break;
        }
        if (allowed < maxCount) maxCount = allowed;
      }
      const batch = this.#cut(lane, this.#pickedReason, maxCount);
      rate?.record(this.#time.now(), batch.items.length);
      this.#dispatch(batch, fromUser);
      if (this.#waiting > 0) this.#admit();
    }
    return retries.length > 0 && this.#busy < this.#concurrency;
  }

  /** Starts a batch that holds a slot: now, or on the next microtask when `fromUser`. */
  #dispatch(batch: Batch<T>, fromUser: boolean): void {
    if (fromUser || this.#readyScheduled) {
      this.#ready.push(batch);
      if (!this.#readyScheduled) {
        this.#readyScheduled = true;
        queueMicrotask(this.#startReady);
      }
    } else {
      this.#start(batch);
    }
  }

  #cut(lane: Lane<T>, reason: CutReason, maxCount: number): Batch<T> {
    const waited = this.#time.now() - lane.oldestArrival;
    const taken = lane.take(maxCount, this.#maxBatchWeight, this.#withWeights);
    this.#queued -= taken.entries.length;
    this.#laneChanged(lane);
    const batch = new Batch(this.#nextBatchId++, reason, taken, lane.key, taken.weight);
    batch.queueWait = waited > 0 ? waited : 0;
    batch.busy = true;
    this.#busy++;
    this.#running.add(batch);
    this.#inFlight += batch.size;
    const waiters = this.#flushWaiters;
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i] as FlushWaiter;
      if (taken.minSeq < waiter.until) {
        waiter.pending++;
        if (batch.waiters === undefined) batch.waiters = [waiter];
        else batch.waiters.push(waiter);
      }
    }
    if (this.#logger !== undefined) {
      this.#log({
        type: "batchCut",
        batcher: this.#name,
        batchId: batch.id,
        size: batch.items.length,
        ...(lane.key === undefined ? {} : { key: lane.key }),
        ...(this.#weigh === undefined ? {} : { weight: batch.weight }),
        reason,
        waitMs: batch.queueWait,
      });
    }
    return batch;
  }

  readonly #startReady = (): void => {
    // Batches cut while this runs (a synchronous batch function frees its slot at once) are
    // appended and started by this same loop, so batch functions are called in cut order.
    const ready = this.#ready;
    for (let i = 0; i < ready.length; i++) this.#start(ready[i] as Batch<T>);
    ready.length = 0;
    this.#readyScheduled = false;
  };

  #start(batch: Batch<T>): void {
    if (batch.done) return; // force-stopped before it started
    if (batch.cancelled > 0) {
      // Callers left between the cut and now: the batch function never sees their items, and a
      // batch nobody waits for is not run at all.
      if (batch.cancelled === batch.size) {
        this.#finish(batch, 0, 0, false, undefined);
        return;
      }
      this.#inFlight -= batch.compact();
    }
    batch.phase = Phase.Running;
    batch.startedAt = this.#time.now();
    const size = batch.items.length;
    this.#started[batch.reason]++;
    this.#sizes.record(size);
    if (batch.parentId === undefined) this.#waits.record(batch.queueWait);
    if (this.#events?.has("batchStart") === true) this.#emitStart(batch);
    let result: unknown;
    try {
      const scope = this.#scope;
      result =
        scope === undefined
          ? this.#run(batch.items, batch.context)
          : scope(batch.id, () => this.#run(batch.items, batch.context));
    } catch (error) {
      this.#fail(batch, error);
      return;
    }
    if (isThenable(result)) {
      try {
        result.then(
          (value) => this.#complete(batch, value),
          (error: unknown) => this.#fail(batch, error),
        );
      } catch (error) {
        this.#fail(batch, error); // a thenable whose then() throws
      }
    } else {
      this.#complete(batch, result);
    }
  }

  #emitStart(batch: Batch<T>): void {
    let attempt = 1;
    const tries = batch.tries;
    if (tries !== undefined) for (const t of tries) if (t > attempt) attempt = t;
    let contexts: unknown[] | undefined;
    const known = this.#contexts;
    if (known !== undefined) {
      contexts = [];
      for (const entry of batch.entries) {
        const context = known.get(entry);
        if (context !== undefined) contexts.push(context);
      }
    }
    (this.#events as Emitter<BatcherEvents>).emit("batchStart", {
      batcher: this.#name,
      batchId: batch.id,
      parentId: batch.parentId,
      key: batch.key,
      size: batch.items.length,
      callers: batch.size,
      weight: batch.weight,
      reason: batch.reason,
      queueWait: batch.queueWait,
      attempt,
      contexts,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Settling.

  #complete(batch: Batch<T>, result: unknown): void {
    if (batch.done) return;
    const entries = batch.entries;
    const size = entries.length;
    if (result === undefined) {
      for (let i = 0; i < size; i++) (entries[i] as Entry)(undefined);
      this.#finish(batch, size - batch.cancelled, 0, false, undefined);
      return;
    }
    const byKey = result instanceof Map;
    if (byKey ? this.#keyOf === undefined : !Array.isArray(result)) {
      this.#fail(batch, new BatchResultError(batch.items.length, describeResult(result)));
      return;
    }
    if (!byKey && (result as unknown[]).length !== batch.items.length) {
      this.#fail(batch, new BatchResultError(batch.items.length, (result as unknown[]).length));
      return;
    }
    if (!byKey && batch.slots === undefined && this.#retry === undefined) {
      // The common case: results by position, no retry.
      const values = result as unknown[];
      let resolved = 0;
      for (let i = 0; i < size; i++) {
        const value: unknown = values[i];
        const entry = entries[i] as Entry;
        if (isError(value)) {
          if (entry !== CANCELLED) rejectCaller(entry, value);
        } else if (entry !== CANCELLED) {
          entry(value);
          resolved++;
        }
      }
      this.#rejected.error += size - batch.cancelled - resolved;
      this.#finish(batch, resolved, size - batch.cancelled - resolved, false, undefined);
      return;
    }
    this.#completeEach(batch, result as unknown[] | Map<unknown, unknown>);
  }

  /** Results by key, with `dedupe`, or with retries: each caller on its own. */
  #completeEach(batch: Batch<T>, result: unknown[] | Map<unknown, unknown>): void {
    const entries = batch.entries;
    const keys = batch.keys;
    const slots = batch.slots;
    const map = result instanceof Map ? result : undefined;
    const retry: number[] = [];
    let retryError: unknown;
    let resolved = 0;
    let rejected = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      if (entry === CANCELLED) continue;
      let value: unknown;
      if (map !== undefined) {
        const key = keys?.[i];
        if (!map.has(key)) {
          if (this.#onMissing === "undefined") {
            entry(undefined);
            resolved++;
          } else {
            this.#rejected.missing++;
            rejected++;
            rejectCaller(entry, new MissingResultError(key));
          }
          continue;
        }
        value = map.get(key);
      } else {
        value = (result as unknown[])[slots === undefined ? i : (slots[i] as number)];
      }
      if (!isError(value)) {
        entry(value);
        resolved++;
      } else if (
        this.#retryable(value) &&
        batch.triesOf(i) < (this.#retry as ResolvedRetry).attempts
      ) {
        if (retry.length === 0) retryError = value;
        retry.push(i);
      } else {
        this.#rejected.error++;
        rejected++;
        rejectCaller(entry, value);
      }
    }
    if (retry.length > 0) this.#backoff(batch, retry, retryError, "item");
    this.#finish(batch, resolved, rejected, false, undefined);
  }

  /** Whether `error` is worth another try under the retry policy. */
  #retryable(error: unknown): boolean {
    const retry = this.#retry;
    if (retry === undefined) return false;
    if (retry.retryIf === undefined) return true;
    try {
      return retry.retryIf(error) === true;
    } catch {
      return false;
    }
  }

  /**
   * The batch threw (or returned something unusable). Callers with tries left retry together
   * after a backoff, if the policy says the error is worth it; with `splitOnError` the others
   * are tried in two halves; the rest reject with the error.
   */
  #fail(batch: Batch<T>, error: unknown): void {
    if (batch.done) return;
    const entries = batch.entries;
    const live: number[] = [];
    for (let i = 0; i < entries.length; i++) if (entries[i] !== CANCELLED) live.push(i);
    let rest = live;
    // A result that does not fit is a bug in the batch function: retrying will not fix it.
    const usable = !(error instanceof BatchResultError);
    if (usable && this.#retryable(error)) {
      const attempts = (this.#retry as ResolvedRetry).attempts;
      const retry = live.filter((i) => batch.triesOf(i) < attempts);
      if (retry.length > 0) {
        this.#backoff(batch, retry, error, "batch");
        rest = live.filter((i) => batch.triesOf(i) >= attempts);
      }
    }
    // Split whenever the batch held more than one item: the item at fault may be one whose
    // caller has left, and those still waiting deserve a try without it.
    if (usable && this.#splitOnError && rest.length > 0 && batch.items.length > 1) {
      this.#split(batch, rest, error);
      rest = [];
    }
    for (const i of rest) rejectCaller(entries[i] as Entry, error);
    this.#rejected.error += rest.length;
    this.#finish(batch, 0, rest.length, true, error);
  }

  /**
   * Hands the callers at `callers` over to a new batch made from `batch` (they stay in flight,
   * under the same cohorts): `batch` no longer settles them.
   */
  #handOver(
    batch: Batch<T>,
    callers: readonly number[],
    reason: BatchStartReason,
    addTries: number,
  ): Batch<T> {
    const part = batch.subset(callers, addTries);
    const next = new Batch(
      this.#nextBatchId++,
      reason,
      part,
      batch.key,
      part.weights === undefined ? batch.weight : part.weight,
    );
    next.parentId = batch.id;
    for (const i of callers) {
      batch.entries[i] = CANCELLED;
      const run = batch.runAt(i);
      if (run !== undefined) run.cancelled++;
    }
    // A pending flush() waits for these callers too.
    const waiters = batch.waiters;
    if (waiters !== undefined) {
      next.waiters = [...waiters];
      for (const waiter of waiters) waiter.pending++;
    }
    this.#running.add(next);
    this.#inFlight += next.size;
    return next;
  }

  /** Retries the callers at `callers` of `batch` after the backoff their failure earns. */
  #backoff(
    batch: Batch<T>,
    callers: readonly number[],
    error: unknown,
    scope: "batch" | "item",
  ): void {
    const policy = this.#retry as ResolvedRetry;
    let failedTry = 1;
    for (const i of callers) failedTry = Math.max(failedTry, batch.triesOf(i));
    let delay: number;
    try {
      delay = Number(policy.delay(failedTry, error));
    } catch {
      delay = 0;
    }
    if (!(delay > 0)) delay = 0; // NaN or negative: no wait
    if (delay > policy.maxDelay) delay = policy.maxDelay;
    if (policy.jitter) delay = Math.random() * delay;
    const next = this.#handOver(batch, callers, "retry", 1);
    next.phase = Phase.Backoff;
    next.requeue = scope === "item";
    this.#retries += next.size;
    this.#sleep(next, delay);
    if (this.#logger !== undefined) {
      this.#log({
        type: "retry",
        batcher: this.#name,
        batchId: batch.id,
        scope,
        size: next.items.length,
        attempt: failedTry + 1,
        delayMs: delay,
      });
    }
    if (this.#events?.has("retry") === true) {
      this.#events.emit("retry", {
        batcher: this.#name,
        batchId: batch.id,
        key: batch.key,
        scope,
        size: next.items.length,
        attempt: failedTry + 1,
        delay,
        error,
      });
    }
  }

  /** Wakes `batch` after `ms`; host timers wait at most 2^31-1 ms at once, so longer ones chain. */
  #sleep(batch: Batch<T>, ms: number): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    batch.timer = this.#time.clock.setTimeout(() => {
      if (ms > step) this.#sleep(batch, ms - step);
      else this.#wake(batch);
    }, step);
  }

  /** The backoff of a retry is over: it waits for a slot, or its items rejoin their queue. */
  #wake(batch: Batch<T>): void {
    batch.timer = undefined;
    if (batch.done) return;
    if (batch.requeue) {
      this.#requeue(batch);
    } else {
      batch.phase = Phase.Ready;
      this.#retryReady.push(batch);
    }
    this.#pump(false);
    this.#checkIdle();
  }

  /**
   * Items whose own result was an `Error` go back to their lane, ahead of every priority, with
   * their tries so far. Their callers keep their signals and deadlines, under new cohorts (the
   * old ones keep the queue positions of their other items).
   */
  #requeue(batch: Batch<T>): void {
    const lane = this.#laneFor(batch.key);
    const queue = lane.queueFor(Number.POSITIVE_INFINITY);
    const fresh = new Map<Cohort, Cohort>();
    const entries = batch.entries;
    // All of them go back before any is cut: they rejoin together (and, with dedupe, the callers
    // of one item stay one item).
    this.#requeuing = true;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      if (entry === CANCELLED) continue;
      const slot = batch.slots === undefined ? i : (batch.slots[i] as number);
      const old = batch.runAt(i)?.cohort;
      let cohort: Cohort | undefined;
      if (old !== undefined) {
        cohort = fresh.get(old);
        if (cohort === undefined) {
          cohort = new Cohort(old.signal, old.duration);
          cohort.lane = lane as Lane<unknown>;
          cohort.queue = queue as ItemQueue<unknown>;
          cohort.start = queue.tailPos;
          cohort.sealed = true;
          fresh.set(old, cohort);
          if (old.signal !== undefined) {
            this.#signals ??= new SignalRegistry(this.#cancel);
            this.#signals.add(cohort, old.signal);
          }
          if (old.timeoutList !== undefined) {
            cohort.deadline = old.deadline;
            this.#timeouts ??= new TimeoutSchedule(this.#time, this.#cancel);
            this.#timeouts.readd(cohort);
          }
        }
        cohort.live++;
        cohort.end = queue.tailPos + 1;
        if (--old.live === 0 && old.state === CohortState.Admitted) old.detach();
      }
      this.#push(
        lane,
        queue,
        batch.items[slot] as T,
        entry,
        batch.weights === undefined ? 0 : (batch.weights[slot] as number),
        cohort,
        batch.keys?.[i],
        batch.triesOf(i),
      );
      entries[i] = CANCELLED;
    }
    this.#requeuing = false;
    // A pending flush() that waited for these items waits for them in the queue.
    const waiters = batch.waiters;
    if (waiters !== undefined) {
      for (const waiter of waiters) waiter.until = Math.max(waiter.until, this.#seq);
      this.#flushSeq = Math.max(this.#flushSeq, this.#seq);
    }
    batch.cohorts = undefined; // its cohorts' accounting moved to the new ones
    this.#finish(batch, 0, 0, false, undefined);
  }

  /** `splitOnError`: the callers at `callers` try again in two halves, by item. */
  #split(batch: Batch<T>, callers: readonly number[], error: unknown): void {
    const slots = batch.slots;
    const itemOf = (i: number) => (slots === undefined ? i : (slots[i] as number));
    const items = [...new Set(callers.map(itemOf))];
    const firstHalf = new Set(items.slice(0, Math.ceil(items.length / 2)));
    const a = callers.filter((i) => firstHalf.has(itemOf(i)));
    const b = callers.filter((i) => !firstHalf.has(itemOf(i)));
    this.#splits++;
    if (this.#events?.has("split") === true) {
      this.#events.emit("split", {
        batcher: this.#name,
        batchId: batch.id,
        key: batch.key,
        size: items.length,
        error,
      });
    }
    for (const half of [a, b]) {
      if (half.length === 0) continue; // the waiting callers share one item: it goes alone
      const next = this.#handOver(batch, half, "split", 0);
      next.phase = Phase.Ready;
      this.#retryReady.push(next);
    }
  }

  /**
   * Bookkeeping once a batch's callers are settled (or handed over): frees its slot and moves
   * on. `failed`: the batch function threw, with `error`.
   */
  #finish(
    batch: Batch<T>,
    resolved: number,
    rejected: number,
    failed: boolean,
    error: unknown,
  ): void {
    batch.done = true;
    batch.entries = NO_ENTRIES;
    if (batch.timer !== undefined) {
      this.#time.clock.clearTimeout(batch.timer);
      batch.timer = undefined;
    }
    const runs = batch.cohorts;
    if (runs !== undefined) {
      // Their callers are settled: a cohort with nobody left stops listening and timing.
      for (const run of runs) {
        const cohort = run.cohort;
        cohort.live -= run.count - run.cancelled;
        if (cohort.live === 0 && cohort.state === CohortState.Admitted) cohort.detach();
      }
    }
    this.#running.remove(batch);
    this.#inFlight -= batch.size;
    if (batch.busy) {
      batch.busy = false;
      this.#busy--;
    }
    this.#resolved += resolved;
    if (!Number.isNaN(batch.startedAt)) {
      const retried = batch.size - batch.cancelled - resolved - rejected;
      this.#ended(batch, resolved, rejected, retried, failed, error);
    }
    const waiters = batch.waiters;
    if (waiters !== undefined) {
      for (const waiter of waiters) waiter.pending--;
      this.#settleFlushWaiters();
    }
    this.#pump(false);
    this.#checkIdle();
  }

  /** A started batch is over: its duration recorded, logged and reported. */
  #ended(
    batch: Batch<T>,
    resolved: number,
    rejected: number,
    retried: number,
    failed: boolean,
    error: unknown,
  ): void {
    const duration = this.#time.now() - batch.startedAt;
    this.#durations.record(duration);
    if (this.#logger !== undefined) {
      this.#log({
        type: "batchDone",
        batcher: this.#name,
        batchId: batch.id,
        size: batch.items.length,
        durationMs: duration,
        outcome: failed ? "error" : "ok",
        resolved,
        rejected,
        ...(failed ? { error } : {}),
      });
    }
    if (this.#events?.has("batchEnd") === true) {
      this.#events.emit("batchEnd", {
        batcher: this.#name,
        batchId: batch.id,
        key: batch.key,
        size: batch.items.length,
        duration,
        resolved,
        rejected,
        retried,
        error: failed ? error : undefined,
        failed,
      });
    }
  }

  #settleFlushWaiters(): void {
    const head = this.#lanes.peek()?.oldestSeq ?? Number.POSITIVE_INFINITY;
    const waiters = this.#flushWaiters;
    let kept = 0;
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i] as FlushWaiter;
      if (waiter.pending === 0 && head >= waiter.until) waiter.resolve();
      else waiters[kept++] = waiter;
    }
    waiters.length = kept;
  }

  #checkIdle(): void {
    if (this.#queued !== 0 || this.#running.size !== 0 || this.#waiting !== 0) return;
    // Idle: hold no timer, so a program that never calls stop() can exit.
    this.#timer.clear();
    const idle = this.#idleWaiters;
    if (idle.length > 0) {
      this.#idleWaiters = [];
      for (const resolve of idle) resolve();
    }
    if (this.#idleAt !== this.#submitted) {
      this.#idleAt = this.#submitted;
      if (this.#events?.has("idle") === true) this.#events.emit("idle", { batcher: this.#name });
    }
    if (this.#state === State.Stopping) this.#stopped(false);
  }

  // ---------------------------------------------------------------------------------------------
  // Public control.

  setOptions(options: ResolvedTunable): void {
    if (options.maxBatchSize !== undefined) this.#maxBatchSize = options.maxBatchSize;
    if (options.concurrency !== undefined) this.#concurrency = options.concurrency;
    if (options.maxQueueSize !== undefined) this.#maxQueueSize = options.maxQueueSize;
    if ("rateLimit" in options) {
      const limit = options.rateLimit;
      if (limit === undefined) this.#rate = undefined;
      else if (this.#rate === undefined) this.#rate = new RateWindow(limit);
      else this.#rate.limit = limit;
    }
    if (options.maxQueueTime !== undefined && options.maxQueueTime !== this.#maxQueueTime) {
      this.#maxQueueTime = options.maxQueueTime;
      // A later deadline is found when the armed timer fires early; an earlier one needs arming.
      const oldest = this.#lanes.peek();
      if (oldest !== undefined) this.#scheduleLane(oldest);
    }
    if (options.maxBatchWeight !== undefined && options.maxBatchWeight !== this.#maxBatchWeight) {
      const lowered = options.maxBatchWeight < this.#maxBatchWeight;
      this.#maxBatchWeight = options.maxBatchWeight;
      if (lowered) this.#rejectTooHeavy();
    }
    // The limits decide which keys hold a full batch.
    if (this.#keys !== undefined) {
      for (const lane of this.#lanes.values()) {
        if (this.#isFull(lane)) this.#full.add(lane);
        else this.#full.delete(lane);
      }
    }
    this.#admit();
    this.#pump(true);
    this.#checkIdle();
  }

  /** After `maxBatchWeight` was lowered: the items no batch can hold any more are rejected. */
  #rejectTooHeavy(): void {
    const max = this.#maxBatchWeight;
    const rejected: [Entry, number][] = [];
    for (const lane of [...this.#lanes.values()]) {
      for (const queue of lane.queues) {
        const end = queue.tailPos;
        for (let pos = queue.size > 0 ? queue.headPos : end; pos < end; pos++) {
          if (queue.entryAt(pos) === undefined || queue.weightAt(pos) <= max) continue;
          const weight = queue.weightAt(pos);
          const cohort = queue.cohortAt(pos);
          rejected.push([this.#removeAt(lane, queue, pos) as Entry, weight]);
          if (cohort !== undefined && --cohort.live === 0) cohort.detach();
          this.#queued--;
          lane.size--;
        }
      }
      this.#laneChanged(lane);
    }
    for (let i = this.#waitersHead; i < this.#waiters.length; i++) {
      const cohort = this.#waiters[i];
      const waiter = cohort?.waiting;
      if (cohort?.state === CohortState.Waiting && waiter !== undefined && waiter.weight > max) {
        this.#waiting--;
        cohort.detach();
        rejected.push([waiter.resolve, waiter.weight]);
      }
    }
    for (const [entry, weight] of rejected) {
      this.#leave("tooLarge", [entry], new ItemTooLargeError(weight, max));
    }
    if (this.#flushWaiters.length > 0) this.#settleFlushWaiters();
  }

  flush(): Promise<void> {
    if (this.#queued === 0) return Promise.resolve();
    const until = this.#seq;
    this.#flushSeq = until;
    const promise = new Promise<void>((resolve) => {
      this.#flushWaiters.push({ until, pending: 0, resolve });
    });
    this.#pump(true);
    return promise;
  }

  onIdle(): Promise<void> {
    if (this.#queued === 0 && this.#running.size === 0 && this.#waiting === 0) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#idleWaiters.push(resolve);
    });
  }

  stop(force: boolean, timeout: number): Promise<void> {
    if (this.#stopPromise !== undefined) {
      // Idempotent; a force stop still escalates a graceful one in progress.
      if (force) this.#forceStop(new BatcherStoppedError("batcher was force-stopped"));
      return this.#stopPromise;
    }
    this.#stopPromise = new Promise<void>((resolve, reject) => {
      this.#stopResolve = resolve;
      this.#stopReject = reject;
    });
    if (this.#logger !== undefined) {
      this.#log({
        type: "stop",
        batcher: this.#name,
        force,
        queued: this.#queued,
        inFlight: this.#inFlight,
      });
    }
    if (force) {
      this.#forceStop(new BatcherStoppedError("batcher was force-stopped"));
    } else if (this.#state === State.New) {
      this.#stopped(false);
    } else {
      this.#state = State.Stopping;
      if (timeout !== Number.POSITIVE_INFINITY) {
        this.#stopTimer = this.#time.clock.setTimeout(() => {
          this.#stopTimer = undefined;
          this.#forceStop(
            new BatcherStoppedError(`batcher stop timed out after ${timeout} ms and was forced`),
          );
        }, timeout);
      }
      this.#pump(true);
      this.#checkIdle();
    }
    return this.#stopPromise;
  }

  #forceStop(error: BatcherStoppedError): void {
    if (this.#state === State.Stopped) {
      // Drained already, but the owned executor may still be closing gracefully: hurry it.
      if (this.#closing === "graceful") this.#stopped(true);
      return;
    }
    const escalating = this.#state === State.Stopping;
    this.#state = State.Stopped; // before settling anything: no new item gets in meanwhile
    if (this.#logger !== undefined && escalating) {
      this.#log({
        type: "stop",
        batcher: this.#name,
        force: true,
        queued: this.#queued,
        inFlight: this.#inFlight,
      });
    }
    // Take everything out first, then settle. Nobody is left to cancel: drop every listener and
    // timeout at once.
    this.#signals?.clear();
    this.#timeouts?.clear();
    const entries: Entry[] = [];
    for (const lane of this.#lanes.clear()) {
      for (const queue of lane.queues) for (const entry of queue.drain()) entries.push(entry);
      lane.dedupe?.clear();
      lane.distinctWeight = 0;
      lane.size = 0;
      lane.refresh();
    }
    this.#keys?.clear();
    this.#full.clear();
    this.#queued = 0;
    const waiters = this.#waiters;
    for (let i = this.#waitersHead; i < waiters.length; i++) {
      const cohort = waiters[i];
      if (cohort?.state === CohortState.Waiting) entries.push((cohort.waiting as Waiter).resolve);
    }
    this.#waiters = [];
    this.#waitersHead = 0;
    this.#waiting = 0;
    const batches = this.#running.clear();
    this.#ready.length = 0;
    this.#retryReady = [];
    this.#inFlight = 0;
    this.#busy = 0;
    // Callers of running batches are counted per batch, for their `batchEnd`.
    const stranded: number[] = [];
    for (const batch of batches) {
      const before = entries.length;
      for (const entry of batch.entries) if (entry !== CANCELLED) entries.push(entry);
      stranded.push(entries.length - before);
    }
    this.#leave("stopped", entries, error);
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i] as Batch<T>;
      batch.done = true;
      batch.busy = false;
      if (batch.timer !== undefined) {
        this.#time.clock.clearTimeout(batch.timer);
        batch.timer = undefined;
      }
      batch.entries = NO_ENTRIES;
      // Every batch that started ends: its callers were rejected by the stop.
      if (!Number.isNaN(batch.startedAt))
        this.#ended(batch, 0, stranded[i] as number, 0, true, error);
      batch.abort(error);
    }
    const flushWaiters = this.#flushWaiters;
    this.#flushWaiters = [];
    for (const waiter of flushWaiters) waiter.resolve();
    this.#checkIdle();
    this.#stopped(true);
  }

  /** Everything has settled: close the owned executor, if any, then settle `stop()`. */
  #stopped(force: boolean): void {
    this.#state = State.Stopped;
    this.#timer.clear();
    const executor = this.#ownedExecutor;
    if (executor === undefined) {
      this.#settleStop(undefined, false);
      return;
    }
    if (
      this.#closing === "forced" ||
      this.#closing === "closed" ||
      (this.#closing === "graceful" && !force)
    ) {
      return;
    }
    const closing = force ? "forced" : "graceful";
    this.#closing = closing;
    let closed: Promise<void>;
    try {
      closed = Promise.resolve(executor.close({ force }));
    } catch (error) {
      closed = Promise.reject(error);
    }
    closed.then(
      () => {
        if (this.#closing !== closing) return;
        this.#closing = "closed";
        this.#settleStop(undefined, false);
      },
      (error: unknown) => {
        // A graceful close cut short by a forced one may fail: the forced one decides.
        if (this.#closing !== closing) return;
        this.#closing = "closed";
        this.#settleStop(error, true);
      },
    );
  }

  #settleStop(error: unknown, failed: boolean): void {
    if (this.#stopTimer !== undefined) {
      this.#time.clock.clearTimeout(this.#stopTimer);
      this.#stopTimer = undefined;
    }
    if (failed) this.#stopReject?.(error);
    else this.#stopResolve?.();
  }

  #log(event: Parameters<BatcherLogger>[0]): void {
    try {
      (this.#logger as BatcherLogger)(event);
    } catch {
      // A logger must not break the batcher.
    }
  }
}
