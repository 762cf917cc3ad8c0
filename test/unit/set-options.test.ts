/**
 * `batcher.setOptions(partial)`: maxBatchSize, maxQueueTime, concurrency, maxQueueSize,
 * maxBatchWeight and rateLimit changed on a live batcher, taking effect at the next decision;
 * validated like the constructor, all before anything applies.
 */
import {
  type AsyncBatcher,
  type BatcherOptions,
  BatcherStoppedError,
  createBatcher,
  ItemTooLargeError,
  QueueFullError,
  type TunableOptions,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

const weigh = (item: unknown) => item as number;
const settle = (promise: Promise<unknown>) =>
  promise.then(
    (value) => value,
    (error: unknown) => error,
  );
const codeOf = (outcome: unknown) =>
  outcome instanceof Error ? ((outcome as { code?: string }).code ?? outcome.name) : outcome;

/**
 * A scripted run that every tunable shows in: items 1..8 and 50 at t=0, 2 and 1 at t=500, each
 * batch taking 30 ms (items are their own weight with `weigh`). Returns every batch (items, start
 * time relative to the run) and every caller's outcome (value, or error code).
 */
async function trace(
  options: BatcherOptions,
  change?: (batcher: AsyncBatcher<number, number>) => void,
) {
  const calls: { items: number[]; at: number }[] = [];
  const start = Date.now();
  const batcher = createBatcher<number, number>((items) => {
    calls.push({ items: [...items], at: Date.now() - start });
    return new Promise((resolve) => setTimeout(() => resolve(items.map((x) => x * 2)), 30));
  }, options);
  change?.(batcher);
  const outcomes = [1, 2, 3, 4, 5, 6, 7, 8, 50].map((i) => settle(batcher.process(i)));
  await vi.advanceTimersByTimeAsync(500);
  outcomes.push(settle(batcher.process(2)), settle(batcher.process(1)));
  await vi.advanceTimersByTimeAsync(5000);
  const settled = (await Promise.all(outcomes)).map(codeOf);
  await batcher.stop();
  return { calls, settled };
}

/** `trace()` with `setOptions(change)` called on the fresh batcher; `onError` gets what it threw. */
async function traceWith(
  options: BatcherOptions,
  change: Record<string, unknown>,
  onError?: (error: unknown) => void,
) {
  return trace(options, (batcher) => {
    try {
      batcher.setOptions(change as TunableOptions);
    } catch (error) {
      if (onError === undefined) throw error;
      onError(error);
    }
  });
}

describe("setOptions: concurrency", () => {
  it("a larger concurrency starts waiting batches at once, on the next microtask", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const results = Promise.all([1, 2, 3, 4].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(3);

    batcher.setOptions({ concurrency: 3 });
    expect(calls).toHaveLength(1); // never synchronously inside setOptions()
    await Promise.resolve();
    expect(calls.map((c) => c.items)).toEqual([[1], [2], [3]]);
    expect(Date.now()).toBe(0);
    expect(batcher.queueSize).toBe(1);
    expect(maxRunning()).toBe(3);

    for (const call of calls) double(call);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1], [2], [3], [4]]);
    double(calls[3]);
    expect(await results).toEqual([2, 4, 6, 8]);
    await batcher.stop();
  });

  it("a smaller concurrency lets running batches finish and starts no new one until below it", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 1000,
      concurrency: 3,
    });
    const results = Promise.all([1, 2, 3, 4, 5].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(3);

    batcher.setOptions({ concurrency: 1 });
    await runJobs();
    expect(calls).toHaveLength(3);
    expect(batcher.inFlight).toBe(3);

    double(calls[0]);
    await runJobs();
    expect(calls).toHaveLength(3); // 2 still running, limit 1
    double(calls[1]);
    await runJobs();
    expect(calls).toHaveLength(3);
    double(calls[2]);
    await runJobs();
    expect(calls).toHaveLength(4); // 0 running: one may start
    expect(calls[3]?.items).toEqual([4]);
    double(calls[3]);
    await runJobs();
    expect(calls).toHaveLength(5);
    double(calls[4]);
    expect(await results).toEqual([2, 4, 6, 8, 10]);
    await batcher.stop();
  });
});

