/**
 * `rateLimit: { batches?, items?, interval }`: at most that many batches and/or items started per
 * rolling `interval`; a batch is cut smaller to the item quota left; the timer fires when capacity
 * returns (no polling); works with concurrency, flush(), graceful and forced stop.
 */
import {
  type BatcherOptions,
  BatcherStoppedError,
  type Clock,
  type CutReason,
  createBatcher,
  QueueFullError,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** A batcher answering each batch at once (doubling), recording each batch and its start time. */
function timedBatcher(options: BatcherOptions) {
  const calls: { items: number[]; at: number }[] = [];
  const reasons: CutReason[] = [];
  const batcher = createBatcher(
    (items: number[]) => {
      calls.push({ items: [...items], at: Date.now() });
      return items.map((x) => x * 2);
    },
    {
      ...options,
      logger: (event) => {
        if (event.type === "batchCut") reasons.push(event.reason);
      },
    },
  );
  return { batcher, calls, reasons };
}

/** `count` items `from`, `from + 1`, ... submitted now. */
const submit = (batcher: { process(item: number): Promise<number> }, from: number, count: number) =>
  Promise.all(Array.from({ length: count }, (_, i) => batcher.process(from + i)));

/**
 * Advances the clock 1 ms at a time up to `until` (so a batch started early would show its early
 * start time), recording the timer count after every step; returns every batch's start time.
 */
async function stepTo(until: number, calls: { at: number }[], timers: number[] = []) {
  while (Date.now() < until) {
    await vi.advanceTimersByTimeAsync(1);
    timers.push(vi.getTimerCount());
  }
  return calls.map((c) => c.at);
}

describe("rateLimit validation", () => {
  const make = (rateLimit: unknown) => () =>
    createBatcher(async (items: number[]) => items, {
      rateLimit: rateLimit as BatcherOptions["rateLimit"],
    });

  it.each([
    ["null", null],
    ["a number", 5],
    ["a string", "10/s"],
    ["an array", [1, 1000]],
    ["a function", () => 1],
    ["true", true],
  ])("throws TypeError when it is not an object (%s)", (_, value) => {
    expect(make(value)).toThrow(TypeError);
  });

  it("throws TypeError when interval is missing", () => {
    expect(make({ batches: 1 })).toThrow(TypeError);
    expect(make({ items: 10 })).toThrow(TypeError);
    expect(make({ batches: 1, interval: undefined })).toThrow(TypeError);
  });

  it("throws TypeError when interval is not a number", () => {
    expect(make({ batches: 1, interval: "1000" })).toThrow(TypeError);
    expect(make({ batches: 1, interval: null })).toThrow(TypeError);
  });

  it.each([
    ["0", 0],
    ["negative", -1000],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["-Infinity", Number.NEGATIVE_INFINITY],
    ["NaN", Number.NaN],
  ])("throws RangeError when interval is %s", (_, interval) => {
    expect(make({ batches: 1, interval })).toThrow(RangeError);
    expect(make({ items: 1, interval })).toThrow(RangeError);
  });

  it.each([
    ["0", 0],
    ["negative", -2],
    ["fractional", 1.5],
    ["NaN", Number.NaN],
  ])("throws RangeError when batches or items is %s", (_, count) => {
    expect(make({ batches: count, interval: 1000 })).toThrow(RangeError);
    expect(make({ items: count, interval: 1000 })).toThrow(RangeError);
    expect(make({ batches: 1, items: count, interval: 1000 })).toThrow(RangeError);
    expect(make({ batches: count, items: 1, interval: 1000 })).toThrow(RangeError);
  });

  it("throws TypeError when batches or items is not a number", () => {
    expect(make({ batches: "2", interval: 1000 })).toThrow(TypeError);
    expect(make({ items: "2", interval: 1000 })).toThrow(TypeError);
    expect(make({ items: null, interval: 1000 })).toThrow(TypeError);
  });

  it("throws TypeError when neither batches nor items is set", () => {
    expect(make({ interval: 1000 })).toThrow(TypeError);
    expect(make({ interval: 1000, batches: undefined, items: undefined })).toThrow(TypeError);
  });

  it("accepts batches, items, both, and a fractional interval", () => {
    expect(make({ batches: 1, interval: 1000 })).not.toThrow();
    expect(make({ items: 100, interval: 1 })).not.toThrow();
    expect(make({ batches: 3, items: 100, interval: 0.5 })).not.toThrow();
    expect(make(undefined)).not.toThrow();
  });
});

describe("batches per interval", () => {
  it("starts at most `batches` batches per interval: 2 per 1000 ms -> 0, 0, 1000, 1000, 2000, 2000", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 2, interval: 1000 },
    });
    const results = submit(batcher, 0, 6);
    const times = await stepTo(2500, calls);
    expect(times).toEqual([0, 0, 1000, 1000, 2000, 2000]);
    expect(calls.map((c) => c.items)).toEqual([[0], [1], [2], [3], [4], [5]]);
    expect(await results).toEqual([0, 2, 4, 6, 8, 10]);
    await batcher.stop();
  });

  it("lets the batch go exactly at t + interval, not a millisecond before", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      rateLimit: { batches: 1, interval: 250 },
    });
    const results = submit(batcher, 0, 4);
    await runJobs();
    expect(calls.map((c) => c.at)).toEqual([0]);
    await vi.advanceTimersByTimeAsync(249);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(2);
    expect(await stepTo(1000, calls)).toEqual([0, 250, 500, 750]);
    await results;
    await batcher.stop();
  });

  it("holds a batch that is due by size or by time until capacity returns", async () => {
    const { batcher, calls, reasons } = timedBatcher({
      maxBatchSize: 3,
      maxQueueTime: 100,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const first = submit(batcher, 0, 3); // full: cut at once
    await vi.advanceTimersByTimeAsync(10);
    const second = submit(batcher, 3, 3); // full, but the quota is used up
    await vi.advanceTimersByTimeAsync(10);
    const third = submit(batcher, 6, 1); // due by time at 120
    expect(await stepTo(2500, calls)).toEqual([0, 1000, 2000]);
    expect(calls.map((c) => c.items)).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(reasons).toEqual(["size", "size", "time"]);
    await Promise.all([first, second, third]);
    await batcher.stop();
  });
});

