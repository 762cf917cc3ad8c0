/**
 * The `priority` option of `process()`: higher first, first come first served within a priority;
 * `maxQueueTime` counts from the oldest item whatever its priority, so low priorities are delayed,
 * never stranded.
 */
import type { ProcessOptions } from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Submits `[item, priority]` pairs (priority `undefined`: no options at all). */
function submit(
  batcher: { process(item: number, options?: ProcessOptions): Promise<number> },
  pairs: readonly (readonly [number, number | undefined])[],
): Promise<number>[] {
  return pairs.map(([item, priority]) =>
    priority === undefined ? batcher.process(item) : batcher.process(item, { priority }),
  );
}

describe("priority order", () => {
  it("puts higher priorities first in a batch, and each caller still gets its own result", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const results = submit(batcher, [
      [0, 0],
      [1, 5],
      [2, 1],
      [3, 5],
      [4, -1],
      [5, undefined],
    ]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([1, 3, 2, 0, 5, 4]);
    // Results in the batch's order: each maps back to its own caller.
    calls[0]?.resolve(calls[0].items.map((x) => x * 10));
    expect(await Promise.all(results)).toEqual([0, 10, 20, 30, 40, 50]);
    await batcher.stop();
  });

  it("is first come first served within a priority", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const results = submit(batcher, [
      [0, 2],
      [1, 7],
      [2, 2],
      [3, 7],
      [4, 2],
      [5, 7],
      [6, 2],
    ]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[0]?.items).toEqual([1, 3, 5, 0, 2, 4, 6]);
    double(calls[0]);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12]);
    await batcher.stop();
  });

  it("orders negative, fractional and extreme finite priorities numerically", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const results = submit(batcher, [
      [0, -0.5],
      [1, 0.5],
      [2, -2],
      [3, 0.25],
      [4, Number.MAX_VALUE],
      [5, -Number.MAX_VALUE],
      [6, 1e-9],
      [7, -1e-9],
      [8, 0.5],
      [9, 10],
      [10, 2],
    ]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[0]?.items).toEqual([4, 9, 10, 1, 8, 3, 6, 7, 0, 2, 5]);
    double(calls[0]);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
    await batcher.stop();
  });

  it("defaults to 0: no options, no priority, priority undefined, 0 and -0 share one FIFO", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const results = [
      batcher.process(0),
      batcher.process(1, { priority: -0.1 }),
      batcher.process(2, {}),
      batcher.process(3, { priority: 0.1 }),
      batcher.process(4, { priority: 0 }),
      batcher.process(5, { priority: undefined }),
      batcher.process(6, { priority: -0 }),
      batcher.process(7),
    ];
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[0]?.items).toEqual([3, 0, 2, 4, 5, 6, 7, 1]);
    double(calls[0]);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
    await batcher.stop();
  });

  it("a batch takes the highest priorities first, up to maxBatchSize; the rest wait", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const blocker = batcher.process(-1);
    batcher.flush(); // [-1] holds the only slot
    await runJobs();
    const results = submit(batcher, [
      [0, 0],
      [1, -1],
      [2, 3],
      [3, 1],
      [4, 0],
      [5, 3],
      [6, 2],
      [7, -1],
    ]);
    expect(batcher.queueSize).toBe(8);

    double(calls[0]);
    await runJobs();
    expect(calls[1]?.items).toEqual([2, 5, 6]);
    expect(batcher.queueSize).toBe(5);
    double(calls[1]);
    await runJobs();
    expect(calls[2]?.items).toEqual([3, 0, 4]);
    double(calls[2]);
    await runJobs();
    // Two items left, fewer than maxBatchSize: they wait for the timer (arrival 0 + 1000).
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[3]?.items).toEqual([1, 7]);
    double(calls[3]);
    expect(reasons).toEqual(["flush", "size", "size", "time"]);
    await expect(blocker).resolves.toBe(-2);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
    await batcher.stop();
  });

  it("cuts a full batch at once in priority order when a slot is free", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxBatchSize: 3, maxQueueTime: 1000 });
    const results = submit(batcher, [
      [0, -1],
      [1, 0],
      [2, 4],
    ]);
    await runJobs();
    expect(calls[0]?.items).toEqual([2, 1, 0]);
    expect(reasons).toEqual(["size"]);
    double(calls[0]);
    expect(await Promise.all(results)).toEqual([0, 2, 4]);
    await batcher.stop();
  });
});

