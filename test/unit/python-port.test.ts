/**
 * The scenarios of the Python AsyncBatcher's own test suite, with fake timers: batch composition,
 * the worked example for each concurrency, queue full, stop and force stop.
 */
import {
  AsyncBatcher,
  type BatchContext,
  type BatcherOptions,
  BatcherStoppedError,
  QueueFullError,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Doubles its items, after `sleepMs`; records every batch it was given and when it ran. */
class Doubler extends AsyncBatcher<number, number> {
  readonly batches: number[][] = [];
  readonly spans: Array<[start: number, end: number]> = [];
  readonly signals: AbortSignal[] = [];

  constructor(
    readonly sleepMs: number,
    options: BatcherOptions<number, number>,
  ) {
    super(options);
  }

  async processBatch(batch: number[], context: BatchContext): Promise<number[]> {
    this.batches.push([...batch]);
    this.signals.push(context.signal);
    const start = Date.now();
    if (this.sleepMs > 0) await sleep(this.sleepMs);
    this.spans.push([start, Date.now()]);
    return batch.map((x) => x * 2);
  }
}

/** Submits items `from..to` after `delay` ms and collects each result or error. */
async function callsMaker(batcher: Doubler, delay: number, from: number, to: number) {
  await sleep(delay);
  return Promise.all(
    range(from, to).map((i) => batcher.process(i).catch((error: unknown) => error)),
  );
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("batch composition", () => {
  it("puts items submitted together into one batch", async () => {
    const batcher = new Doubler(0, { maxBatchSize: 10, maxQueueTime: 10 });
    const results = Promise.all(range(0, 10).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(await results).toEqual(range(0, 10).map((i) => i * 2));
    expect(batcher.batches).toEqual([range(0, 10)]);
    await batcher.stop();
  });

  it("splits a larger burst by maxBatchSize, in order", async () => {
    const batcher = new Doubler(0, { maxBatchSize: 10, maxQueueTime: 10 });
    const results = Promise.all(range(0, 25).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(await results).toEqual(range(0, 25).map((i) => i * 2));
    expect(batcher.batches).toEqual([range(0, 10), range(10, 20), range(20, 25)]);
    await batcher.stop();
  });

  it("cuts by size at once, and a partial batch when its oldest item has waited maxQueueTime", async () => {
    const batcher = new Doubler(0, { maxBatchSize: 10, maxQueueTime: 200, concurrency: Infinity });
    const makers = Promise.all([
      callsMaker(batcher, 0, 0, 5),
      callsMaker(batcher, 250, 5, 20),
      callsMaker(batcher, 400, 20, 30),
    ]);
    await vi.advanceTimersByTimeAsync(1000);
    const [first, second, third] = await makers;
    expect(batcher.batches).toEqual([range(0, 5), range(5, 15), range(15, 25), range(25, 30)]);
    // [0-4] at 200 (time), [5-14] at 250 (size), [15-24] at 400 (size), [25-29] at 600 (time)
    expect(batcher.spans.map(([start]) => start)).toEqual([200, 250, 400, 600]);
    expect(first).toEqual(range(0, 5).map((i) => i * 2));
    expect(second).toEqual(range(5, 20).map((i) => i * 2));
    expect(third).toEqual(range(20, 30).map((i) => i * 2));
    await batcher.stop();
  });
});

describe("the worked example: batches take 1000 ms", () => {
  // Items 0-4 arrive at 0, 5-19 at 250, 20-29 at 400; maxBatchSize 10, maxQueueTime 200.
  it.each([
    { concurrency: 1, starts: [200, 1200, 2200, 3200], done: 4200 },
    { concurrency: 2, starts: [200, 250, 1200, 1250], done: 2250 },
    { concurrency: 3, starts: [200, 250, 400, 1200], done: 2200 },
    { concurrency: Infinity, starts: [200, 250, 400, 600], done: 1600 },
  ])(
    "concurrency $concurrency: all results in at $done ms",
    async ({ concurrency, starts, done }) => {
      const batcher = new Doubler(1000, { maxBatchSize: 10, maxQueueTime: 200, concurrency });
      let finishedAt = -1;
      const makers = Promise.all([
        callsMaker(batcher, 0, 0, 5),
        callsMaker(batcher, 250, 5, 20),
        callsMaker(batcher, 400, 20, 30),
      ]).then((results) => {
        finishedAt = Date.now();
        return results;
      });
      await vi.advanceTimersByTimeAsync(done - 1);
      expect(finishedAt).toBe(-1);
      await vi.advanceTimersByTimeAsync(1);
      const [first, second, third] = await makers;
      expect(finishedAt).toBe(done);
      expect(batcher.batches).toEqual([range(0, 5), range(5, 15), range(15, 25), range(25, 30)]);
      expect(batcher.spans.map(([start]) => start).sort((a, b) => a - b)).toEqual(starts);
      expect(first).toEqual(range(0, 5).map((i) => i * 2));
      expect(second).toEqual(range(5, 20).map((i) => i * 2));
      expect(third).toEqual(range(20, 30).map((i) => i * 2));
      await batcher.stop();
    },
  );
});

describe("queue full", () => {
  it("rejects what does not fit in maxQueueSize and serves the rest", async () => {
    const batcher = new Doubler(1000, {
      maxBatchSize: 10,
      maxQueueTime: 200,
      concurrency: 1,
      maxQueueSize: 15,
    });
    const makers = Promise.all([
      callsMaker(batcher, 0, 0, 10),
      callsMaker(batcher, 250, 10, 20),
      callsMaker(batcher, 400, 20, 30),
    ]);
    await vi.advanceTimersByTimeAsync(3000);
    const [first, second, third] = await makers;
    expect(batcher.batches).toEqual([range(0, 10), range(10, 20), range(20, 25)]);
    expect(first).toEqual(range(0, 10).map((i) => i * 2));
    expect(second).toEqual(range(10, 20).map((i) => i * 2));
    expect(third.slice(0, 5)).toEqual(range(20, 25).map((i) => i * 2));
    for (const error of third.slice(5)) {
      expect(error).toBeInstanceOf(QueueFullError);
      expect((error as QueueFullError).code).toBe("ERR_QUEUE_FULL");
    }
    await batcher.stop();
  });
});

describe("stop", () => {
  it("stops after serving, then rejects new items", async () => {
    const batcher = new Doubler(0, { maxBatchSize: 10 });
    const results = Promise.all(range(0, 10).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    await results;
    expect(batcher.isRunning).toBe(true);
    await batcher.stop();
    expect(batcher.isRunning).toBe(false);
    const late = batcher.process(0);
    await expect(late).rejects.toBeInstanceOf(BatcherStoppedError);
    await expect(late).rejects.toMatchObject({ code: "ERR_BATCHER_STOPPED" });
  });

  it("force stop rejects what is in flight and aborts the running batch", async () => {
    const batcher = new Doubler(1000, { maxBatchSize: 10, maxQueueTime: 200, concurrency: 1 });
    const inFlight = range(0, 10).map((i) => batcher.process(i).catch((error: unknown) => error));
    const queued = range(10, 15).map((i) => batcher.process(i).catch((error: unknown) => error));
    await vi.advanceTimersByTimeAsync(100);
    expect(batcher.isRunning).toBe(true);
    expect(batcher.inFlight).toBe(10);
    expect(batcher.queueSize).toBe(5);
    await batcher.stop({ force: true });
    expect(batcher.isRunning).toBe(false);
    for (const result of await Promise.all([...inFlight, ...queued])) {
      expect(result).toBeInstanceOf(BatcherStoppedError);
    }
    expect(batcher.signals).toHaveLength(1);
    expect(batcher.signals[0]?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(2000);
    expect(batcher.batches).toEqual([range(0, 10)]);
  });
});