describe("setOptions: maxBatchSize", () => {
  it("a smaller maxBatchSize cuts the batches that are now full, at once", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxBatchSize: 10,
      maxQueueTime: 1000,
      concurrency: Number.POSITIVE_INFINITY,
    });
    const results = Promise.all([1, 2, 3, 4, 5].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(0);

    batcher.setOptions({ maxBatchSize: 2 });
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(calls.map((c) => c.startedAt)).toEqual([100, 100]);
    expect(reasons).toEqual(["size", "size"]);
    expect(batcher.queueSize).toBe(1);

    // The rest is not full: it waits for its own time (1000 after its arrival at 0).
    await vi.advanceTimersByTimeAsync(899);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[2]?.items).toEqual([5]);
    expect(reasons.at(-1)).toBe("time");
    for (const call of calls) double(call);
    expect(await results).toEqual([2, 4, 6, 8, 10]);
    await batcher.stop();
  });

  it("a larger maxBatchSize makes the next batch bigger", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const results = Promise.all([1, 2, 3, 4, 5, 6].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1, 2]]);

    batcher.setOptions({ maxBatchSize: 10 });
    double(calls[0]);
    await runJobs();
    // Not full any more (4 < 10) and not yet due by time: it waits for 1000.
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2],
      [3, 4, 5, 6],
    ]);
    expect(calls[1]?.startedAt).toBe(1000);
    double(calls[1]);
    expect(await results).toEqual([2, 4, 6, 8, 10, 12]);
    await batcher.stop();
  });
});

describe("setOptions: maxQueueTime", () => {
  it("a shorter maxQueueTime cuts earlier, counted from the oldest item's arrival", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(100);
    batcher.setOptions({ maxQueueTime: 300 });
    await vi.advanceTimersByTimeAsync(199); // t = 299
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1); // t = 300 = arrival + 300
    expect(calls.map((c) => c.startedAt)).toEqual([300]);
    double(calls[0]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });

  it("a maxQueueTime already exceeded cuts at once", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 1000 });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(200);
    batcher.setOptions({ maxQueueTime: 50 });
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([200]);
    expect(reasons).toEqual(["time"]);
    double(calls[0]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });

  it("a longer maxQueueTime cuts later, counted from the oldest item's arrival", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(50);
    batcher.setOptions({ maxQueueTime: 500 });
    await vi.advanceTimersByTimeAsync(449); // t = 499
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1); // t = 500
    expect(calls.map((c) => c.startedAt)).toEqual([500]);
    double(calls[0]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });

  it("positive -> 0 cuts at the end of the current tick", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const results = [batcher.process(1)];
    await vi.advanceTimersByTimeAsync(10);
    results.push(batcher.process(2));
    batcher.setOptions({ maxQueueTime: 0 });
    results.push(batcher.process(3)); // same tick: same batch
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3]]);
    expect(calls[0]?.startedAt).toBe(10);
    double(calls[0]);
    expect(await Promise.all(results)).toEqual([2, 4, 6]);

    // And it stays 0: the next item goes at the end of its tick.
    const next = batcher.process(4);
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([10, 10]);
    double(calls[1]);
    await expect(next).resolves.toBe(8);
    await batcher.stop();
  });

  it("0 -> positive waits for the new maxQueueTime, also for an item queued in the same tick", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 0 });
    const first = batcher.process(1);
    batcher.setOptions({ maxQueueTime: 200 });
    await runJobs();
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.startedAt)).toEqual([200]);
    double(calls[0]);
    await expect(first).resolves.toBe(2);

    const second = batcher.process(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.startedAt)).toEqual([200, 400]);
    double(calls[1]);
    await expect(second).resolves.toBe(4);
    await batcher.stop();
  });

  it("Infinity: waits for size, flush or stop only; back to finite cuts by time again", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    batcher.setOptions({ maxQueueTime: Number.POSITIVE_INFINITY });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toHaveLength(0);
    batcher.setOptions({ maxQueueTime: 100 });
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([10_000]); // overdue: at once
    double(calls[0]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });
});

