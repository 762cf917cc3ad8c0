/**
 * Stopping a worker batcher, and closing a pool directly: a force stop aborts the batches running
 * in the threads (a thread spinning in a synchronous loop included); a graceful stop lets them
 * finish, then closes the pool; no thread is left once `stop()` (or `close()`) resolves.
 *
 * `slow.ts` posts `{ started }` when a batch begins, seen here as the pool's 'message' event, so
 * the tests act while a batch is running without guessing how long anything takes.
 */
import { once } from "node:events";
import type { Worker } from "node:worker_threads";
import { BatcherStoppedError, createBatcher } from "async-batcher";
import { createWorkerBatcher, WorkerPoolExecutor } from "async-batcher/worker";
import { afterEach, describe, expect, it } from "vitest";
import { execArgv, exited, fixture, liveThreads } from "../helpers/workers.js";

/** A gate the "wait" batches of slow.ts block on until `open()`. */
function gate() {
  const cells = new Int32Array(new SharedArrayBuffer(4));
  return {
    cells,
    open() {
      Atomics.store(cells, 0, 1);
      Atomics.notify(cells, 0);
    },
  };
}

/** Resolves once the pool's threads report `count` batches started. */
async function started(pool: { on: WorkerPoolExecutor<string, string>["pool"]["on"] }, count = 1) {
  const batches: unknown[] = [];
  return new Promise<unknown[]>((resolve) => {
    const listener = (message: { started?: unknown }) => {
      if (message?.started === undefined) return;
      batches.push(message.started);
      if (batches.length === count) resolve(batches);
    };
    pool.on("message", listener);
  });
}

/** Records how a promise settled, without letting a rejection go unhandled. */
function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

const openGates: (() => void)[] = [];
afterEach(() => {
  // A failed test must not leave a thread blocked on its gate.
  for (const open of openGates.splice(0)) open();
});

describe("force stop", () => {
  it("aborts a batch running in a thread, rejects its callers, and leaves no thread", async () => {
    const batcher = createWorkerBatcher<string, string>(fixture("slow.ts"), {
      maxThreads: 2,
      minThreads: 2,
      maxQueueTime: 0,
      maxBatchSize: 1,
      execArgv,
    });
    const running = started(batcher.executor.pool, 2);
    // Both threads spin in a synchronous loop: only terminating them stops them.
    const results = [track(batcher.process("spin")), track(batcher.process("spin"))];
    const queued = track(batcher.process("queued")); // concurrency 2: waits in the queue
    await running;
    const threads: Worker[] = batcher.executor.pool.threads;
    expect(threads).toHaveLength(2);

    await batcher.stop({ force: true });
    // Everything the pool ever started has exited by the time stop() resolves.
    expect(threads.every(exited)).toBe(true);
    expect(batcher.executor.threads).toBe(0);
    expect(batcher.executor.pool.threads).toHaveLength(0);
    expect(await liveThreads()).toBe(0);

    await turns(2);
    for (const result of [...results, queued]) {
      expect(result.settled).toBe(true);
      expect(result.error).toBeInstanceOf(BatcherStoppedError);
    }
  });

  it("escalates a graceful stop that waits for a batch that never ends", async () => {
    const { cells, open } = gate();
    openGates.push(open);
    const batcher = createWorkerBatcher<string, string>(fixture("slow.ts"), {
      maxThreads: 1,
      maxQueueTime: 0,
      workerData: cells,
      execArgv,
    });
    const running = started(batcher.executor.pool);
    const result = track(batcher.process("wait"));
    await running;
    const threads = batcher.executor.pool.threads;

    const graceful = batcher.stop();
    await turns(5);
    expect(result.settled).toBe(false); // still draining: the batch is running
    expect(batcher.executor.closed).toBe(false); // the pool is closed only after the drain

    await batcher.stop({ force: true });
    await graceful;
    expect(threads.every(exited)).toBe(true);
    expect(await liveThreads()).toBe(0);
    await turns(2);
    expect(result.error).toBeInstanceOf(BatcherStoppedError);
  });

  it("escalates when the stop's timeout passes", async () => {
    const { cells, open } = gate();
    openGates.push(open);
    const batcher = createWorkerBatcher<string, string>(fixture("slow.ts"), {
      maxThreads: 1,
      maxQueueTime: 0,
      workerData: cells,
      execArgv,
    });
    const running = started(batcher.executor.pool);
    const result = track(batcher.process("wait"));
    await running;

    await batcher.stop({ timeout: 20 });
    expect(batcher.executor.threads).toBe(0);
    expect(await liveThreads()).toBe(0);
    await turns(2);
    expect(result.error).toBeInstanceOf(BatcherStoppedError);
  });
});

