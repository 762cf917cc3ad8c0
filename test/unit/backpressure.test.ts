/**
 * Backpressure: `onQueueFull` ("reject", "wait", "dropOldest") with `maxQueueSize`.
 */
import { getEventListeners } from "node:events";
import {
  BatcherStoppedError,
  createBatcher,
  ItemTimeoutError,
  QueueFullError,
  type QueueFullPolicy,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Every item any batch was handed, in call order. */
const seen = (calls: { items: number[] }[]) => calls.flatMap((call) => call.items);

describe("onQueueFull option", () => {
  it.each(["drop", "Reject", "WAIT", "drop-oldest", "", null, 0, 1, true, {}, ["wait"]])(
    "rejects %j with a TypeError at construction",
    (value) => {
      expect(() =>
        createBatcher((items: number[]) => items, {
          maxQueueSize: 1,
          onQueueFull: value as unknown as QueueFullPolicy,
        }),
      ).toThrow(TypeError);
    },
  );

  it.each(["reject", "wait", "dropOldest", undefined] as const)("accepts %s", (value) => {
    expect(() =>
      createBatcher((items: number[]) => items, { maxQueueSize: 1, onQueueFull: value }),
    ).not.toThrow();
  });

  it('defaults to "reject"', async () => {
    const { batcher, calls } = manualBatcher({ maxQueueSize: 1, maxQueueTime: 1000 });
    const first = batcher.process(1);
    const second = batcher.process(2);
    await expect(second).rejects.toBeInstanceOf(QueueFullError);
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(1);
    batcher.flush();
    await runJobs();
    double(calls[0]);
    await expect(first).resolves.toBe(2);
    expect(seen(calls)).toEqual([1]);
    await batcher.stop();
  });
});

describe('onQueueFull: "reject"', () => {
  it("rejects a new item with QueueFullError (code and maxQueueSize) while the queue is full", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 1000,
      onQueueFull: "reject",
    });
    const kept = [batcher.process(1), batcher.process(2)];
    const plain = batcher.process(3);
    const withOptions = batcher.process(4, { priority: 5 });
    for (const rejected of [plain, withOptions]) {
      await expect(rejected).rejects.toBeInstanceOf(QueueFullError);
      await expect(rejected).rejects.toMatchObject({ code: "ERR_QUEUE_FULL", maxQueueSize: 2 });
    }
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(0);

    // The queue is cut: there is room again.
    batcher.flush();
    expect(batcher.queueSize).toBe(0);
    const later = batcher.process(5);
    expect(batcher.queueSize).toBe(1);
    await runJobs();
    double(calls[0]);
    expect(await Promise.all(kept)).toEqual([2, 4]);
    await vi.advanceTimersByTimeAsync(1000);
    double(calls[1]);
    await expect(later).resolves.toBe(10);
    expect(seen(calls)).toEqual([1, 2, 5]);
    await batcher.stop();
  });
});

