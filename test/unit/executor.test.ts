/**
 * The core `executor` option, with a hand-written in-memory executor (no threads): every batch
 * goes through `run` and never through `processBatch`; results follow the inline rules; `stop()`
 * closes the executor only with `closeExecutor`, after the drain (graceful) or after rejecting
 * everyone and aborting the running batches (forced), and settles only once `close()` has; a
 * graceful close that hangs is escalated by `stop({ force: true })` or by the stop's `timeout`.
 */
import {
  AsyncBatcher,
  type BatchContext,
  type BatcherOptions,
  BatcherStoppedError,
  type BatchResult,
  BatchResultError,
  createBatcher,
  type Executor,
  type ExecutorCloseOptions,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { runJobs, track } from "../helpers/manual.js";

interface Run {
  batch: number[];
  context: BatchContext;
  resolve: (results: BatchResult<number>) => void;
  reject: (error: unknown) => void;
}

interface Close {
  options: ExecutorCloseOptions | undefined;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** An executor whose runs and closes stay pending until the test settles them. */
function manualExecutor() {
  const runs: Run[] = [];
  const closes: Close[] = [];
  const executor: Executor<number, number> = {
    run: (batch, context) =>
      new Promise((resolve, reject) => {
        runs.push({ batch: [...batch], context, resolve, reject });
      }),
    close: (options) =>
      new Promise((resolve, reject) => {
        closes.push({ options, resolve, reject });
      }),
  };
  return { executor, runs, closes };
}

const processBatch = vi.fn((batch: number[]) => batch.map(() => -1));

function batcherWith(executor: Executor<number, number>, options: BatcherOptions<number, number>) {
  return createBatcher<number, number>(processBatch, { maxQueueTime: 10, ...options, executor });
}

const double = (run: Run | undefined) => run?.resolve(run.batch.map((x) => x * 2));

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  processBatch.mockClear();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("running batches", () => {
  it("hands every batch to run(), with its context, and never calls processBatch", async () => {
    const { executor, runs } = manualExecutor();
    const batcher = batcherWith(executor, { maxBatchSize: 2, concurrency: 2 });
    const results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(runs.map((run) => run.batch)).toEqual([[1, 2], [3]]);
    expect(runs.map((run) => run.context.batchId)).toEqual([1, 2]);
    expect(runs[0]?.context.signal.aborted).toBe(false);

    double(runs[0]);
    double(runs[1]);
    expect(await results).toEqual([2, 4, 6]);
    expect(processBatch).not.toHaveBeenCalled();
    await batcher.stop();
  });

  it("does not call a subclass's processBatch either", async () => {
    const { executor, runs } = manualExecutor();
    const called = vi.fn();
    class Subclass extends AsyncBatcher<number, number> {
      processBatch(batch: number[]): number[] {
        called();
        return batch;
      }
    }
    const batcher = new Subclass({ executor, maxQueueTime: 0 });
    const result = batcher.process(5);
    await runJobs();
    double(runs[0]);
    expect(await result).toBe(10);
    expect(called).not.toHaveBeenCalled();
  });

  it("settles callers by the inline rules: per-item errors, a failed run, a wrong length", async () => {
    const { executor, runs } = manualExecutor();
    const batcher = batcherWith(executor, { maxQueueTime: 0 });

    const itemError = new Error("item 2 is bad");
    const mixed = [1, 2].map((i) => batcher.process(i));
    await runJobs();
    runs[0]?.resolve([10, itemError]);
    await expect(mixed[0]).resolves.toBe(10);
    await expect(mixed[1]).rejects.toBe(itemError);

    const runError = new Error("run failed");
    const failed = [3, 4].map((i) => batcher.process(i));
    await runJobs();
    runs[1]?.reject(runError);
    for (const result of failed) await expect(result).rejects.toBe(runError);

    const short = [5, 6].map((i) => batcher.process(i));
    await runJobs();
    runs[2]?.resolve([1]);
    for (const result of short) await expect(result).rejects.toBeInstanceOf(BatchResultError);

    // The batcher goes on.
    const after = batcher.process(7);
    await runJobs();
    double(runs[3]);
    await expect(after).resolves.toBe(14);
  });

  it("rejects the batch when run() throws synchronously", async () => {
    const error = new Error("cannot post the batch");
    const executor: Executor<number, number> = {
      run: () => {
        throw error;
      },
      close: async () => {},
    };
    const batcher = batcherWith(executor, { maxQueueTime: 0 });
    await expect(batcher.process(1)).rejects.toBe(error);
  });
});

describe("who closes the executor", () => {
  it.each([{ force: false }, { force: true }])(
    "stop(%o) leaves it open without closeExecutor",
    async ({ force }) => {
      const { executor, runs, closes } = manualExecutor();
      const batcher = batcherWith(executor, {});
      const result = track(batcher.process(1));
      await vi.advanceTimersByTimeAsync(10);
      const stopped = batcher.stop({ force });
      if (!force) double(runs[0]);
      await stopped;
      await runJobs();
      expect(result.settled).toBe(true);
      expect(closes).toHaveLength(0);
    },
  );

  it("with closeExecutor, a graceful stop drains first, then closes, and resolves after close", async () => {
    const { executor, runs, closes } = manualExecutor();
    const batcher = batcherWith(executor, { closeExecutor: true });
    const result = batcher.process(1);
    const stopped = track(batcher.stop());
    await runJobs();
    expect(runs).toHaveLength(1);
    expect(closes).toHaveLength(0); // the batch is still running

    double(runs[0]);
    await runJobs();
    await expect(result).resolves.toBe(2);
    expect(closes).toHaveLength(1);
    expect(closes[0]?.options).toEqual({ force: false });
    expect(stopped.settled).toBe(false); // close has not resolved yet
    expect(batcher.isRunning).toBe(false);

    closes[0]?.resolve();
    await runJobs();
    expect(stopped).toEqual({ settled: true });
    expect(closes).toHaveLength(1);
  });

  it("with closeExecutor, a force stop rejects everyone, aborts the running signals, then close({ force: true })", async () => {
    const { executor, runs, closes } = manualExecutor();
    const batcher = batcherWith(executor, { closeExecutor: true, maxBatchSize: 1 });
    const inFlight = batcher.process(1).catch((error: unknown) => error);
    await runJobs();
    const signal = runs[0]?.context.signal as AbortSignal;
    const aborted: unknown[] = [];
    signal.addEventListener("abort", () => aborted.push(closes.length));

    const stopped = track(batcher.stop({ force: true }));
    const error = await inFlight;
    expect(error).toBeInstanceOf(BatcherStoppedError);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(error);
    expect(aborted).toEqual([0]); // aborted before close was called
    expect(closes.map((close) => close.options)).toEqual([{ force: true }]);
    await runJobs();
    expect(stopped.settled).toBe(false);

    closes[0]?.resolve();
    await runJobs();
    expect(stopped).toEqual({ settled: true });
    // What the run returns now is dropped.
    double(runs[0]);
    await runJobs();
  });

  it.each([{ force: false }, { force: true }])(
    "closes it even when nothing was ever processed: stop(%o)",
    async ({ force }) => {
      const { executor, closes } = manualExecutor();
      const batcher = batcherWith(executor, { closeExecutor: true });
      const stopped = batcher.stop({ force });
      expect(closes.map((close) => close.options)).toEqual([{ force }]);
      closes[0]?.resolve();
      await expect(stopped).resolves.toBeUndefined();
    },
  );
});

describe("when close fails", () => {
  it.each([{ force: false }, { force: true }])(
    "stop(%o) rejects with close's error, and keeps returning that promise",
    async ({ force }) => {
      const { executor, closes } = manualExecutor();
      const batcher = batcherWith(executor, { closeExecutor: true });
      const stopped = batcher.stop({ force });
      const error = new Error("cannot close");
      closes[0]?.reject(error);
      await expect(stopped).rejects.toBe(error);
      expect(batcher.stop()).toBe(stopped);
    },
  );

  it("rejects stop() when close throws synchronously", async () => {
    const error = new Error("close threw");
    const executor: Executor<number, number> = {
      run: async (batch) => batch,
      close: () => {
        throw error;
      },
    };
    const batcher = batcherWith(executor, { closeExecutor: true });
    await expect(batcher.stop()).rejects.toBe(error);
  });
});

describe("a graceful close that hangs", () => {
  async function hangingClose() {
    const { executor, runs, closes } = manualExecutor();
    const batcher = batcherWith(executor, { closeExecutor: true });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(10);
    double(runs[0]);
    await expect(result).resolves.toBe(2);
    return { batcher, closes };
  }

  it("is escalated by stop({ force: true }): close({ force: true }) decides", async () => {
    const { batcher, closes } = await hangingClose();
    const graceful = track(batcher.stop());
    await runJobs();
    expect(closes.map((close) => close.options)).toEqual([{ force: false }]);

    const forced = batcher.stop({ force: true });
    expect(forced).toBe(batcher.stop());
    expect(closes.map((close) => close.options)).toEqual([{ force: false }, { force: true }]);
    await runJobs();
    expect(graceful.settled).toBe(false);

    closes[1]?.resolve();
    await runJobs();
    expect(graceful).toEqual({ settled: true });
    // The graceful close failing now (cut short by the forced one) changes nothing.
    closes[0]?.reject(new Error("interrupted"));
    await runJobs();
    expect(graceful).toEqual({ settled: true });
  });

  it("is escalated when the stop's timeout passes", async () => {
    const { batcher, closes } = await hangingClose();
    const stopped = track(batcher.stop({ timeout: 1000 }));
    await vi.advanceTimersByTimeAsync(999);
    expect(closes.map((close) => close.options)).toEqual([{ force: false }]);

    await vi.advanceTimersByTimeAsync(1);
    expect(closes.map((close) => close.options)).toEqual([{ force: false }, { force: true }]);
    expect(stopped.settled).toBe(false);
    closes[1]?.resolve();
    await runJobs();
    expect(stopped).toEqual({ settled: true });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("is not closed twice by repeated graceful stops", async () => {
    const { batcher, closes } = await hangingClose();
    const first = batcher.stop();
    expect(batcher.stop()).toBe(first);
    await runJobs();
    expect(closes).toHaveLength(1);
    closes[0]?.resolve();
    await first;
  });
});

describe("after the stop has completed", () => {
  it("a later stop({ force: true }) does not close the executor again", async () => {
    const { executor, closes } = manualExecutor();
    const batcher = batcherWith(executor, { closeExecutor: true });
    const stopped = batcher.stop();
    closes[0]?.resolve();
    await stopped;

    expect(batcher.stop({ force: true })).toBe(stopped);
    await runJobs();
    expect(closes).toHaveLength(1);
  });

  it("clears the stop's timeout once the close resolves", async () => {
    const { executor, closes } = manualExecutor();
    const batcher = batcherWith(executor, { closeExecutor: true });
    const stopped = batcher.stop({ timeout: 5000 });
    closes[0]?.resolve();
    await stopped;
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(closes).toHaveLength(1);
  });
});

describe("option checks", () => {
  it.each([
    { executor: null },
    { executor: () => [] },
    { executor: { run: async () => [] } },
    { executor: { close: async () => {} } },
    { executor: "pool" },
  ])("TypeError for executor %o", ({ executor }) => {
    expect(() => createBatcher(processBatch, { executor } as never)).toThrow(TypeError);
    expect(() => createBatcher(processBatch, { executor } as never)).toThrow(/executor/);
  });

  it.each([1, "yes", null])("TypeError for closeExecutor %o", (closeExecutor) => {
    expect(() => createBatcher(processBatch, { closeExecutor } as never)).toThrow(TypeError);
    expect(() => createBatcher(processBatch, { closeExecutor } as never)).toThrow(/closeExecutor/);
  });
});