describe("items per interval", () => {
  it("cuts a batch smaller, to the item quota left", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 3,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { items: 5, interval: 1000 },
    });
    const results = submit(batcher, 0, 12);
    expect(await stepTo(2500, calls)).toEqual([0, 0, 1000, 1000, 2000]);
    expect(calls.map((c) => c.items)).toEqual([
      [0, 1, 2],
      [3, 4], // 2 left of the quota of 5
      [5, 6, 7],
      [8, 9],
      [10, 11],
    ]);
    expect(await results).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]);
    await batcher.stop();
  });

  it("cuts nothing while the quota is 0; capacity returns when the first batch of the window leaves", async () => {
    const { batcher, calls } = timedBatcher({
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { items: 4, interval: 1000 },
    });
    const first = submit(batcher, 0, 3);
    await vi.advanceTimersByTimeAsync(300);
    const second = submit(batcher, 10, 3); // 1 item of the quota left
    await vi.advanceTimersByTimeAsync(100);
    const third = submit(batcher, 20, 2); // none left: waits
    const times = await stepTo(1999, calls);
    // At 1000 the batch of 3 from t=0 leaves: 3 items may go (the 1 from t=300 still counts).
    // At 1300 the item from t=300 leaves: 1 more.
    expect(times).toEqual([0, 300, 1000, 1300]);
    expect(calls.map((c) => c.items)).toEqual([[0, 1, 2], [10], [11, 12, 20], [21]]);
    await Promise.all([first, second, third]);
    await batcher.stop();
  });

  it("never lets more than `items` items start in any window", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 4,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { items: 6, interval: 100 },
    });
    const results: Promise<number[]>[] = [];
    for (let t = 0; t < 500; t += 7) {
      results.push(submit(batcher, t * 10, (t % 3) + 1));
      await vi.advanceTimersByTimeAsync(7);
    }
    await vi.advanceTimersByTimeAsync(5000);
    await Promise.all(results);
    for (const call of calls) {
      const inWindow = calls
        .filter((c) => c.at > call.at - 100 && c.at <= call.at)
        .reduce((sum, c) => sum + c.items.length, 0);
      expect(inWindow).toBeLessThanOrEqual(6);
    }
    expect(calls.reduce((sum, c) => sum + c.items.length, 0)).toBe(
      Array.from({ length: 72 }, (_, i) => ((i * 7) % 3) + 1).reduce((a, b) => a + b, 0),
    );
    await batcher.stop();
  });
});