describe("graceful stop", () => {
  it("lets running and queued batches finish in the threads, then closes the pool", async () => {
    const { cells, open } = gate();
    openGates.push(open);
    const batcher = createWorkerBatcher<string, string>(fixture("slow.ts"), {
      maxThreads: 1,
      maxBatchSize: 1,
      maxQueueTime: 0,
      workerData: cells,
      execArgv,
    });
    const running = started(batcher.executor.pool);
    const first = track(batcher.process("wait"));
    const second = track(batcher.process("second"));
    await running;

    const stopped = track(batcher.stop());
    await expect(batcher.process("late")).rejects.toBeInstanceOf(BatcherStoppedError);
    await turns(5);
    expect(first.settled).toBe(false);
    expect(stopped.settled).toBe(false);
    expect(batcher.executor.closed).toBe(false);

    open();
    await batcher.stop();
    expect(first.value).toBe("wait");
    expect(second.value).toBe("second");
    expect(batcher.executor.closed).toBe(true);
    expect(batcher.executor.threads).toBe(0);
    expect(await liveThreads()).toBe(0);
  });
});

describe("closing a pool directly", () => {
  it("close(): waits for the running batch, refuses new ones, then stops every thread", async () => {
    const { cells, open } = gate();
    openGates.push(open);
    const executor = new WorkerPoolExecutor<string, string>({
      filename: fixture("slow.ts"),
      maxThreads: 1,
      workerData: cells,
      execArgv,
    });
    // concurrency 2: the late item gets a slot of its own while the first batch runs.
    const batcher = createBatcher<string, string>(() => [], {
      executor,
      maxQueueTime: 0,
      concurrency: 2,
    });
    const running = started(executor.pool);
    const result = track(batcher.process("wait"));
    await running;

    const closed = track(executor.close());
    expect(executor.closed).toBe(true);
    await expect(batcher.process("late")).rejects.toBeInstanceOf(BatcherStoppedError);
    await turns(5);
    expect(closed.settled).toBe(false);

    open();
    await executor.close();
    expect(result.value).toBe("wait");
    expect(executor.threads).toBe(0);
    expect(await liveThreads()).toBe(0);
    await batcher.stop();
  });

  it("close({ force: true }): rejects the running batch with BatcherStoppedError, not a crash", async () => {
    const executor = new WorkerPoolExecutor<string, string>({
      filename: fixture("slow.ts"),
      maxThreads: 1,
      execArgv,
    });
    const batcher = createBatcher<string, string>(() => [], { executor, maxQueueTime: 0 });
    const running = started(executor.pool);
    const result = track(batcher.process("spin"));
    await running;
    const threads = executor.pool.threads;

    // A graceful close would wait forever for the spinning thread; the forced one hurries it.
    const graceful = executor.close();
    await executor.close({ force: true });
    await graceful;
    expect(threads.every(exited)).toBe(true);
    expect(await liveThreads()).toBe(0);
    await turns(2);
    expect(result.error).toBeInstanceOf(BatcherStoppedError);
    await batcher.stop();
  });

  it("await using closes it at the end of the block", async () => {
    let threads: Worker[] = [];
    {
      await using executor = new WorkerPoolExecutor<number, number>({
        filename: fixture("double.mjs"),
        minThreads: 1,
        execArgv,
      });
      const [thread] = await once(executor.pool, "workerCreate").then(() => executor.pool.threads);
      threads = thread === undefined ? [] : [thread];
    }
    expect(threads).toHaveLength(1);
    expect(threads.every(exited)).toBe(true);
  });
});