describe("setOptions: maxQueueSize", () => {
  it("a larger maxQueueSize admits waiting callers at once (onQueueFull 'wait')", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 1000,
      maxQueueSize: 2,
      onQueueFull: "wait",
    });
    const results = Promise.all([1, 2, 3, 4].map((i) => batcher.process(i)));
    await runJobs();
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(2);

    batcher.setOptions({ maxQueueSize: 3 });
    expect(batcher.queueSize).toBe(3);
    expect(batcher.waiting).toBe(1);

    batcher.setOptions({ maxQueueSize: Number.POSITIVE_INFINITY });
    expect(batcher.queueSize).toBe(4);
    expect(batcher.waiting).toBe(0);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3, 4]]);
    double(calls[0]);
    expect(await results).toEqual([2, 4, 6, 8]);
    await batcher.stop();
  });

  it("a smaller maxQueueSize keeps the queued items but rejects new ones", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000, maxQueueSize: 10 });
    const queued = Promise.all([1, 2, 3, 4, 5].map((i) => batcher.process(i)));
    batcher.setOptions({ maxQueueSize: 3 });
    expect(batcher.queueSize).toBe(5);

    const rejected = batcher.process(6);
    await expect(rejected).rejects.toBeInstanceOf(QueueFullError);
    await expect(rejected).rejects.toMatchObject({ code: "ERR_QUEUE_FULL", maxQueueSize: 3 });
    expect(batcher.queueSize).toBe(5);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3, 4, 5]]);
    const next = batcher.process(7); // room again
    expect(batcher.queueSize).toBe(1);
    double(calls[0]);
    expect(await queued).toEqual([2, 4, 6, 8, 10]);
    await vi.advanceTimersByTimeAsync(1000);
    double(calls[1]);
    await expect(next).resolves.toBe(14);
    await batcher.stop();
  });

  it("a smaller maxQueueSize makes new callers wait (onQueueFull 'wait') until below it", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      maxQueueSize: 10,
      onQueueFull: "wait",
    });
    const first = Promise.all([1, 2, 3, 4, 5].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(1); // [1, 2] by size; 3, 4, 5 queued
    batcher.setOptions({ maxQueueSize: 2 });
    const late = batcher.process(6);
    expect(batcher.queueSize).toBe(3);
    expect(batcher.waiting).toBe(1);

    double(calls[0]); // [3, 4] goes; 5 alone is below the new limit of 2, so 6 is admitted
    await runJobs();
    expect(calls[1]?.items).toEqual([3, 4]);
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(0);
    double(calls[1]);
    await runJobs();
    expect(calls[2]?.items).toEqual([5, 6]);
    double(calls[2]);
    expect(await first).toEqual([2, 4, 6, 8, 10]);
    await expect(late).resolves.toBe(12);
    await batcher.stop();
  });
});