describe('onQueueFull: "wait"', () => {
  it("makes callers wait for room, with exact queueSize and waiting counts at each step", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const results = [0, 1].map((i) => batcher.process(i)); // cut at once by size
    expect(batcher.queueSize).toBe(0);
    results.push(batcher.process(2), batcher.process(3));
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(0);
    results.push(batcher.process(4));
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(1);
    results.push(batcher.process(5), batcher.process(6, { priority: 9 }));
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(3);
    const states = results.map(track);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[0, 1]]);
    expect(states.some((s) => s.settled)).toBe(false);

    double(calls[0]);
    await runJobs();
    // [2, 3] was cut, 4 and 5 came in.
    expect(calls.map((c) => c.items)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(1);
    expect(batcher.inFlight).toBe(2);

    double(calls[1]);
    await runJobs();
    expect(calls[2]?.items).toEqual([4, 5]);
    expect(batcher.queueSize).toBe(1);
    expect(batcher.waiting).toBe(0);

    double(calls[2]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[3]?.items).toEqual([6]);
    expect(batcher.queueSize).toBe(0);
    double(calls[3]);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12]);
    expect(batcher.waiting).toBe(0);
    await batcher.stop();
  });

  it("does not make a caller wait while there is room", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 3,
      maxQueueTime: 1000,
      onQueueFull: "wait",
    });
    const results = [1, 2, 3].map((i) => batcher.process(i));
    expect(batcher.queueSize).toBe(3);
    expect(batcher.waiting).toBe(0);
    batcher.flush();
    await runJobs();
    double(calls[0]);
    expect(await Promise.all(results)).toEqual([2, 4, 6]);
    await batcher.stop();
  });

  it("admits waiters as soon as a batch is cut by its timer, in order", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 100,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const results = [1, 2, 3, 4, 5].map((i) => batcher.process(i));
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(3);

    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(0);
    expect(batcher.waiting).toBe(3);

    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.items)).toEqual([[1, 2]]);
    // The cut freed two places: the first two waiters took them, at once.
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(1);

    double(calls[0]);
    await runJobs();
    // 3 and 4 were admitted at 100: due at 200.
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[1]?.items).toEqual([3, 4]);
    expect(batcher.queueSize).toBe(1);
    expect(batcher.waiting).toBe(0);

    double(calls[1]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[2]?.items).toEqual([5]);
    double(calls[2]);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8, 10]);
    await batcher.stop();
  });

  it("admits a waiter synchronously when flush() cuts the queue", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      onQueueFull: "wait",
    });
    const first = batcher.process(1);
    const second = batcher.process(2);
    expect(batcher.waiting).toBe(1);
    const flushed = batcher.flush();
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(1);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    double(calls[0]);
    await flushed;
    await expect(first).resolves.toBe(2);
    batcher.flush();
    await runJobs();
    double(calls[1]);
    await expect(second).resolves.toBe(4);
    await batcher.stop();
  });

  it("admits a waiter at once when a queued item is aborted", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 1000,
      onQueueFull: "wait",
    });
    const controller = new AbortController();
    const first = batcher.process(1);
    const aborted = batcher.process(2, { signal: controller.signal });
    const abortedState = track(aborted);
    const waiter = batcher.process(3);
    expect(batcher.waiting).toBe(1);

    const reason = new Error("cancelled");
    controller.abort(reason);
    // Synchronously: 2 left, 3 took its place.
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(0);
    await runJobs();
    expect(abortedState.error).toBe(reason);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[1, 3]]);
    double(calls[0]);
    expect(await Promise.all([first, waiter])).toEqual([2, 6]);
    await batcher.stop();
  });

  it("admits a waiter at once when a queued item times out", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 1000,
      onQueueFull: "wait",
    });
    const first = batcher.process(1);
    const timedOut = track(batcher.process(2, { timeout: 50 }));
    const waiter = batcher.process(3);
    expect(batcher.waiting).toBe(1);

    await vi.advanceTimersByTimeAsync(49);
    expect(batcher.waiting).toBe(1);
    expect(timedOut.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(timedOut.error).toBeInstanceOf(ItemTimeoutError);
    expect(timedOut.error).toMatchObject({ code: "ERR_ITEM_TIMEOUT", timeout: 50 });
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(0);

    // 1 arrived at 0: its batch is due at 1000, and takes the admitted waiter along.
    await vi.advanceTimersByTimeAsync(950);
    expect(calls.map((c) => c.items)).toEqual([[1, 3]]);
    double(calls[0]);
    expect(await Promise.all([first, waiter])).toEqual([2, 6]);
    await batcher.stop();
  });

  it("keeps a waiter's priority once it is admitted", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 1000,
      concurrency: 2,
      onQueueFull: "wait",
    });
    const results = [
      batcher.process(1),
      batcher.process(2),
      batcher.process(3, { priority: -1 }), // waits
      batcher.process(4, { priority: 5 }), // waits
    ];
    expect(batcher.waiting).toBe(2);
    batcher.flush(); // cuts [1, 2]; 3 and 4 come in
    expect(batcher.waiting).toBe(0);
    batcher.flush();
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2],
      [4, 3],
    ]);
    for (const call of calls) double(call);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8]);
    await batcher.stop();
  });

  it("counts maxQueueTime of an admitted waiter from its admission", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 100,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const first = batcher.process(1); // at 0
    const second = batcher.process(2); // waits from 0
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    expect(batcher.queueSize).toBe(1); // 2 admitted at 100
    await vi.advanceTimersByTimeAsync(50);
    double(calls[0]);
    await runJobs();
    // Counted from process() (0), 2 would be overdue and cut now, at 150.
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(49);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.items).toEqual([2]);
    expect(calls[1]?.startedAt).toBe(200);
    double(calls[1]);
    expect(await Promise.all([first, second])).toEqual([2, 4]);
    await batcher.stop();
  });

  it("rejects a waiting caller whose signal aborts, without handing it to the batch function", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const controller = new AbortController();
    const first = batcher.process(1);
    const waiting = track(batcher.process(2, { signal: controller.signal }));
    const next = batcher.process(3);
    expect(batcher.waiting).toBe(2);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);

    const reason = new Error("gave up");
    controller.abort(reason);
    expect(batcher.waiting).toBe(1);
    expect(batcher.queueSize).toBe(1);
    await runJobs();
    expect(waiting.error).toBe(reason);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);

    // When room frees, the next waiter (3) gets it, not the aborted one.
    batcher.flush();
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(1);
    await runJobs();
    double(calls[0]);
    await vi.advanceTimersByTimeAsync(1000);
    double(calls[1]);
    expect(await Promise.all([first, next])).toEqual([2, 6]);
    expect(seen(calls)).toEqual([1, 3]);
    await batcher.stop();
  });

  it("rejects at once a caller whose signal is already aborted, instead of making it wait", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      onQueueFull: "wait",
    });
    const first = batcher.process(1);
    const reason = new Error("already");
    const rejected = batcher.process(2, { signal: AbortSignal.abort(reason) });
    expect(batcher.waiting).toBe(0);
    await expect(rejected).rejects.toBe(reason);
    batcher.flush();
    await runJobs();
    double(calls[0]);
    await expect(first).resolves.toBe(2);
    expect(seen(calls)).toEqual([1]);
    await batcher.stop();
  });

  it("rejects a waiting caller with ItemTimeoutError when its timeout passes", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      onQueueFull: "wait",
    });
    const first = batcher.process(1);
    const waiting = track(batcher.process(2, { timeout: 50 }));
    expect(batcher.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(49);
    expect(waiting.settled).toBe(false);
    expect(batcher.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.error).toBeInstanceOf(ItemTimeoutError);
    expect(waiting.error).toMatchObject({ code: "ERR_ITEM_TIMEOUT", timeout: 50 });
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(1);

    await vi.advanceTimersByTimeAsync(950);
    double(calls[0]);
    await expect(first).resolves.toBe(2);
    expect(seen(calls)).toEqual([1]);
    expect(batcher.waiting).toBe(0);
    await batcher.stop();
  });

  it("counts a waiter's timeout from process(), not from its admission", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const first = batcher.process(1);
    const second = track(batcher.process(2, { timeout: 100 }));
    await vi.advanceTimersByTimeAsync(60);
    batcher.flush(); // cuts [1], admits 2 at 60
    expect(batcher.queueSize).toBe(1);
    expect(batcher.waiting).toBe(0);
    await vi.advanceTimersByTimeAsync(39);
    expect(second.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(second.error).toBeInstanceOf(ItemTimeoutError);
    expect(batcher.queueSize).toBe(0);
    double(calls[0]);
    await expect(first).resolves.toBe(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(seen(calls)).toEqual([1]);
    await batcher.stop();
  });

  it("does not let a new caller jump ahead of the waiters", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxBatchSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const results = [batcher.process(0)]; // cut at once, in flight
    results.push(batcher.process(1)); // queued
    results.push(batcher.process(2), batcher.process(3, { priority: 1 })); // wait
    expect(batcher.waiting).toBe(2);
    await runJobs();

    // The batch is settled, but its slot frees only once the results are delivered: a newcomer
    // in between (even with a higher priority) queues behind the waiters.
    double(calls[0]);
    results.push(batcher.process(4), batcher.process(5, { priority: 10 }));
    expect(batcher.waiting).toBe(4);
    for (const [expected, waiting] of [
      [1, 3],
      [2, 2],
      [3, 2], // 6 came in after [2] was cut: 4, 5 and 6 wait, then 4 is admitted
      [4, 1],
      [5, 0],
      [6, 0],
    ]) {
      await runJobs();
      expect(calls.at(-1)?.items).toEqual([expected]);
      expect(batcher.waiting).toBe(waiting);
      if (expected === 2) {
        results.push(batcher.process(6, { priority: 99 })); // room was just made and taken
        expect(batcher.waiting).toBe(3);
      }
      double(calls.at(-1));
    }
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12]);
    expect(calls).toHaveLength(7);
    await batcher.stop();
  });

  it("does not admit a newcomer into the room left by an aborted waiter ahead of the others", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const controller = new AbortController();
    const first = batcher.process(1);
    const aborted = track(batcher.process(2, { signal: controller.signal }));
    const third = batcher.process(3);
    controller.abort();
    expect(batcher.waiting).toBe(1);
    const fourth = batcher.process(4); // the queue is still full and 3 waits: 4 waits too
    expect(batcher.waiting).toBe(2);
    expect(batcher.queueSize).toBe(1);

    batcher.flush(); // cuts [1]: 3 comes in, 4 still waits
    expect(batcher.waiting).toBe(1);
    await runJobs();
    double(calls[0]);
    await runJobs();
    batcher.flush(); // cuts [3]: 4 comes in
    expect(batcher.waiting).toBe(0);
    await runJobs();
    double(calls[1]);
    await vi.advanceTimersByTimeAsync(1000);
    double(calls[2]);
    expect(await Promise.all([first, third, fourth])).toEqual([2, 6, 8]);
    expect(aborted.error).toBeInstanceOf(DOMException);
    expect(calls.map((c) => c.items)).toEqual([[1], [3], [4]]);
    await batcher.stop();
  });

  it("graceful stop() processes the waiting callers, who called before the stop", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const results = [1, 2, 3].map((i) => batcher.process(i));
    expect(batcher.queueSize).toBe(1);
    expect(batcher.waiting).toBe(2);

    const stopped = track(batcher.stop());
    const late = batcher.process(4);
    await expect(late).rejects.toBeInstanceOf(BatcherStoppedError);
    expect(batcher.waiting).toBe(1); // the stop cut [1], and 2 came in
    expect(batcher.queueSize).toBe(1);

    for (const expected of [[1], [2], [3]]) {
      await runJobs();
      expect(calls.at(-1)?.items).toEqual(expected);
      expect(stopped.settled).toBe(false);
      double(calls.at(-1));
    }
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeUndefined();
    expect(await Promise.all(results)).toEqual([2, 4, 6]);
    expect(reasons).toEqual(["stop", "stop", "stop"]);
    expect(batcher.waiting).toBe(0);
    expect(Date.now()).toBe(0);
  });

  it("force stop rejects the waiting callers with BatcherStoppedError", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxBatchSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const controller = new AbortController();
    const all = [
      batcher.process(0), // in flight
      batcher.process(1), // queued
      batcher.process(2), // waiting
      batcher.process(3, { signal: controller.signal, timeout: 500 }), // waiting
    ].map(track);
    expect(batcher.waiting).toBe(2);
    await runJobs();
    expect(calls).toHaveLength(1);

    await batcher.stop({ force: true });
    await runJobs();
    for (const state of all) expect(state.error).toBeInstanceOf(BatcherStoppedError);
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(0);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    double(calls[0]); // a late result is dropped
    await vi.advanceTimersByTimeAsync(2000);
    expect(seen(calls)).toEqual([0]);
    const after = batcher.process(5);
    await expect(after).rejects.toBeInstanceOf(BatcherStoppedError);
    expect(batcher.waiting).toBe(0);
  });

  it("a graceful stop that times out rejects the callers still waiting", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const all = [1, 2, 3].map((i) => track(batcher.process(i)));
    const stopped = track(batcher.stop({ timeout: 100 }));
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(1);
    expect(batcher.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    for (const state of all) expect(state.error).toBeInstanceOf(BatcherStoppedError);
    expect(batcher.waiting).toBe(0);
    expect(stopped.settled).toBe(true);
    expect(seen(calls)).toEqual([1]);
  });

  it("onIdle() waits for the waiting callers too", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxBatchSize: 1,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "wait",
    });
    const results = [0, 1, 2, 3].map((i) => batcher.process(i));
    expect(batcher.waiting).toBe(2);
    const idle = track(batcher.onIdle());
    for (let i = 0; i < 4; i++) {
      await runJobs();
      expect(idle.settled).toBe(false);
      expect(calls).toHaveLength(i + 1);
      double(calls[i]);
    }
    await runJobs();
    expect(idle.settled).toBe(true);
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6]);
    await batcher.stop();
  });

  it("process() after stop() rejects with BatcherStoppedError instead of waiting", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      onQueueFull: "wait",
    });
    const first = batcher.process(1);
    const stopped = batcher.stop();
    const during = batcher.process(2);
    const duringWithOptions = batcher.process(3, { priority: 1 });
    expect(batcher.waiting).toBe(0);
    await expect(during).rejects.toBeInstanceOf(BatcherStoppedError);
    await expect(duringWithOptions).rejects.toBeInstanceOf(BatcherStoppedError);
    await runJobs();
    double(calls[0]);
    await stopped;
    await expect(first).resolves.toBe(2);
    const after = batcher.process(4);
    await expect(after).rejects.toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    expect(batcher.waiting).toBe(0);
    expect(seen(calls)).toEqual([1]);
  });
});