describe("maxQueueTime with priorities", () => {
  it("counts from the oldest item, even when it has the lowest priority", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 100 });
    const low = batcher.process(1, { priority: -5 }); // at 0: starts the clock
    await vi.advanceTimersByTimeAsync(80);
    const high = batcher.process(2, { priority: 5 }); // at 80
    await vi.advanceTimersByTimeAsync(19);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.startedAt).toBe(100);
    expect(calls[0]?.items).toEqual([2, 1]); // high first, all the same
    expect(reasons).toEqual(["time"]);
    double(calls[0]);
    expect(await Promise.all([low, high])).toEqual([2, 4]);
    await batcher.stop();
  });

  it("lets a full batch of higher priorities go ahead of an overdue low one, which goes next", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 100,
      concurrency: 1,
    });
    const blocker = batcher.process(0);
    batcher.flush(); // [0] holds the only slot
    await runJobs();
    const low = batcher.process(1, { priority: -1 }); // at 0
    await vi.advanceTimersByTimeAsync(10);
    const highs = [batcher.process(2, { priority: 1 }), batcher.process(3, { priority: 1 })];
    await vi.advanceTimersByTimeAsync(140); // 150: the low one is overdue, the slot still busy
    expect(calls).toHaveLength(1);

    double(calls[0]);
    await runJobs();
    expect(calls[1]?.items).toEqual([2, 3]);
    expect(batcher.queueSize).toBe(1);
    double(calls[1]);
    await runJobs();
    // Still overdue (it arrived at 0): cut as soon as the slot frees.
    expect(calls[2]?.items).toEqual([1]);
    expect(calls[2]?.startedAt).toBe(150);
    expect(reasons).toEqual(["flush", "size", "time"]);
    double(calls[2]);
    expect(await Promise.all([blocker, low, ...highs])).toEqual([0, 2, 4, 6]);
    await batcher.stop();
  });

  it("keeps a low-priority item's clock from its own arrival after higher ones left", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 100,
      concurrency: 1,
    });
    const blocker = batcher.process(0);
    batcher.flush();
    await runJobs();
    const low = batcher.process(1, { priority: -1 }); // at 0
    await vi.advanceTimersByTimeAsync(10);
    const highs = [batcher.process(2, { priority: 1 }), batcher.process(3, { priority: 1 })];
    await vi.advanceTimersByTimeAsync(40); // 50
    double(calls[0]);
    await runJobs();
    expect(calls[1]?.items).toEqual([2, 3]); // by size, at 50
    double(calls[1]);
    await runJobs();
    // The slot is free at 50; the low item is due at 100 (not 110, not 150).
    await vi.advanceTimersByTimeAsync(49);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[2]?.items).toEqual([1]);
    expect(calls[2]?.startedAt).toBe(100);
    double(calls[2]);
    expect(await Promise.all([blocker, low, ...highs])).toEqual([0, 2, 4, 6]);
    await batcher.stop();
  });

  it("after a cut, runs the clock from the oldest item left, not from the highest priority left", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxBatchSize: 3,
      maxQueueTime: 100,
      concurrency: 1,
    });
    const blocker = batcher.process(0);
    batcher.flush();
    await runJobs();
    const low = batcher.process(1, { priority: -1 }); // at 0
    await vi.advanceTimersByTimeAsync(10);
    const highs = [2, 3, 4].map((i) => batcher.process(i, { priority: 1 })); // at 10
    await vi.advanceTimersByTimeAsync(10);
    const middle = batcher.process(5); // at 20, priority 0
    await vi.advanceTimersByTimeAsync(30); // 50
    double(calls[0]);
    await runJobs();
    expect(calls[1]?.items).toEqual([2, 3, 4]);
    double(calls[1]);
    await runJobs();
    // Left: 5 (priority 0, at 20) and 1 (priority -1, at 0). Due at 100, by 1's arrival.
    await vi.advanceTimersByTimeAsync(49);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[2]?.items).toEqual([5, 1]);
    expect(calls[2]?.startedAt).toBe(100);
    expect(reasons).toEqual(["flush", "size", "time"]);
    double(calls[2]);
    expect(await Promise.all([blocker, low, ...highs, middle])).toEqual([0, 2, 4, 6, 8, 10]);
    await batcher.stop();
  });

  it("delays a low-priority item while high-priority traffic fills every batch, not forever", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 100,
      concurrency: 1,
    });
    const blocker = batcher.process(0);
    batcher.flush();
    await runJobs();
    const low = track(batcher.process(-7, { priority: -1 })); // at 0
    const highs: Promise<number>[] = [];
    let next = 1;
    // Sustained traffic: each time the slot frees, two new high-priority items are queued.
    for (let round = 0; round < 5; round++) {
      highs.push(
        batcher.process(next++, { priority: 1 }),
        batcher.process(next++, { priority: 1 }),
      );
      await vi.advanceTimersByTimeAsync(100);
      double(calls.at(-1));
      await runJobs();
      expect(calls.at(-1)?.items).toEqual([next - 2, next - 1]);
      expect(low.settled).toBe(false);
    }
    // Traffic pauses: the low-priority item, long overdue, goes next.
    expect(batcher.queueSize).toBe(1);
    double(calls.at(-1));
    await runJobs();
    expect(calls.at(-1)?.items).toEqual([-7]);
    expect(calls.at(-1)?.startedAt).toBe(500);
    double(calls.at(-1));
    await runJobs();
    expect(low.settled).toBe(true);
    expect(low.error).toBeUndefined();
    await expect(blocker).resolves.toBe(0);
    expect(await Promise.all(highs)).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
    await batcher.stop();
  });
});