describe("setOptions: maxBatchWeight", () => {
  it("lowering it rejects queued items heavier than the new limit with ItemTooLargeError", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 1000,
      weigh,
      maxBatchWeight: 200,
    });
    const items = [10, 60, 30, 80].map((i) => settle(batcher.process(i)));
    expect(batcher.queueSize).toBe(4);

    batcher.setOptions({ maxBatchWeight: 50 });
    expect(batcher.queueSize).toBe(2);
    const [a, b, c, d] = items;
    const heavy = [await b, await d];
    for (const [error, weight] of [
      [heavy[0], 60],
      [heavy[1], 80],
    ] as const) {
      expect(error).toBeInstanceOf(ItemTooLargeError);
      expect(error).toMatchObject({ code: "ERR_ITEM_TOO_LARGE", weight, maxBatchWeight: 50 });
    }

    // New items are checked against the new limit.
    const tooHeavy = settle(batcher.process(70));
    expect(await tooHeavy).toBeInstanceOf(ItemTooLargeError);
    expect(await tooHeavy).toMatchObject({ weight: 70, maxBatchWeight: 50 });

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((call) => call.items)).toEqual([[10, 30]]);
    double(calls[0]);
    expect([await a, await c]).toEqual([20, 60]);
    await batcher.stop();
  });

  it("lowering it makes a lane whose queued weight reaches it due at once, cut to the new limit", async () => {
    const cut: { reason: string; weight?: number }[] = [];
    const batcher = createBatcher((items: number[]) => items.map((x) => x * 2), {
      maxQueueTime: 1000,
      weigh,
      maxBatchWeight: 100,
      logger: (event) => {
        if (event.type === "batchCut") cut.push({ reason: event.reason, weight: event.weight });
      },
    });
    const results = [10, 20, 15].map((i) => batcher.process(i));
    await vi.advanceTimersByTimeAsync(100);
    expect(cut).toEqual([]);

    batcher.setOptions({ maxBatchWeight: 40 });
    await runJobs();
    expect(cut).toEqual([{ reason: "weight", weight: 30 }]); // 15 more would make 45
    expect(batcher.queueSize).toBe(1);
    await vi.advanceTimersByTimeAsync(900);
    expect(cut).toEqual([
      { reason: "weight", weight: 30 },
      { reason: "time", weight: 15 },
    ]);
    expect(await Promise.all(results)).toEqual([20, 40, 30]);
    await batcher.stop();
  });

  it("lowering it also rejects callers waiting for room that are now too heavy", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 1000,
      maxQueueSize: 1,
      onQueueFull: "wait",
      weigh,
      maxBatchWeight: 100,
    });
    const queued = settle(batcher.process(5));
    const waitingHeavy = settle(batcher.process(90));
    const waitingLight = settle(batcher.process(7));
    expect(batcher.waiting).toBe(2);

    batcher.setOptions({ maxBatchWeight: 50 });
    expect(await waitingHeavy).toBeInstanceOf(ItemTooLargeError);
    expect(await waitingHeavy).toMatchObject({ weight: 90, maxBatchWeight: 50 });
    expect(batcher.waiting).toBe(1);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[5]]);
    double(calls[0]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[5], [7]]);
    double(calls[1]);
    expect([await queued, await waitingLight]).toEqual([10, 14]);
    await batcher.stop();
  });

  it("raising it lets heavier batches and heavier items through", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 1000,
      concurrency: Number.POSITIVE_INFINITY,
      weigh,
      maxBatchWeight: 10,
    });
    batcher.setOptions({ maxBatchWeight: 30 });
    const results = Promise.all([8, 8, 20].map((i) => batcher.process(i)));
    await runJobs();
    // 8 + 8 + 20 = 36 >= 30: due by weight, cut before the 20.
    expect(calls.map((c) => c.items)).toEqual([[8, 8]]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[8, 8], [20]]);
    for (const call of calls) double(call);
    expect(await results).toEqual([16, 16, 40]);
    await batcher.stop();
  });
});