describe('onQueueFull: "dropOldest"', () => {
  it("admits the new item and rejects the oldest queued one with QueueFullError", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 1000,
      onQueueFull: "dropOldest",
    });
    const states = [1, 2].map((i) => track(batcher.process(i)));
    const third = batcher.process(3);
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(0);
    await runJobs();
    expect(states[0]?.error).toBeInstanceOf(QueueFullError);
    expect(states[0]?.error).toMatchObject({ code: "ERR_QUEUE_FULL", maxQueueSize: 2 });
    expect(states[1]?.settled).toBe(false);

    const fourth = batcher.process(4, { priority: 3 });
    expect(batcher.queueSize).toBe(2);
    await runJobs();
    expect(states[1]?.error).toBeInstanceOf(QueueFullError);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([[4, 3]]);
    double(calls[0]);
    expect(await Promise.all([third, fourth])).toEqual([6, 8]);
    await batcher.stop();
  });

  it("never lets queueSize exceed maxQueueSize, and never hands a dropped item to the batch", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 3,
      maxQueueTime: 1000,
      onQueueFull: "dropOldest",
    });
    const states: ReturnType<typeof track>[] = [];
    const promises: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) {
      const promise =
        i % 3 === 0 ? batcher.process(i) : batcher.process(i, { priority: (i % 5) - 2 });
      promises.push(promise);
      states.push(track(promise));
      expect(batcher.queueSize).toBe(Math.min(i + 1, 3));
    }
    await runJobs();
    for (let i = 0; i < 17; i++) expect(states[i]?.error).toBeInstanceOf(QueueFullError);
    for (let i = 17; i < 20; i++) expect(states[i]?.settled).toBe(false);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    // 19 has priority 2; 17 and 18 have priority 0, in arrival order
    expect(calls[0]?.items).toEqual([19, 17, 18]);
    double(calls[0]);
    expect(await Promise.all(promises.slice(17))).toEqual([34, 36, 38]);
    expect(seen(calls)).toEqual([19, 17, 18]);
    await batcher.stop();
  });

  it("drops the oldest by arrival, whatever its priority", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 3,
      maxQueueTime: 1000,
      onQueueFull: "dropOldest",
    });
    const a = track(batcher.process(1, { priority: 5 })); // oldest, highest
    const b = track(batcher.process(2, { priority: -1 }));
    const c = batcher.process(3);
    const d = batcher.process(4, { priority: 10 }); // drops 1
    await runJobs();
    expect(a.error).toBeInstanceOf(QueueFullError);
    expect(b.settled).toBe(false);
    const e = batcher.process(5, { priority: -3 }); // drops 2
    await runJobs();
    expect(b.error).toBeInstanceOf(QueueFullError);
    expect(batcher.queueSize).toBe(3);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((call) => call.items)).toEqual([[4, 3, 5]]);
    double(calls[0]);
    expect(await Promise.all([c, d, e])).toEqual([6, 8, 10]);
    await batcher.stop();
  });

  it("drops the oldest by arrival across keys", async () => {
    const calls: { items: number[]; key: string | number | undefined }[] = [];
    const batcher = createBatcher(
      (items: number[], context) => {
        calls.push({ items: [...items], key: context.key });
        return items.map((x) => x * 2);
      },
      {
        maxQueueSize: 3,
        maxQueueTime: 1000,
        concurrency: 2,
        batchKey: (item: number) => (item % 2 === 0 ? "even" : "odd"),
        onQueueFull: "dropOldest",
      },
    );
    const states = [1, 2, 3, 4].map((i) => track(batcher.process(i))); // 4 drops 1 (odd)
    await runJobs();
    expect(states.map((s) => s.error instanceof QueueFullError)).toEqual([
      true,
      false,
      false,
      false,
    ]);
    const six = batcher.process(6); // drops 2 (even)
    await runJobs();
    expect(states.map((s) => s.error instanceof QueueFullError)).toEqual([
      true,
      true,
      false,
      false,
    ]);
    const eight = batcher.process(8); // drops 3 (odd): the odd key is gone
    await runJobs();
    expect(states.map((s) => s.error instanceof QueueFullError)).toEqual([true, true, true, false]);
    const nine = batcher.process(9, { priority: 1 }); // drops 4 (even)
    await runJobs();
    expect(states[3]?.error).toBeInstanceOf(QueueFullError);
    expect(batcher.queueSize).toBe(3);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([
      { items: [6, 8], key: "even" },
      { items: [9], key: "odd" },
    ]);
    expect(await Promise.all([six, eight, nine])).toEqual([12, 16, 18]);
    await batcher.stop();
  });

  it("removes the listener of a dropped item's signal and forgets its timeout", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 1,
      maxQueueTime: 1000,
      onQueueFull: "dropOldest",
    });
    const controller = new AbortController();
    const dropped = track(batcher.process(1, { signal: controller.signal, timeout: 50 }));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    const kept = batcher.process(2);
    await runJobs();
    expect(dropped.error).toBeInstanceOf(QueueFullError);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100); // its timeout passes: nothing happens
    controller.abort();
    expect(dropped.error).toBeInstanceOf(QueueFullError);
    expect(batcher.queueSize).toBe(1);
    await vi.advanceTimersByTimeAsync(900);
    expect(calls.map((c) => c.items)).toEqual([[2]]);
    double(calls[0]);
    await expect(kept).resolves.toBe(4);
    await batcher.stop();
  });

  it("flush() still resolves when some of the flushed items are dropped", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "dropOldest",
    });
    const first = batcher.process(0);
    batcher.flush(); // [0] in flight: the only slot is busy
    await runJobs();
    const dropped = track(batcher.process(1));
    const kept = batcher.process(2);
    const flushed = track(batcher.flush()); // waits for 1 and 2
    const newcomer = batcher.process(3); // drops 1
    await runJobs();
    expect(dropped.error).toBeInstanceOf(QueueFullError);
    expect(flushed.settled).toBe(false);

    double(calls[0]);
    await runJobs();
    expect(calls[1]?.items).toEqual([2, 3]);
    expect(flushed.settled).toBe(false);
    double(calls[1]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(await Promise.all([first, kept, newcomer])).toEqual([0, 4, 6]);
    expect(Date.now()).toBe(0);
    await batcher.stop();
  });

  it("flush() resolves at once when every flushed item was dropped", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
      onQueueFull: "dropOldest",
    });
    const first = batcher.process(0);
    batcher.flush();
    await runJobs();
    const dropped = [1, 2].map((i) => track(batcher.process(i)));
    const flushed = track(batcher.flush());
    const kept = [3, 4].map((i) => batcher.process(i)); // drop 1 and 2
    await runJobs();
    for (const state of dropped) expect(state.error).toBeInstanceOf(QueueFullError);
    expect(flushed.settled).toBe(true);
    expect(calls).toHaveLength(1); // the slot is still busy

    double(calls[0]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[1]?.items).toEqual([3, 4]);
    double(calls[1]);
    expect(await Promise.all([first, ...kept])).toEqual([0, 6, 8]);
    await batcher.stop();
  });
});
