import { fileURLToPath, pathToFileURL } from "node:url";
import type { Worker } from "node:worker_threads";
import { Piscina } from "piscina";
import { BatcherStoppedError, WorkerCrashedError } from "../errors.js";
import type { BatchContext, BatchResult, Executor, ExecutorCloseOptions } from "../types.js";
import { resolveWorkerPoolOptions, type WorkerPoolOptions } from "./options.js";
import {
  type Transferable,
  transferListOf,
  type WorkerReply,
  type WorkerTask,
} from "./protocol.js";
import { deserializeError, deserializeThrown } from "./serialize.js";

// Defined in CommonJS only (the CJS build, tsx in CJS mode); `typeof` reads it safely in ESM.
declare const __filename: string | undefined;

/**
 * The entry script beside this module, with this module's extension: `entry.js` beside the ESM
 * build, `entry.cjs` beside the CJS build, `entry.ts` beside the sources (tsx, Vitest).
 */
function entryScript(): string {
  // In the CJS build, import.meta is an empty object: __filename must be read first.
  const here =
    typeof __filename === "string" ? pathToFileURL(__filename) : new URL(import.meta.url);
  const extension = /\.[cm]?[jt]s$/.exec(here.pathname)?.[0] ?? ".js";
  return fileURLToPath(new URL(`./entry${extension}`, here));
}

function isDataCloneError(error: unknown): boolean {
  return (
    typeof DOMException === "function" &&
    error instanceof DOMException &&
    error.name === "DataCloneError"
  );
}

function describeCrash(error: unknown): string {
  if (error instanceof Error) return error.message;
  // What Node.js makes of a DataCloneError thrown in the thread: piscina could not post the
  // results back, and the thread died of it.
  return "the thread died without an error to report (results that cannot be cloned do this)";
}

/**
 * Runs batches in a pool of worker threads (piscina), so that synchronous and CPU-bound batch
 * functions leave the event loop free. Pass it as a batcher's `executor`, or let
 * `createWorkerBatcher` make and own one.
 *
 * Each batch is posted to a free thread, which calls the worker module's exported function on it.
 * Per-item `Error` results and thrown errors come back with their `name`, `message`, `code` and
 * `stack`. A thread that dies while running a batch (`process.exit()`, an uncaught exception, out
 * of memory) rejects that batch's items with `WorkerCrashedError` and is replaced.
 *
 * @typeParam T - the item type
 * @typeParam R - the result type
 */
export class WorkerPoolExecutor<T, R> implements Executor<T, R>, AsyncDisposable {
  readonly #pool: Piscina;
  readonly #module: string;
  readonly #exportName: string;
  readonly #transfer: ((batch: T[]) => readonly Transferable[]) | undefined;
  readonly #maxThreads: number;
  /**
   * Every thread the pool started, until it has exited. piscina terminates a thread whose task
   * was aborted without waiting for it, so `close()` waits for these, not only the pool's own.
   */
  readonly #threads = new Set<Worker>();
  /** Batches posted and not settled yet. */
  #running = 0;
  #drainWaiters: (() => void)[] = [];
  #state: "open" | "closing" | "forced" = "open";
  #gracefulClose: Promise<void> | undefined = undefined;
  #destroyed: Promise<void> | undefined = undefined;