describe("batches and items together", () => {
  it("applies whichever quota is tighter", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 4,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 2, items: 5, interval: 1000 },
    });
    const results = submit(batcher, 0, 12);
    expect(await stepTo(2500, calls)).toEqual([0, 0, 1000, 1000, 2000]);
    expect(calls.map((c) => c.items)).toEqual([[0, 1, 2, 3], [4], [5, 6, 7, 8], [9], [10, 11]]);
    await results;
    await batcher.stop();
  });

  it("the batch quota binds when batches are small", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 2, items: 100, interval: 1000 },
    });
    const results = submit(batcher, 0, 5);
    expect(await stepTo(2500, calls)).toEqual([0, 0, 1000, 1000, 2000]);
    await results;
    await batcher.stop();
  });
});

describe("rolling window", () => {
  it("a batch at t=900 blocks the next one until 1900, not until a fixed window boundary at 1000", async () => {
    const { batcher, calls } = timedBatcher({
      maxQueueTime: 0,
      rateLimit: { batches: 1, interval: 1000 },
    });
    await vi.advanceTimersByTimeAsync(900);
    const first = batcher.process(1);
    await runJobs();
    expect(calls.map((c) => c.at)).toEqual([900]);
    await vi.advanceTimersByTimeAsync(100); // t = 1000
    const second = batcher.process(2);
    expect(await stepTo(2500, calls)).toEqual([900, 1900]);
    expect(await Promise.all([first, second])).toEqual([2, 4]);
    await batcher.stop();
  });

  it("the item quota rolls too", async () => {
    const { batcher, calls } = timedBatcher({
      maxQueueTime: 0,
      rateLimit: { items: 2, interval: 1000 },
    });
    await vi.advanceTimersByTimeAsync(900);
    const first = submit(batcher, 0, 2);
    await vi.advanceTimersByTimeAsync(100);
    const second = submit(batcher, 2, 3);
    expect(await stepTo(3000, calls)).toEqual([900, 1900, 2900]);
    expect(calls.map((c) => c.items)).toEqual([[0, 1], [2, 3], [4]]);
    await Promise.all([first, second]);
    await batcher.stop();
  });

  it("an idle period frees the quota: after a long pause, a burst goes at once", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 3, interval: 1000 },
    });
    const first = submit(batcher, 0, 3);
    await runJobs();
    await first;
    await vi.advanceTimersByTimeAsync(5000);
    const burst = submit(batcher, 10, 3);
    await runJobs();
    expect(calls.map((c) => c.at)).toEqual([0, 0, 0, 5000, 5000, 5000]);
    await burst;
    await batcher.stop();
  });
});