describe("priorities with concurrency, flush() and stop()", () => {
  it("hands each freed slot the highest priorities left, with concurrency 2", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 2,
    });
    const blockers = [100, 101, 102, 103].map((i) => batcher.process(i)); // two full batches
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [100, 101],
      [102, 103],
    ]);
    const results = submit(batcher, [
      [0, 0],
      [1, 0],
      [2, 3],
      [3, 1],
      [4, 3],
      [5, -1],
    ]);
    expect(batcher.queueSize).toBe(6);

    double(calls[1]);
    await runJobs();
    expect(calls[2]?.items).toEqual([2, 4]);
    double(calls[0]);
    await runJobs();
    expect(calls[3]?.items).toEqual([3, 0]);
    double(calls[3]);
    await runJobs();
    expect(calls[4]?.items).toEqual([1, 5]);
    double(calls[2]);
    double(calls[4]);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(await Promise.all(blockers)).toEqual([200, 202, 204, 206]);
    expect(maxRunning()).toBe(2);
    await batcher.stop();
  });

  it("splits the queue by priority across slots that free at once (setOptions)", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const blocker = batcher.process(100);
    batcher.flush(); // [100] holds the only slot
    await runJobs();
    const results = submit(batcher, [
      [0, -1],
      [1, 2],
      [2, 0],
      [3, 2],
      [4, 1],
      [5, 0],
      [6, -1],
    ]);
    batcher.setOptions({ concurrency: 4 }); // three slots free at once
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[100], [1, 3], [4, 2], [5, 0]]);
    expect(batcher.queueSize).toBe(1);
    for (const call of calls) double(call);
    await runJobs();
    expect(calls[4]?.items).toBeUndefined(); // [6] alone waits for its time
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[4]?.items).toEqual([6]);
    double(calls[4]);
    await expect(blocker).resolves.toBe(200);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12]);
    expect(maxRunning()).toBe(4);
    await batcher.stop();
  });

  it("flush() cuts the queue highest priority first and resolves once every flushed item settled", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const blocker = batcher.process(0);
    batcher.flush();
    await runJobs();
    const results = submit(batcher, [
      [1, -2],
      [2, 0],
      [3, 4],
    ]);
    const flushed = track(batcher.flush());
    // After flush(): a higher priority still goes first, but flush() waits for 1, 2 and 3 only.
    const late = batcher.process(4, { priority: 9 });
    expect(batcher.queueSize).toBe(4);

    double(calls[0]);
    await runJobs();
    expect(calls[1]?.items).toEqual([4, 3, 2]);
    double(calls[1]);
    await runJobs();
    expect(calls[2]?.items).toEqual([1]);
    expect(flushed.settled).toBe(false);
    double(calls[2]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(Date.now()).toBe(0);
    expect(reasons).toEqual(["flush", "size", "flush"]);
    expect(await Promise.all([blocker, ...results, late])).toEqual([0, 2, 4, 6, 8]);
    await batcher.stop();
  });

  it("graceful stop() drains every priority, highest first, and resolves when all settled", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const blocker = batcher.process(0);
    batcher.flush();
    await runJobs();
    const results = submit(batcher, [
      [1, -3],
      [2, 1],
      [3, 0.5],
      [4, -3],
      [5, 8],
    ]);
    const stopped = track(batcher.stop());
    const refused = track(batcher.process(6, { priority: 100 }));

    for (const expected of [[0], [5, 2], [3, 1], [4]]) {
      await runJobs();
      expect(calls.at(-1)?.items).toEqual(expected);
      expect(stopped.settled).toBe(false);
      double(calls.at(-1));
    }
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(refused.error).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    expect(reasons).toEqual(["flush", "size", "size", "stop"]);
    expect(await Promise.all([blocker, ...results])).toEqual([0, 2, 4, 6, 8, 10]);
    expect(Date.now()).toBe(0);
  });
});