  /**
   * Checks every option (a bad one throws a `TypeError`/`RangeError` naming it, before any
   * thread starts), then starts `minThreads` threads.
   */
  constructor(options: WorkerPoolOptions<T>) {
    const resolved = resolveWorkerPoolOptions(options);
    this.#module = resolved.module;
    this.#exportName = resolved.exportName;
    this.#transfer = resolved.transfer;
    this.#maxThreads = resolved.maxThreads;
    this.#pool = new Piscina({
      filename: entryScript(),
      maxThreads: resolved.maxThreads,
      ...(resolved.minThreads === undefined ? {} : { minThreads: resolved.minThreads }),
      idleTimeout: resolved.idleTimeout,
      ...(resolved.resourceLimits === undefined ? {} : { resourceLimits: resolved.resourceLimits }),
      ...(resolved.env === undefined ? {} : { env: resolved.env }),
      ...(resolved.workerData === undefined ? {} : { workerData: resolved.workerData }),
      ...(resolved.execArgv === undefined ? {} : { execArgv: resolved.execArgv }),
    });
    // A thread that dies between batches is reported as an 'error' event, which would crash the
    // process without a listener. The pool replaces the thread; nothing else is owed to anyone.
    this.#pool.on("error", () => {});
    this.#pool.on("workerCreate", () => this.#track());
    this.#track();
  }

  /** Most threads, so most batches running at once. */
  get maxThreads(): number {
    return this.#maxThreads;
  }

  /** Threads alive now: started and not yet exited (including those being stopped). */
  get threads(): number {
    this.#track();
    return this.#threads.size;
  }

  /**
   * The piscina pool, for monitoring (`utilization`, `histogram`, `threads`, its events). Run
   * nothing on it directly: its tasks speak this executor's protocol.
   */
  get pool(): Piscina {
    return this.#pool;
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#state !== "open";
  }

  /**
   * Runs one batch in a worker thread. Rejects with the worker function's error (rebuilt), with
   * `WorkerCrashedError` when the thread died, with `context.signal.reason` when the signal
   * aborted it (the thread is then stopped), and with `BatcherStoppedError` once the executor
   * is closed.
   */
  async run(batch: T[], context: BatchContext): Promise<BatchResult<R>> {
    if (this.#state !== "open") throw new BatcherStoppedError("worker pool is closed");
    const signal = context.signal;
    if (signal.aborted) throw signal.reason;
    const transfer = this.#transfer;
    const transferList = transfer === undefined ? undefined : transferListOf(transfer(batch));
    const task: WorkerTask<T> = {
      module: this.#module,
      exportName: this.#exportName,
      batch,
      batchId: context.batchId,
      key: context.key,
    };
    let reply: WorkerReply;
    this.#running++;
    try {
      const pending = this.#pool.run(task, {
        signal,
        ...(transferList === undefined ? {} : { transferList: transferList as never }),
      }) as Promise<WorkerReply>;
      this.#track(); // run() may have started a thread
      reply = await pending;
    } catch (error) {
      throw this.#failure(error, context);
    } finally {
      if (--this.#running === 0) this.#releaseDrainWaiters();
    }
    if (!reply.ok) throw deserializeThrown(reply.error);
    if (reply.errors !== undefined) {
      // The array came through structured clone: it is ours to fill in.
      const results = reply.results as unknown[];
      for (const [index, error] of reply.errors) results[index] = deserializeError(error);
    }
    return reply.results as BatchResult<R>;
  }

  /**
   * Closes the pool; resolves once every thread it started has exited. Graceful (the default):
   * waits for the running batches first; new ones reject with `BatcherStoppedError`. Forced:
   * stops the threads at once, and the running batches reject with `BatcherStoppedError`.
   * A forced close during a graceful one hurries it. Idempotent.
   */
  close(options?: ExecutorCloseOptions): Promise<void> {
    if (options?.force === true) {
      if (this.#state !== "forced") {
        this.#state = "forced";
        this.#releaseDrainWaiters();
      }
      return this.#destroy();
    }
    if (this.#state === "open") this.#state = "closing";
    this.#gracefulClose ??= this.#drained().then(() => this.#destroy());
    return this.#gracefulClose;
  }

  /** A graceful `close()`, so that `await using executor = new WorkerPoolExecutor(...)` works. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Why a batch got no answer from its thread. */
  #failure(error: unknown, context: BatchContext): unknown {
    // Aborted: piscina rejects with its own AbortError; the caller expects the signal's reason.
    if (context.signal.aborted) return context.signal.reason;
    if (this.#state === "forced") {
      return new BatcherStoppedError("worker pool was force-closed while the batch was running");
    }
    // The batch could not be posted (an item that structured clone refuses): not a crash, the
    // thread never saw it.
    if (isDataCloneError(error)) return error;
    return new WorkerCrashedError(
      `worker thread crashed while running batch ${context.batchId}: ${describeCrash(error)}`,
      { cause: error },
    );
  }

  /** Adds the pool's current threads to `#threads`; each leaves it when it exits. */
  #track(): void {
    for (const thread of this.#pool.threads) {
      // threadId is -1 once the thread has stopped: its 'exit' may already have been emitted.
      if (this.#threads.has(thread) || thread.threadId === -1) continue;
      this.#threads.add(thread);
      thread.once("exit", () => this.#threads.delete(thread));
    }
  }

  #drained(): Promise<void> {
    if (this.#running === 0 || this.#state === "forced") return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #releaseDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #destroy(): Promise<void> {
    this.#destroyed ??= this.#terminateAll();
    return this.#destroyed;
  }

  async #terminateAll(): Promise<void> {
    // Rounds, because piscina replaces a thread that exits while the pool is not being destroyed
    // (a thread stopped by an abort, whose exit comes later): terminate the strays first, then
    // destroy the pool with whatever replacements their exits started. Two rounds at most in
    // practice; the bound only guards against a pool that keeps starting threads.
    for (let round = 0; round < 10; round++) {
      this.#track();
      const pooled = new Set(this.#pool.threads);
      const strays = [...this.#threads].filter((thread) => !pooled.has(thread));
      if (strays.length === 0 && pooled.size === 0) return;
      await Promise.all(strays.map((thread) => thread.terminate()));
      await this.#pool.destroy();
    }
  }
}