describe("queueing while rate-limited", () => {
  it("items keep queuing; maxQueueSize applies (onQueueFull reject)", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 2,
      maxQueueTime: 0,
      maxQueueSize: 3,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const first = submit(batcher, 0, 2);
    await runJobs();
    expect(calls).toHaveLength(1);
    const queued = [batcher.process(2), batcher.process(3), batcher.process(4)];
    await runJobs();
    expect(batcher.queueSize).toBe(3);
    const rejected = batcher.process(5);
    await expect(rejected).rejects.toBeInstanceOf(QueueFullError);
    await expect(rejected).rejects.toMatchObject({ code: "ERR_QUEUE_FULL", maxQueueSize: 3 });

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(batcher.queueSize).toBe(1);
    const late = batcher.process(6); // room again: queued, goes at 2000 with 4
    await runJobs();
    expect(batcher.queueSize).toBe(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.at)).toEqual([0, 1000, 2000]);
    expect(calls.at(-1)?.items).toEqual([4, 6]);
    await expect(late).resolves.toBe(12);
    expect(await Promise.all(queued)).toEqual([4, 6, 8]);
    await first;
    await batcher.stop();
  });

  it("onQueueFull 'wait': waiters are admitted as rate-limited batches leave the queue", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 2,
      maxQueueTime: 0,
      maxQueueSize: 2,
      onQueueFull: "wait",
      rateLimit: { batches: 1, interval: 1000 },
    });
    const all = submit(batcher, 0, 7);
    await runJobs();
    // [0, 1] went at once; 2, 3 are queued; 4, 5, 6 wait for room.
    expect(calls.map((c) => c.items)).toEqual([[0, 1]]);
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(3);

    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(3);

    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.items)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(1);

    await vi.advanceTimersByTimeAsync(2000);
    expect(await all).toEqual([0, 2, 4, 6, 8, 10, 12]);
    expect(calls.map((c) => c.at)).toEqual([0, 1000, 2000, 3000]);
    expect(calls.map((c) => c.items)).toEqual([[0, 1], [2, 3], [4, 5], [6]]);
    await batcher.stop();
  });

  it("onQueueFull 'dropOldest': the oldest queued item makes room while the quota is used up", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      maxQueueSize: 2,
      onQueueFull: "dropOldest",
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = [0, 1, 2, 3].map((i) => batcher.process(i).catch((e: unknown) => e));
    await runJobs();
    // 0 went at once; 1 and 2 queued; 3 pushed 1 out.
    expect(batcher.queueSize).toBe(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls.map((c) => c.items)).toEqual([[0], [2], [3]]);
    expect(calls.map((c) => c.at)).toEqual([0, 1000, 2000]);
    const settled = await Promise.all(results);
    expect(settled[1]).toBeInstanceOf(QueueFullError);
    expect(settled[1]).toMatchObject({ code: "ERR_QUEUE_FULL" });
    expect([settled[0], settled[2], settled[3]]).toEqual([0, 4, 6]);
    await batcher.stop();
  });
});

describe("timer: armed for when capacity returns, no polling", () => {
  it("holds at most 2 timers while rate-limited, and no batch starts early", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 1,
      maxQueueTime: 5,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 2, interval: 500 },
    });
    const results = submit(batcher, 0, 7);
    const timers: number[] = [];
    const times = await stepTo(2000, calls, timers);
    expect(times).toEqual([0, 0, 500, 500, 1000, 1000, 1500]);
    expect(Math.max(...timers)).toBeLessThanOrEqual(2);
    await results;
    expect(vi.getTimerCount()).toBe(0); // idle: no timer held
    await batcher.stop();
  });

  it("sets a handful of timers over a long rate-limited wait, not one per millisecond", async () => {
    let timersSet = 0;
    const clock: Clock = {
      now: () => Date.now(),
      setTimeout: (callback, ms) => {
        timersSet++;
        return setTimeout(callback, ms);
      },
      clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      setImmediate: (callback) => {
        timersSet++;
        return setTimeout(callback, 0);
      },
      clearImmediate: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    const { batcher, calls } = timedBatcher({
      maxQueueTime: 0,
      clock,
      rateLimit: { batches: 1, interval: 10_000 },
    });
    const first = batcher.process(1);
    await runJobs();
    const second = batcher.process(2);
    await runJobs();
    const before = timersSet;
    const times = await stepTo(10_000, calls);
    expect(times).toEqual([0, 10_000]);
    expect(timersSet - before).toBeLessThanOrEqual(2);
    await Promise.all([first, second]);
    await batcher.stop();
  });
});