describe("setOptions: rateLimit", () => {
  it("adding a rate limit holds the next batches to it", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
    });
    batcher.setOptions({ rateLimit: { batches: 1, interval: 1000 } });
    const results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(2500);
    expect(calls.map((c) => c.startedAt)).toEqual([0, 1000, 2000]);
    for (const call of calls) double(call);
    expect(await results).toEqual([2, 4, 6]);
    await batcher.stop();
  });

  it("adding a rate limit while items wait holds them from the next decision on", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: 1,
    });
    const results = Promise.all([1, 2, 3, 4].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(1);
    batcher.setOptions({ rateLimit: { items: 1, interval: 500 } });
    await vi.advanceTimersByTimeAsync(100);
    double(calls[0]); // t = 100: the slot frees
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([0, 100]);
    double(calls[1]);
    await runJobs();
    expect(calls).toHaveLength(2); // t = 100: 1 item already started in the window
    await vi.advanceTimersByTimeAsync(500);
    expect(calls.map((c) => c.startedAt)).toEqual([0, 100, 600]);
    double(calls[2]);
    await vi.advanceTimersByTimeAsync(500);
    expect(calls.map((c) => c.startedAt)).toEqual([0, 100, 600, 1100]);
    double(calls[3]);
    expect(await results).toEqual([2, 4, 6, 8]);
    await batcher.stop();
  });

  it("a shorter interval lets the held batch go earlier; the window's history is kept", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toHaveLength(1);
    batcher.setOptions({ rateLimit: { batches: 1, interval: 100 } });
    await vi.advanceTimersByTimeAsync(49); // t = 99
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1); // t = 100: the batch from t=0 leaves the new window
    expect(calls.map((c) => c.startedAt)).toEqual([0, 100]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.startedAt)).toEqual([0, 100, 200]);
    for (const call of calls) double(call);
    expect(await results).toEqual([2, 4, 6]);
    await batcher.stop();
  });

  it("a longer interval holds the next batch longer than the timer already armed", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 1, interval: 100 },
    });
    const results = Promise.all([1, 2].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(50);
    batcher.setOptions({ rateLimit: { batches: 1, interval: 1000 } });
    await vi.advanceTimersByTimeAsync(949); // t = 999
    expect(calls.map((c) => c.startedAt)).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.startedAt)).toEqual([0, 1000]);
    for (const call of calls) double(call);
    expect(await results).toEqual([2, 4]);
    await batcher.stop();
  });

  it("a larger quota lets held batches go at once", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = Promise.all([1, 2, 3, 4].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);
    batcher.setOptions({ rateLimit: { batches: 3, interval: 1000 } });
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([0, 10, 10]);
    await vi.advanceTimersByTimeAsync(990);
    expect(calls.map((c) => c.startedAt)).toEqual([0, 10, 10, 1000]);
    for (const call of calls) double(call);
    expect(await results).toEqual([2, 4, 6, 8]);
    await batcher.stop();
  });

  it("rateLimit: undefined removes the limit: held batches go at once", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);
    batcher.setOptions({ rateLimit: undefined });
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([0, 10, 10]);
    for (const call of calls) double(call);
    expect(await results).toEqual([2, 4, 6]);

    const more = Promise.all([4, 5].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([0, 10, 10, 10, 10]);
    for (const call of calls.slice(3)) double(call);
    expect(await more).toEqual([8, 10]);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });
});