describe("priority validation", () => {
  /** Calls process() and checks it did not throw synchronously. */
  function processWith(priority: unknown): Promise<number> {
    const { batcher } = manualBatcher({ maxQueueTime: 1000 });
    let promise: Promise<number> | undefined;
    expect(() => {
      promise = batcher.process(1, { priority } as ProcessOptions);
    }).not.toThrow();
    expect(batcher.queueSize).toBe(0);
    return promise as Promise<number>;
  }

  it.each([
    ["a string", "1"],
    ["null", null],
    ["a boolean", true],
    ["an object", {}],
    ["a bigint", 1n],
    ["a boxed number", Object(1)],
  ])("rejects %s with a TypeError", async (_, value) => {
    const promise = processWith(value);
    await expect(promise).rejects.toBeInstanceOf(TypeError);
    await expect(promise).rejects.not.toBeInstanceOf(RangeError);
  });

  it.each([
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["-Infinity", Number.NEGATIVE_INFINITY],
  ])("rejects %s with a RangeError", async (_, value) => {
    const promise = processWith(value);
    await expect(promise).rejects.toBeInstanceOf(RangeError);
    await expect(promise).rejects.not.toBeInstanceOf(TypeError);
  });

  it("queues nothing for a bad priority: the batch function never sees it, others are unaffected", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const good = batcher.process(1, { priority: 2 });
    const bad = [
      batcher.process(2, { priority: Number.NaN }),
      batcher.process(3, { priority: "high" as unknown as number }),
    ].map(track);
    expect(batcher.queueSize).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    double(calls[0]);
    await expect(good).resolves.toBe(2);
    expect(bad[0]?.error).toBeInstanceOf(RangeError);
    expect(bad[1]?.error).toBeInstanceOf(TypeError);
    await batcher.stop();
  });
});
