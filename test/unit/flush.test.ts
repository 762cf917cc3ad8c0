/**
 * `flush()`: cuts what is queued now without waiting for the timer, and resolves once those items
 * have settled.
 */
import { BatcherStoppedError, createBatcher } from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("flush()", () => {
  it("cuts everything queued now without waiting for the timer", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 1000 });
    const results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(0);

    const flushed = batcher.flush();
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([1, 2, 3]);
    expect(reasons).toEqual(["flush"]);
    expect(Date.now()).toBe(100);

    double(calls[0]);
    await flushed;
    expect(await results).toEqual([2, 4, 6]);
    await batcher.stop();
  });

  it("respects maxBatchSize and concurrency", async () => {
    const { batcher, calls, reasons, maxRunning } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 2,
    });
    const results = Promise.all([0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => batcher.process(i)));
    await runJobs();
    // Both slots are busy with [0, 1] and [2, 3]; 4..8 wait.
    expect(calls).toHaveLength(2);
    expect(batcher.queueSize).toBe(5);

    const flushed = track(batcher.flush());
    await runJobs();
    expect(calls).toHaveLength(2);

    double(calls[0]);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    double(calls[1]);
    await runJobs();
    expect(calls[3]?.items).toEqual([6, 7]);
    double(calls[2]);
    await runJobs();
    expect(calls[4]?.items).toEqual([8]); // the partial batch did not wait for its timer
    expect(Date.now()).toBe(0);
    expect(flushed.settled).toBe(false);

    double(calls[3]);
    await runJobs();
    expect(flushed.settled).toBe(false);
    double(calls[4]);
    await runJobs();
    expect(flushed.settled).toBe(true);

    expect(await results).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16]);
    expect(reasons).toEqual(["size", "size", "size", "size", "flush"]);
    expect(maxRunning()).toBe(2);
    await batcher.stop();
  });

  it("with one slot, dispatches the flushed items one batch of maxBatchSize at a time", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    // Fill the queue past maxBatchSize while the single slot is busy.
    const results = Promise.all([0, 1, 2, 3, 4, 5, 6].map((i) => batcher.process(i)));
    await runJobs();
    expect(batcher.queueSize).toBe(5);
    const flushed = track(batcher.flush());

    for (const expected of [[2, 3], [4, 5], [6], undefined]) {
      double(calls.at(-1));
      await runJobs();
      if (expected !== undefined) expect(calls.at(-1)?.items).toEqual(expected);
      expect(flushed.settled).toBe(expected === undefined);
    }
    expect(calls).toHaveLength(4);
    expect(maxRunning()).toBe(1);
    expect(await results).toEqual([0, 2, 4, 6, 8, 10, 12]);
    await batcher.stop();
  });

  it("resolves once the flushed items have settled, and not before", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const result = batcher.process(5);
    const flushed = track(batcher.flush());
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toHaveLength(1);
    expect(flushed.settled).toBe(false);

    double(calls[0]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    await expect(result).resolves.toBe(10);
    await batcher.stop();
  });

  it("resolves once the flushed items have settled, also when their batch fails", async () => {
    const batcher = createBatcher<number, number>(
      async () => {
        throw new Error("boom");
      },
      { maxQueueTime: 1000 },
    );
    const result = batcher.process(1);
    const check = expect(result).rejects.toThrow(Error);
    await batcher.flush();
    await check;
    await batcher.stop();
  });

  it("resolves at once when nothing is queued", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 5 });
    await batcher.flush(); // never used

    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(5);
    expect(calls).toHaveLength(1);
    // Only an item in flight, nothing queued: nothing to wait for.
    const flushed = track(batcher.flush());
    await runJobs();
    expect(flushed.settled).toBe(true);

    double(calls[0]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });

  it("does not wait for items submitted after the call", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 1000 });
    const early = batcher.process(1);
    const flushed = track(batcher.flush());
    const late = batcher.process(2); // same tick, but after flush()
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([1]);

    double(calls[0]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    await expect(early).resolves.toBe(2);
    expect(batcher.queueSize).toBe(1);
    expect(calls).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[1]?.items).toEqual([2]);
    double(calls[1]);
    await expect(late).resolves.toBe(4);
    expect(reasons).toEqual(["flush", "time"]);
    await batcher.stop();
  });

  it("works when called twice", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 1000, concurrency: 1 });
    const results = Promise.all([batcher.process(0), batcher.process(1)]);
    const first = track(batcher.flush());
    const firstAgain = track(batcher.flush());
    await runJobs();
    expect(calls).toHaveLength(1);

    const more = Promise.all([batcher.process(2), batcher.process(3)]);
    const second = track(batcher.flush());
    await runJobs();
    expect(calls).toHaveLength(1); // the only slot is busy

    double(calls[0]);
    await runJobs();
    expect(first.settled).toBe(true);
    expect(firstAgain.settled).toBe(true);
    expect(second.settled).toBe(false);
    expect(calls[1]?.items).toEqual([2, 3]);

    double(calls[1]);
    await runJobs();
    expect(second.settled).toBe(true);
    expect(await results).toEqual([0, 2]);
    expect(await more).toEqual([4, 6]);
    expect(reasons).toEqual(["flush", "flush"]);
    expect(Date.now()).toBe(0);
    await batcher.stop();
  });

  it("resolves when a force stop follows it", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 1, maxQueueTime: 1000 });
    const items = [0, 1, 2].map((i) => batcher.process(i).catch((error: unknown) => error));
    const flushed = track(batcher.flush());
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(flushed.settled).toBe(false);

    await batcher.stop({ force: true });
    await runJobs();
    expect(flushed.settled).toBe(true);
    for (const error of await Promise.all(items)) expect(error).toBeInstanceOf(BatcherStoppedError);
  });
});