describe("setOptions: validation", () => {
  const make = (options: BatcherOptions = {}) =>
    createBatcher(async (items: number[]) => items, options);
  const weighed = () => make({ weigh });

  it.each([
    ["maxBatchSize 0", { maxBatchSize: 0 }, RangeError],
    ["maxBatchSize -1", { maxBatchSize: -1 }, RangeError],
    ["maxBatchSize 1.5", { maxBatchSize: 1.5 }, RangeError],
    ["maxBatchSize NaN", { maxBatchSize: Number.NaN }, RangeError],
    ["maxBatchSize '2'", { maxBatchSize: "2" }, TypeError],
    ["maxBatchSize null", { maxBatchSize: null }, TypeError],
    ["maxQueueTime -1", { maxQueueTime: -1 }, RangeError],
    ["maxQueueTime NaN", { maxQueueTime: Number.NaN }, RangeError],
    ["maxQueueTime '10'", { maxQueueTime: "10" }, TypeError],
    ["concurrency 0", { concurrency: 0 }, RangeError],
    ["concurrency 2.5", { concurrency: 2.5 }, RangeError],
    ["concurrency '1'", { concurrency: "1" }, TypeError],
    ["maxQueueSize 0", { maxQueueSize: 0 }, RangeError],
    ["maxQueueSize -5", { maxQueueSize: -5 }, RangeError],
    ["maxQueueSize true", { maxQueueSize: true }, TypeError],
    ["rateLimit null", { rateLimit: null }, TypeError],
    ["rateLimit 5", { rateLimit: 5 }, TypeError],
    ["rateLimit without interval", { rateLimit: { batches: 1 } }, TypeError],
    ["rateLimit interval 0", { rateLimit: { batches: 1, interval: 0 } }, RangeError],
    [
      "rateLimit interval Infinity",
      { rateLimit: { batches: 1, interval: Number.POSITIVE_INFINITY } },
      RangeError,
    ],
    ["rateLimit batches 0", { rateLimit: { batches: 0, interval: 10 } }, RangeError],
    ["rateLimit items 1.5", { rateLimit: { items: 1.5, interval: 10 } }, RangeError],
    ["rateLimit without batches and items", { rateLimit: { interval: 10 } }, TypeError],
  ])("throws for %s", (_, options, ErrorClass) => {
    expect(() => make().setOptions(options as TunableOptions)).toThrow(ErrorClass);
  });

  it.each([
    ["0", 0, RangeError],
    ["-1", -1, RangeError],
    ["NaN", Number.NaN, RangeError],
    ["'5'", "5", TypeError],
  ])("throws for maxBatchWeight %s (with weigh)", (_, value, ErrorClass) => {
    expect(() => weighed().setOptions({ maxBatchWeight: value as number })).toThrow(ErrorClass);
  });

  it("throws TypeError for maxBatchWeight on a batcher without weigh", () => {
    expect(() => make().setOptions({ maxBatchWeight: 10 })).toThrow(TypeError);
  });

  it.each([
    ["name", { name: "x" }],
    ["weigh", { weigh }],
    ["batchKey", { batchKey: () => "k" }],
    ["onQueueFull", { onQueueFull: "wait" }],
    ["itemTimeout", { itemTimeout: 100 }],
    ["logger", { logger: () => {} }],
    ["executor", { executor: undefined }],
    ["closeExecutor", { closeExecutor: true }],
    ["an unknown key", { maxBatchSizee: 3 }],
  ])("throws TypeError for a key it cannot change: %s", (_, options) => {
    expect(() => make().setOptions(options as TunableOptions)).toThrow(TypeError);
  });

  it.each([
    ["null", null],
    ["a number", 5],
    ["a string", "maxBatchSize=3"],
    ["true", true],
    ["an array", [["maxBatchSize", 3]]],
    ["a function", () => ({ maxBatchSize: 3 })],
  ])("throws TypeError for %s instead of an object", (_, value) => {
    expect(() => make().setOptions(value as TunableOptions)).toThrow(TypeError);
  });

  it("accepts an empty object and changes nothing", async () => {
    const base = await trace({ maxBatchSize: 3, maxQueueTime: 100 });
    const changed = await traceWith({ maxBatchSize: 3, maxQueueTime: 100 }, {});
    expect(changed).toEqual(base);
  });

  // The same scripted run with and without a rejected setOptions() call: any change would show.
  const initial: BatcherOptions = {
    maxBatchSize: 3,
    maxQueueTime: 100,
    concurrency: 1,
    maxQueueSize: 4,
    weigh,
    maxBatchWeight: 10,
    rateLimit: { batches: 2, interval: 200 },
  };
  const valid: TunableOptions = {
    maxBatchSize: 2,
    maxQueueTime: 5,
    concurrency: 4,
    maxQueueSize: 100,
    maxBatchWeight: 60,
    rateLimit: { batches: 1, interval: 1000 },
  };

  it("the scripted run shows a change of every tunable (so the next tests can fail)", async () => {
    const base = await trace(initial);
    expect(await trace(initial)).toEqual(base); // deterministic
    for (const [key, value] of Object.entries(valid)) {
      expect(await traceWith(initial, { [key]: value }), key).not.toEqual(base);
    }
  });

  it.each([
    ["maxBatchSize", 0],
    ["maxQueueTime", -1],
    ["concurrency", 0],
    ["maxQueueSize", 0],
    ["maxBatchWeight", -1],
    ["rateLimit", { interval: 0, batches: 1 }],
    ["rateLimit", { interval: 100 }],
  ])(
    "a bad %s (%o) throws and changes nothing, not even the valid keys of the same call",
    async (key, bad) => {
      const base = await trace(initial);
      let thrown: unknown;
      const after = await traceWith(initial, { ...valid, [key]: bad }, (error) => {
        thrown = error;
      });
      expect(thrown).toBeInstanceOf(Error);
      expect([TypeError, RangeError].some((E) => thrown instanceof E)).toBe(true);
      expect(after).toEqual(base);
    },
  );

  it("a rejected call does not reject queued items through a valid lower maxBatchWeight", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000, weigh, maxBatchWeight: 100 });
    const items = [10, 60].map((i) => settle(batcher.process(i)));
    expect(() => batcher.setOptions({ maxBatchWeight: 50, concurrency: 0 })).toThrow(RangeError);
    expect(batcher.queueSize).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[10, 60]]);
    double(calls[0]);
    expect(await Promise.all(items)).toEqual([20, 120]);
    await batcher.stop();
  });

  it("an unknown key next to valid ones throws and changes nothing", async () => {
    const base = await trace(initial);
    let thrown: unknown;
    const after = await traceWith(initial, { ...valid, name: "renamed" }, (error) => {
      thrown = error;
    });
    expect(thrown).toBeInstanceOf(TypeError);
    expect(after).toEqual(base);
  });
});