describe("with concurrency", () => {
  it("a free slot does not bypass the rate limit, and the rate limit does not bypass concurrency", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: 1,
      rateLimit: { batches: 3, interval: 1000 },
    });
    const results = Promise.all([0, 1, 2, 3, 4].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(1); // one slot

    await vi.advanceTimersByTimeAsync(500);
    double(calls[0]);
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([0, 500]);

    await vi.advanceTimersByTimeAsync(100);
    double(calls[1]);
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([0, 500, 600]);

    await vi.advanceTimersByTimeAsync(100); // t = 700: slot free, but 3 batches in the window
    double(calls[2]);
    await runJobs();
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(299);
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1); // t = 1000: the batch from t=0 leaves the window
    expect(calls.map((c) => c.startedAt)).toEqual([0, 500, 600, 1000]);

    // Rate capacity is back at 1500, but the slot is busy until 1700.
    await vi.advanceTimersByTimeAsync(700);
    expect(calls).toHaveLength(4);
    double(calls[3]);
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([0, 500, 600, 1000, 1700]);
    double(calls[4]);
    expect(await results).toEqual([0, 2, 4, 6, 8]);
    expect(maxRunning()).toBe(1);
    await batcher.stop();
  });

  it("with many slots, the rate limit is what bounds the batches started", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      concurrency: 10,
      rateLimit: { batches: 2, interval: 1000 },
    });
    const results = Promise.all([0, 1, 2, 3, 4].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(2500);
    expect(calls.map((c) => c.startedAt)).toEqual([0, 0, 1000, 1000, 2000]);
    expect(maxRunning()).toBe(5); // none was settled: all five run at once
    for (const call of calls) double(call);
    await results;
    await batcher.stop();
  });
});

describe("with flush()", () => {
  it("flush() does not bypass the rate limit, and resolves when the flushed items have settled", async () => {
    const { batcher, calls, reasons } = timedBatcher({
      maxBatchSize: 2,
      maxQueueTime: 10_000,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = [batcher.process(0), batcher.process(1), batcher.process(2)];
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[0, 1]]); // full: cut at once
    const flushed = track(batcher.flush());
    await runJobs();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(1);
    expect(flushed.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.at)).toEqual([0, 1000]);
    expect(calls[1]?.items).toEqual([2]);
    expect(reasons).toEqual(["size", "flush"]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(await Promise.all(results)).toEqual([0, 2, 4]);
    await batcher.stop();
  });
});

describe("with stop()", () => {
  it("a graceful stop drains every queued item, still under the rate limit", async () => {
    const { batcher, calls, reasons } = timedBatcher({
      maxBatchSize: 2,
      maxQueueTime: 10_000,
      concurrency: Number.POSITIVE_INFINITY,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = submit(batcher, 0, 5);
    await runJobs();
    expect(calls).toHaveLength(1);
    const stopped = track(batcher.stop());
    await runJobs();
    expect(calls).toHaveLength(1);
    await expect(batcher.process(9)).rejects.toBeInstanceOf(BatcherStoppedError);

    const times = await stepTo(1999, calls);
    expect(times).toEqual([0, 1000]);
    expect(stopped.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await runJobs();
    expect(calls.map((c) => c.at)).toEqual([0, 1000, 2000]);
    expect(calls.map((c) => c.items)).toEqual([[0, 1], [2, 3], [4]]);
    expect(reasons).toEqual(["size", "size", "stop"]);
    expect(stopped.settled).toBe(true);
    expect(await results).toEqual([0, 2, 4, 6, 8]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a graceful stop with a timeout forces what the rate limit held back", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 2,
      maxQueueTime: 10_000,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = [0, 1, 2, 3, 4].map((i) => batcher.process(i).catch((e: unknown) => e));
    await runJobs();
    const stopped = track(batcher.stop({ timeout: 1500 }));
    await vi.advanceTimersByTimeAsync(1499);
    expect(calls.map((c) => c.at)).toEqual([0, 1000]);
    expect(stopped.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeUndefined();
    const settled = await Promise.all(results);
    expect(settled.slice(0, 4)).toEqual([0, 2, 4, 6]);
    expect(settled[4]).toBeInstanceOf(BatcherStoppedError);
    expect(settled[4]).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stop({ force: true }) rejects items held back by the rate limit at once, and clears the timer", async () => {
    const { batcher, calls } = timedBatcher({
      maxBatchSize: 1,
      maxQueueTime: 0,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const results = [0, 1, 2].map((i) => batcher.process(i).catch((e: unknown) => e));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(2);
    await batcher.stop({ force: true });
    expect(Date.now()).toBe(100);
    const settled = await Promise.all(results);
    expect(settled[0]).toBe(0);
    for (const error of settled.slice(1)) {
      expect(error).toBeInstanceOf(BatcherStoppedError);
      expect(error).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    }
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(0);
  });
});
