/**
 * `stop()`: graceful drain, force, timeout escalation, idempotence and option checks.
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

describe("graceful stop", () => {
  it("rejects new process() calls with BatcherStoppedError, during and after the stop", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const first = batcher.process(1);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);

    const stopped = batcher.stop();
    const during = batcher.process(2);
    await expect(during).rejects.toBeInstanceOf(BatcherStoppedError);
    await expect(during).rejects.toMatchObject({ code: "ERR_BATCHER_STOPPED" });

    double(calls[0]);
    await expect(first).resolves.toBe(2);
    await stopped;

    const after = batcher.process(3);
    await expect(after).rejects.toBeInstanceOf(BatcherStoppedError);
    await expect(after).rejects.toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    expect(calls).toHaveLength(1);
  });

  it("dispatches queued items at once, without waiting for maxQueueTime", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 1000 });
    const results = Promise.all([batcher.process(1), batcher.process(2), batcher.process(3)]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(0);

    const stopped = batcher.stop();
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([1, 2, 3]);
    expect(calls[0]?.startedAt).toBe(100); // the timer would have fired at 1000
    expect(reasons).toEqual(["stop"]);

    double(calls[0]);
    expect(await results).toEqual([2, 4, 6]);
    await stopped;
  });

  it("still applies concurrency while draining, and resolves only when everything has settled", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const results = Promise.all([0, 1, 2, 3, 4].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(1); // [0, 1] cut by size; the rest waits for the one slot

    const stopped = track(batcher.stop());
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(3);

    double(calls[0]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.items).toEqual([2, 3]);
    expect(stopped.settled).toBe(false);

    double(calls[1]);
    await runJobs();
    expect(calls).toHaveLength(3);
    expect(calls[2]?.items).toEqual([4]);
    expect(stopped.settled).toBe(false);

    double(calls[2]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(await results).toEqual([0, 2, 4, 6, 8]);
    expect(reasons).toEqual(["size", "size", "stop"]);
    expect(batcher.isRunning).toBe(false);
  });

  it("waits for a batch in flight when nothing is queued", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 5 });
    const result = batcher.process(7);
    await vi.advanceTimersByTimeAsync(5);
    expect(calls).toHaveLength(1);

    const stopped = track(batcher.stop());
    await vi.advanceTimersByTimeAsync(10_000);
    expect(stopped.settled).toBe(false);

    double(calls[0]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    await expect(result).resolves.toBe(14);
  });

  it("resolves when batches fail, and does not abort the signal", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const failing = batcher.process(1);
    const stopped = batcher.stop();
    await runJobs();
    const error = new Error("boom");
    calls[0]?.reject(error);
    await expect(failing).rejects.toBe(error);
    await stopped;
    expect(calls[0]?.context.signal.aborted).toBe(false);
  });

  it("resolves for a batcher that was never used", async () => {
    const { batcher, calls } = manualBatcher({});
    await expect(batcher.stop()).resolves.toBeUndefined();
    expect(batcher.isRunning).toBe(false);
    await expect(batcher.process(1)).rejects.toBeInstanceOf(BatcherStoppedError);
    expect(calls).toHaveLength(0);
  });
});

describe("force stop", () => {
  it("rejects every queued and in-flight item at once and aborts the running batch's signal", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 2, maxQueueTime: 1000 });
    const inFlight = [batcher.process(0), batcher.process(1)];
    await runJobs();
    expect(calls).toHaveLength(1);
    const signal = calls[0]?.context.signal as AbortSignal; // read before the abort
    const queued = [batcher.process(2)];
    const all = [...inFlight, ...queued].map((p) => p.catch((error: unknown) => error));

    await batcher.stop({ force: true });
    const errors = await Promise.all(all);
    const [error] = errors;
    expect(error).toBeInstanceOf(BatcherStoppedError);
    expect(error).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    for (const other of errors) expect(other).toBe(error);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(error);
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    expect(batcher.isRunning).toBe(false);
    expect(Date.now()).toBe(0); // no time passed: nothing waited for a timer or the batch
  });

  it("aborts the signal with the stop error also when it is first read after the abort", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 5 });
    const item = batcher.process(1).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(5);
    expect(calls).toHaveLength(1);

    await batcher.stop({ force: true });
    const error = await item;
    expect(error).toBeInstanceOf(BatcherStoppedError);
    const signal = calls[0]?.context.signal as AbortSignal; // first read here
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(error);
  });

  it("drops results that come after the force stop: callers keep the stop error", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 5, concurrency: 3 });
    const items: Promise<unknown>[] = [];
    for (const i of [1, 2, 3]) {
      items.push(batcher.process(i).catch((error: unknown) => error));
      await vi.advanceTimersByTimeAsync(5);
    }
    expect(calls).toHaveLength(3);
    expect(batcher.inFlight).toBe(3);

    await batcher.stop({ force: true });
    double(calls[0]);
    calls[1]?.reject(new Error("late failure"));
    calls[2]?.resolve(undefined);
    await runJobs();

    for (const error of await Promise.all(items)) expect(error).toBeInstanceOf(BatcherStoppedError);
    expect(batcher.inFlight).toBe(0);
    expect(batcher.queueSize).toBe(0);
    expect(batcher.isRunning).toBe(false);
  });

  it("never starts later batches, including one already cut but not yet started", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 10,
      concurrency: 1,
    });
    // Reaching maxBatchSize cuts a batch inside process(); its function runs on a later microtask.
    const cut = [batcher.process(0), batcher.process(1)];
    const queued = [batcher.process(2), batcher.process(3), batcher.process(4)];
    const all = [...cut, ...queued].map((p) => p.catch((error: unknown) => error));
    const stopped = batcher.stop({ force: true });

    await vi.advanceTimersByTimeAsync(1000);
    await stopped;
    expect(calls).toHaveLength(0);
    for (const error of await Promise.all(all)) expect(error).toBeInstanceOf(BatcherStoppedError);
  });

  it("never starts the queued batches waiting for a slot", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 1, maxQueueTime: 10 });
    const all = [0, 1, 2].map((i) => batcher.process(i).catch((error: unknown) => error));
    await runJobs();
    expect(calls).toHaveLength(1);

    await batcher.stop({ force: true });
    double(calls[0]); // frees the slot, late
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    for (const error of await Promise.all(all)) expect(error).toBeInstanceOf(BatcherStoppedError);
  });
});

describe("stop with a timeout", () => {
  it("escalates to a force stop once the timeout passes", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 1, maxQueueTime: 10 });
    const inFlight = batcher.process(1).catch((error: unknown) => error);
    const queued = batcher.process(2).catch((error: unknown) => error);
    await runJobs();
    expect(calls).toHaveLength(1);

    const stopped = track(batcher.stop({ timeout: 500 }));
    await vi.advanceTimersByTimeAsync(499);
    expect(stopped.settled).toBe(false);
    expect(calls[0]?.context.signal.aborted).toBe(false);
    expect(batcher.isRunning).toBe(true);

    await vi.advanceTimersByTimeAsync(1);
    expect(stopped.settled).toBe(true);
    const error = await inFlight;
    expect(error).toBeInstanceOf(BatcherStoppedError);
    expect(error).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    expect(await queued).toBeInstanceOf(BatcherStoppedError);
    expect(calls[0]?.context.signal.aborted).toBe(true);
    expect(calls[0]?.context.signal.reason).toBe(error);
    expect(calls).toHaveLength(1);
    expect(batcher.isRunning).toBe(false);
  });

  it("does not escalate when the drain finishes first, and leaves no timer behind", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const result = batcher.process(1);
    const stopped = track(batcher.stop({ timeout: 500 }));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);

    double(calls[0]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    await expect(result).resolves.toBe(2);
    expect(vi.getTimerCount()).toBe(0);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[0]?.context.signal.aborted).toBe(false);
  });

  it("leaves no timer when forced before the timeout, or when there is nothing to drain", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 5 });
    const item = batcher.process(1).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(5);
    expect(calls).toHaveLength(1);
    const stopped = batcher.stop({ timeout: 500 });
    expect(vi.getTimerCount()).toBe(1);
    await batcher.stop({ force: true });
    await stopped;
    expect(vi.getTimerCount()).toBe(0);
    expect(await item).toBeInstanceOf(BatcherStoppedError);

    const unused = manualBatcher({}).batcher;
    await unused.stop({ timeout: 500 });
    expect(vi.getTimerCount()).toBe(0);

    const idle = createBatcher((items: number[]) => items, { maxQueueTime: 5 });
    const result = idle.process(1);
    await vi.advanceTimersByTimeAsync(5);
    await expect(result).resolves.toBe(1);
    await idle.stop({ timeout: 500 });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("idempotence and escalation", () => {
  it("returns the very same promise from a second stop()", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const result = batcher.process(1);
    const first = batcher.stop();
    const second = batcher.stop();
    expect(second).toBe(first);
    await runJobs();
    double(calls[0]);
    await first;
    expect(batcher.stop()).toBe(first);
    await expect(result).resolves.toBe(2);
  });

  it("returns the same promise for repeated force stops, and for a never-used batcher", async () => {
    const used = manualBatcher({}).batcher;
    const item = used.process(1).catch((error: unknown) => error);
    const forced = used.stop({ force: true });
    expect(used.stop({ force: true })).toBe(forced);
    expect(used.stop()).toBe(forced);
    await forced;
    expect(await item).toBeInstanceOf(BatcherStoppedError);

    const unused = manualBatcher({}).batcher;
    const stopped = unused.stop();
    expect(unused.stop()).toBe(stopped);
    await stopped;
  });

  it("escalates a graceful stop in progress when stop({ force: true }) is called", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 1, maxQueueTime: 10 });
    const inFlight = batcher.process(1).catch((error: unknown) => error);
    const queued = batcher.process(2).catch((error: unknown) => error);
    await runJobs();

    const graceful = track(batcher.stop());
    const gracefulPromise = batcher.stop();
    await runJobs();
    expect(graceful.settled).toBe(false);

    const forced = batcher.stop({ force: true });
    expect(forced).toBe(gracefulPromise);
    await forced;
    expect(graceful.settled).toBe(true);
    const error = await inFlight;
    expect(error).toBeInstanceOf(BatcherStoppedError);
    expect(await queued).toBeInstanceOf(BatcherStoppedError);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.context.signal.reason).toBe(error);
  });
});

describe("stop options", () => {
  it.each([
    ["a string", "now", TypeError],
    ["null", null, TypeError],
    ["a non-boolean force", { force: 1 }, TypeError],
    ["a string timeout", { timeout: "10" }, TypeError],
    ["a negative timeout", { timeout: -1 }, RangeError],
    ["a NaN timeout", { timeout: Number.NaN }, RangeError],
  ])("rejects %s, and leaves the batcher running", async (_label, options, expected) => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const result = batcher.process(1);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    await expect(batcher.stop(options as any)).rejects.toBeInstanceOf(expected);
    expect(batcher.isRunning).toBe(true);

    await vi.advanceTimersByTimeAsync(10);
    double(calls[0]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });
});