describe("setOptions: a key set to undefined goes back to its default", () => {
  const sized: BatcherOptions = { weigh, maxBatchSize: 2 };
  it.each([
    ["maxBatchSize", { weigh }, { maxBatchSize: 2 }],
    ["maxQueueTime", { weigh }, { maxQueueTime: 300 }],
    ["concurrency", sized, { concurrency: 3 }],
    ["maxQueueSize", { weigh }, { maxQueueSize: 3 }],
    ["maxBatchWeight", { weigh }, { maxBatchWeight: 10 }],
    ["rateLimit", sized, { rateLimit: { batches: 1, interval: 200 } }],
  ])("%s", async (key, base: BatcherOptions, set: BatcherOptions) => {
    const defaults = await trace(base);
    const kept = await trace({ ...base, ...set });
    expect(kept).not.toEqual(defaults); // the option shows in the run
    const restored = await traceWith({ ...base, ...set }, { [key]: undefined });
    expect(restored).toEqual(defaults);
  });
});

describe("setOptions around stop()", () => {
  it("does not throw after stop(), and still validates", async () => {
    const batcher = createBatcher(async (items: number[]) => items, {});
    const item = batcher.process(1);
    await vi.advanceTimersByTimeAsync(10);
    await expect(item).resolves.toBe(1);
    await batcher.stop();
    expect(() => batcher.setOptions({ concurrency: 4, maxBatchSize: 2 })).not.toThrow();
    expect(() => batcher.setOptions({ rateLimit: undefined, maxQueueTime: 0 })).not.toThrow();
    expect(() => batcher.setOptions({ concurrency: 0 })).toThrow(RangeError);
    await expect(batcher.process(2)).rejects.toBeInstanceOf(BatcherStoppedError);
  });

  it("does not throw after a force stop, nor on a batcher that was never used", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 1000 });
    const item = settle(batcher.process(1));
    await batcher.stop({ force: true });
    expect(() => batcher.setOptions({ maxQueueSize: 1, maxQueueTime: 5 })).not.toThrow();
    expect(await item).toBeInstanceOf(BatcherStoppedError);

    const unused = manualBatcher({});
    await unused.batcher.stop();
    expect(() => unused.batcher.setOptions({ maxBatchSize: 1 })).not.toThrow();
    expect(unused.calls).toHaveLength(0);
  });

  it("during a graceful stop, a larger concurrency speeds up the drain", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    await runJobs();
    const stopped = track(batcher.stop());
    await runJobs();
    expect(calls).toHaveLength(1);
    batcher.setOptions({ concurrency: 5 });
    await runJobs();
    expect(calls).toHaveLength(3);
    for (const call of calls) double(call);
    expect(await results).toEqual([2, 4, 6]);
    await runJobs();
    expect(stopped.settled).toBe(true);
  });
});
