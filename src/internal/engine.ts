import { BatcherStoppedError, BatchResultError, QueueFullError } from "../errors.js";
import type { BatcherLogger, CutReason, ResolvedOptions } from "../options.js";
import type { BatchFunction, BatchResult, Executor } from "../types.js";
import { Batch, type FlushWaiter, RunningList } from "./batch.js";
import { afterTick } from "./clock.js";
import { resolveLogger } from "./debug.js";
import { ItemQueue, type Settle } from "./queue.js";
import { DeadlineTimer, EPSILON_MS, TickClock } from "./timer.js";

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
export function rejectCaller(settle: Settle, error: unknown): void {
  settle(Promise.reject(error));
}

function rejectAll(settles: readonly Settle[], error: unknown): void {
  for (let i = 0; i < settles.length; i++) rejectCaller(settles[i] as Settle, error);
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

const NO_SETTLES: readonly Settle[] = [];

/**
 * The batcher's engine: queue, scheduler and dispatcher in one small state machine.
 *
 * - The queue holds waiting items FIFO. A batch is *cut* (taken off the queue and counted in
 *   flight) when it is due and a concurrency slot is free; it is *started* (the batch function is
 *   called) at once, or on the next microtask when the cut happened inside a public method, so
 *   `process()` never runs user code synchronously.
 * - One timer at most (`DeadlineTimer`), armed for the oldest waiting item's deadline. It may fire
 *   early (a later item became the oldest, or the host's timers round down); the pump then finds
 *   nothing due and re-arms for what is left.
 * - Time is read through the clock at most once per tick (`TickClock`), not once per item.
 */
export class Engine<T, R> {
  readonly #run: BatchFunction<T, R>;
  readonly #time: TickClock;
  /** At most one timer, for the oldest waiting item's deadline. */
  readonly #timer: DeadlineTimer;
  readonly #logger: BatcherLogger | undefined;
  readonly #name: string;
  #maxBatchSize: number;
  #maxQueueTime: number;
  #concurrency: number;
  #maxQueueSize: number;

  readonly #queue = new ItemQueue<T>();
  /** Batches cut and not yet settled (started, or waiting in `#ready`). */
  readonly #running = new RunningList<T>();
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
  }

  get name(): string {
    return this.#name;
  }

  get queueSize(): number {
    return this.#queue.size;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get isRunning(): boolean {
    return this.#state === State.Running || this.#state === State.Stopping;
  }

  // ---------------------------------------------------------------------------------------------
  // The hot path.

  submit(item: T): Promise<R> {
    if (this.#state >= State.Stopping) return Promise.reject(new BatcherStoppedError());
    const queue = this.#queue;
    if (queue.size >= this.#maxQueueSize) {
      return Promise.reject(new QueueFullError(this.#maxQueueSize));
    }
    this.#state = State.Running;
    const promise = new Promise<R>(capture as (resolve: (value: R) => void) => void);
    queue.push(item, captured, this.#time.now());
    const size = queue.size;
    if (size >= this.#maxBatchSize) {
      if (this.#running.size < this.#concurrency) this.#pump(true);
    } else if (size === 1) {
      this.#schedule();
    }
    return promise;
  }

  // ---------------------------------------------------------------------------------------------
  // Scheduling: when is the oldest item due?

  /** Makes sure something will wake the batcher when the oldest waiting item falls due. */
  #schedule(): void {
    const maxQueueTime = this.#maxQueueTime;
    if (maxQueueTime === 0) {
      if (!this.#tickScheduled) {
        this.#tickScheduled = true;
        afterTick(this.#onTick);
      }
    } else if (maxQueueTime !== Number.POSITIVE_INFINITY) {
      this.#timer.arm(this.#queue.headArrival() + maxQueueTime);
    }
  }

  readonly #onTick = (): void => {
    this.#tickScheduled = false;
    this.#tickDue = this.#queue.tailSeq;
    this.#pump(false);
  };

  /** Why the oldest waiting items should be cut now, or `undefined` if they should wait. */
  #dueReason(): CutReason | undefined {
    const queue = this.#queue;
    if (queue.size >= this.#maxBatchSize) return "size";
    if (this.#state === State.Stopping) return "stop";
    const head = queue.headSeq;
    if (head < this.#flushSeq) return "flush";
    const maxQueueTime = this.#maxQueueTime;
    if (maxQueueTime === 0) return head < this.#tickDue ? "time" : undefined;
    if (maxQueueTime === Number.POSITIVE_INFINITY) return undefined;
    return this.#time.now() >= queue.headArrival() + maxQueueTime - EPSILON_MS ? "time" : undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Dispatching: cut due batches while a slot is free.

  /**
   * Cuts every due batch that a free slot can take. `fromUser`: called inside a public method, so
   * batches are started on the next microtask instead of now.
   */
  #pump(fromUser: boolean): void {
    // Re-entered from a batch that settled synchronously: the loop below goes on by itself.
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      const queue = this.#queue;
      while (queue.size > 0 && this.#running.size < this.#concurrency) {
        const reason = this.#dueReason();
        if (reason === undefined) {
          this.#schedule();
          break;
        }
        const batch = this.#cut(reason);
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
    } finally {
      this.#pumping = false;
    }
  }

  #cut(reason: CutReason): Batch<T> {
    const queue = this.#queue;
    const firstSeq = queue.headSeq;
    const logger = this.#logger;
    const waitMs = logger === undefined ? 0 : this.#time.clock.now() - queue.headArrival();
    const { items, settles } = queue.take(Math.min(queue.size, this.#maxBatchSize));
    const batch = new Batch(this.#nextBatchId++, reason, items, settles);
    this.#running.add(batch);
    this.#inFlight += batch.size;
    const waiters = this.#flushWaiters;
    for (let i = 0; i < waiters.length; i++) {
      const waiter = waiters[i] as FlushWaiter;
      if (firstSeq < waiter.until) {
        waiter.pending++;
        if (batch.waiters === undefined) batch.waiters = [waiter];
        else batch.waiters.push(waiter);
      }
    }
    if (logger !== undefined) {
      this.#log({
        type: "batchCut",
        batcher: this.#name,
        batchId: batch.id,
        size: batch.size,
        reason,
        waitMs,
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
    if (this.#logger !== undefined) batch.startedAt = this.#time.clock.now();
    let result: unknown;
    try {
      result = this.#run(batch.items, batch.context);
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

  // ---------------------------------------------------------------------------------------------
  // Settling.

  #complete(batch: Batch<T>, result: unknown): void {
    if (batch.done) return;
    const settles = batch.settles;
    const size = settles.length;
    if (result === undefined) {
      for (let i = 0; i < size; i++) (settles[i] as Settle)(undefined);
      this.#finish(batch, size, false, undefined);
      return;
    }
    if (!Array.isArray(result) || result.length !== size) {
      const error = new BatchResultError(
        size,
        Array.isArray(result) ? result.length : describeResult(result),
      );
      this.#fail(batch, error);
      return;
    }
    let rejected = 0;
    for (let i = 0; i < size; i++) {
      const value: unknown = result[i];
      if (typeof value === "object" && value !== null && value instanceof Error) {
        rejectCaller(settles[i] as Settle, value);
        rejected++;
      } else {
        (settles[i] as Settle)(value);
      }
    }
    this.#finish(batch, size - rejected, false, undefined);
  }

  #fail(batch: Batch<T>, error: unknown): void {
    if (batch.done) return;
    rejectAll(batch.settles, error);
    this.#finish(batch, 0, true, error);
  }

  /** Bookkeeping once a batch's callers are settled: frees its slot and moves on. */
  #finish(batch: Batch<T>, resolved: number, failed: boolean, error: unknown): void {
    batch.done = true;
    batch.settles = NO_SETTLES;
    this.#running.remove(batch);
    this.#inFlight -= batch.size;
    if (this.#logger !== undefined) {
      this.#log({
        type: "batchDone",
        batcher: this.#name,
        batchId: batch.id,
        size: batch.size,
        durationMs: this.#time.clock.now() - batch.startedAt,
        outcome: failed ? "error" : "ok",
        resolved,
        rejected: batch.size - resolved,
        ...(failed ? { error } : {}),
      });
    }
    const waiters = batch.waiters;
    if (waiters !== undefined) {
      for (const waiter of waiters) waiter.pending--;
      this.#settleFlushWaiters();
    }
    this.#pump(false);
    this.#checkIdle();
  }

  #settleFlushWaiters(): void {
    const head = this.#queue.headSeq;
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
    if (this.#queue.size !== 0 || this.#running.size !== 0) return;
    // Idle: hold no timer, so a program that never calls stop() can exit.
    this.#timer.clear();
    const idle = this.#idleWaiters;
    if (idle.length > 0) {
      this.#idleWaiters = [];
      for (const resolve of idle) resolve();
    }
    if (this.#state === State.Stopping) this.#stopped(false);
  }

  // ---------------------------------------------------------------------------------------------
  // Public control.

  flush(): Promise<void> {
    const queue = this.#queue;
    if (queue.size === 0) return Promise.resolve();
    const until = queue.tailSeq;
    this.#flushSeq = until;
    const promise = new Promise<void>((resolve) => {
      this.#flushWaiters.push({ until, pending: 0, resolve });
    });
    this.#pump(true);
    return promise;
  }

  onIdle(): Promise<void> {
    if (this.#queue.size === 0 && this.#running.size === 0) return Promise.resolve();
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
        queued: this.#queue.size,
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
        queued: this.#queue.size,
        inFlight: this.#inFlight,
      });
    }
    rejectAll(this.#queue.drain(), error);
    for (const batch of this.#running.clear()) {
      batch.done = true;
      rejectAll(batch.settles, error);
      batch.settles = NO_SETTLES;
      batch.abort(error);
    }
    this.#ready.length = 0;
    this.#inFlight = 0;
    const waiters = this.#flushWaiters;
    this.#flushWaiters = [];
    for (const waiter of waiters) waiter.resolve();
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
