/**
 * `onIdle()`: resolves when nothing is queued or in flight.
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

describe("onIdle()", () => {
  it("resolves at once for a batcher that was never used", async () => {
    const { batcher } = manualBatcher({});
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(true);
    await batcher.stop();
  });

  it("resolves at once again once everything has settled", async () => {
    const batcher = createBatcher((items: number[]) => items, { maxQueueTime: 5 });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(5);
    await expect(result).resolves.toBe(1);
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(true);
    await batcher.stop();
  });

  it("waits for queued items and for the batch in flight", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const results = Promise.all([batcher.process(1), batcher.process(2)]);
    const idle = track(batcher.onIdle());
    await vi.advanceTimersByTimeAsync(9);
    expect(idle.settled).toBe(false); // queued, waiting for the timer
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
    expect(idle.settled).toBe(false); // in flight

    await vi.advanceTimersByTimeAsync(1000);
    expect(idle.settled).toBe(false);
    double(calls[0]);
    await runJobs();
    expect(idle.settled).toBe(true);
    expect(await results).toEqual([2, 4]);
    await batcher.stop();
  });

  it("waits for a timer-pending partial batch", async () => {
    const batcher = createBatcher((items: number[]) => items.map((x) => -x), {
      maxBatchSize: 10,
      maxQueueTime: 100,
    });
    const result = batcher.process(3);
    const idle = track(batcher.onIdle());
    await vi.advanceTimersByTimeAsync(99);
    expect(idle.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(idle.settled).toBe(true);
    await expect(result).resolves.toBe(-3);
    await batcher.stop();
  });

  it("waits for items queued behind a busy slot", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 1, concurrency: 1 });
    const results = Promise.all([batcher.process(1), batcher.process(2)]);
    const idle = track(batcher.onIdle());
    await runJobs();
    double(calls[0]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(idle.settled).toBe(false);
    double(calls[1]);
    await runJobs();
    expect(idle.settled).toBe(true);
    expect(await results).toEqual([2, 4]);
    await batcher.stop();
  });

  it("resolves every waiter, including one that joined later", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const result = batcher.process(1);
    const waiters = [track(batcher.onIdle()), track(batcher.onIdle())];
    await vi.advanceTimersByTimeAsync(10);
    waiters.push(track(batcher.onIdle()));
    await runJobs();
    expect(waiters.map((w) => w.settled)).toEqual([false, false, false]);

    double(calls[0]);
    await runJobs();
    expect(waiters.map((w) => w.settled)).toEqual([true, true, true]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });

  it("resolves after a force stop", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 1, maxQueueTime: 10 });
    const items = [1, 2].map((i) => batcher.process(i).catch((error: unknown) => error));
    await runJobs();
    expect(calls).toHaveLength(1);
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(false);

    await batcher.stop({ force: true });
    await runJobs();
    expect(idle.settled).toBe(true);
    for (const error of await Promise.all(items)) expect(error).toBeInstanceOf(BatcherStoppedError);
    await expect(batcher.onIdle()).resolves.toBeUndefined();
  });

  it("resolves after a graceful stop has drained", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const result = batcher.process(1);
    const idle = track(batcher.onIdle());
    const stopped = batcher.stop();
    await runJobs();
    expect(idle.settled).toBe(false);
    double(calls[0]);
    await stopped;
    expect(idle.settled).toBe(true);
    await expect(result).resolves.toBe(2);
  });
});
