/**
 * The batcher's observable state: `isRunning`, `queueSize`, `inFlight`, and `maxQueueSize`.
 */
import { BatcherError, BatcherStoppedError, createBatcher, QueueFullError } from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("isRunning", () => {
  it("is false before the first process(), true from it until stop() has completed", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    expect(batcher.isRunning).toBe(false);

    const result = batcher.process(1);
    expect(batcher.isRunning).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    expect(batcher.isRunning).toBe(true);

    const stopped = batcher.stop();
    await runJobs();
    expect(batcher.isRunning).toBe(true); // draining: the batch is still in flight

    double(calls[0]);
    await stopped;
    expect(batcher.isRunning).toBe(false);
    await expect(result).resolves.toBe(2);
  });

  it("stays true while idle between items", async () => {
    const batcher = createBatcher((items: number[]) => items, { maxQueueTime: 10 });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(10);
    await expect(result).resolves.toBe(1);
    await batcher.onIdle();
    expect(batcher.isRunning).toBe(true);
    await batcher.stop();
    expect(batcher.isRunning).toBe(false);
  });

  it("is false after a force stop", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 10 });
    const item = batcher.process(1).catch((error: unknown) => error);
    expect(batcher.isRunning).toBe(true);
    await batcher.stop({ force: true });
    expect(batcher.isRunning).toBe(false);
    expect(await item).toBeInstanceOf(BatcherStoppedError);
  });

  it("is false for a batcher stopped before use, and stays false", async () => {
    const { batcher } = manualBatcher({});
    await batcher.stop();
    expect(batcher.isRunning).toBe(false);
    await expect(batcher.process(1)).rejects.toBeInstanceOf(BatcherStoppedError);
    expect(batcher.isRunning).toBe(false);
  });
});

describe("queueSize and inFlight", () => {
  it("are exact at every step", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 3,
      maxQueueTime: 100,
      concurrency: 1,
    });
    const counts = () => [batcher.queueSize, batcher.inFlight];
    expect(counts()).toEqual([0, 0]);

    const a = batcher.process(1);
    expect(counts()).toEqual([1, 0]);
    const bc = [batcher.process(2), batcher.process(3)]; // maxBatchSize: cut at once
    expect(counts()).toEqual([0, 3]);
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(counts()).toEqual([0, 3]);

    const de = [batcher.process(4), batcher.process(5)];
    expect(counts()).toEqual([2, 3]);
    await vi.advanceTimersByTimeAsync(100); // due, but the only slot is busy
    expect(calls).toHaveLength(1);
    expect(counts()).toEqual([2, 3]);

    double(calls[0]);
    await runJobs();
    expect(calls[1]?.items).toEqual([4, 5]);
    expect(counts()).toEqual([0, 2]);

    const f = batcher.process(6);
    expect(counts()).toEqual([1, 2]);
    double(calls[1]);
    await runJobs();
    expect(counts()).toEqual([1, 0]); // 6 arrived at 100 ms: not due before 200 ms

    await vi.advanceTimersByTimeAsync(99);
    expect(counts()).toEqual([1, 0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[2]?.items).toEqual([6]);
    expect(counts()).toEqual([0, 1]);

    double(calls[2]);
    await runJobs();
    expect(counts()).toEqual([0, 0]);
    expect(await Promise.all([a, ...bc, ...de, f])).toEqual([2, 4, 6, 8, 10, 12]);
    await batcher.stop();
  });

  it("drop to zero at a force stop", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 2 });
    const items = [1, 2, 3].map((i) => batcher.process(i).catch((error: unknown) => error));
    await runJobs();
    expect(calls).toHaveLength(1);
    expect([batcher.queueSize, batcher.inFlight]).toEqual([1, 2]);

    const stopped = batcher.stop({ force: true });
    expect([batcher.queueSize, batcher.inFlight]).toEqual([0, 0]);
    await stopped;
    for (const error of await Promise.all(items)) expect(error).toBeInstanceOf(BatcherStoppedError);
  });

  it("count a graceful stop's drain", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const items = [batcher.process(1), batcher.process(2)];
    expect([batcher.queueSize, batcher.inFlight]).toEqual([2, 0]);
    const stopped = batcher.stop();
    expect([batcher.queueSize, batcher.inFlight]).toEqual([0, 2]);
    await runJobs();
    double(calls[0]);
    await stopped;
    expect([batcher.queueSize, batcher.inFlight]).toEqual([0, 0]);
    expect(await Promise.all(items)).toEqual([2, 4]);
  });
});

describe("maxQueueSize", () => {
  it("rejects with QueueFullError once that many wait, and accepts again once a batch is cut", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 10,
      maxQueueTime: 100,
      maxQueueSize: 2,
    });
    const accepted = [batcher.process(1), batcher.process(2)];
    const refused = batcher.process(3);
    await expect(refused).rejects.toBeInstanceOf(QueueFullError);
    await expect(refused).rejects.toBeInstanceOf(BatcherError);
    await expect(refused).rejects.toMatchObject({ code: "ERR_QUEUE_FULL", maxQueueSize: 2 });
    expect(batcher.queueSize).toBe(2);

    await vi.advanceTimersByTimeAsync(100);
    expect(calls[0]?.items).toEqual([1, 2]);
    expect(batcher.queueSize).toBe(0);
    const later = batcher.process(4);
    expect(batcher.queueSize).toBe(1);

    double(calls[0]);
    expect(await Promise.all(accepted)).toEqual([2, 4]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[1]?.items).toEqual([4]);
    double(calls[1]);
    await expect(later).resolves.toBe(8);
    await batcher.stop();
  });

  it("counts only waiting items: in-flight items do not fill the queue, and nothing queued is lost", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 100,
      concurrency: 1,
      maxQueueSize: 2,
    });
    const results = [1, 2, 3, 4].map((i) => batcher.process(i)); // [1, 2] in flight; 3, 4 wait
    expect([batcher.queueSize, batcher.inFlight]).toEqual([2, 2]);
    const refused = batcher.process(5);
    await expect(refused).rejects.toMatchObject({ code: "ERR_QUEUE_FULL", maxQueueSize: 2 });
    await expect(refused).rejects.toBeInstanceOf(QueueFullError);

    await runJobs();
    double(calls[0]); // the slot frees: [3, 4] is cut
    await runJobs();
    expect(batcher.queueSize).toBe(0);
    results.push(batcher.process(5));
    expect(batcher.queueSize).toBe(1);

    double(calls[1]);
    await vi.advanceTimersByTimeAsync(100);
    double(calls[2]);
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [3, 4], [5]]);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8, 10]);
    await batcher.stop();
  });
});
