/**
 * Per-item `signal` of `process()`: an already aborted signal queues nothing; an abort while the
 * item waits takes it out of the queue; an abort once its batch is cut rejects the caller at once
 * and drops the late result, and aborts `context.signal` when no item of the batch is wanted any
 * more. One `abort` listener per distinct signal, gone once its items have settled.
 */
import { getEventListeners } from "node:events";
import { type BatchContext, BatcherStoppedError, createBatcher } from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Listeners the batcher (or anyone) holds on `signal`'s `abort` event. */
const listeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

class CustomAbort extends Error {
  override name = "CustomAbort";
}

describe("an already aborted signal", () => {
  it("rejects with its reason and queues nothing; the batch function never sees the item", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const reason = new CustomAbort("gone");
    controller.abort(reason);

    const other = batcher.process(1);
    const aborted = track(batcher.process(2, { signal: controller.signal }));
    expect(batcher.queueSize).toBe(1);
    expect(listeners(controller.signal)).toBe(0);
    await runJobs();
    expect(aborted.settled).toBe(true);
    expect(aborted.error).toBe(reason);

    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    double(calls[0]);
    await expect(other).resolves.toBe(2);
    await batcher.stop();
  });

  it("AbortSignal.abort(): rejects with its DOMException and leaves the batcher idle", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const signal = AbortSignal.abort();
    const result = batcher.process(1, { signal });
    expect(batcher.queueSize).toBe(0);
    await expect(result).rejects.toBe(signal.reason);
    await expect(result).rejects.toBeInstanceOf(DOMException);
    await expect(result).rejects.toMatchObject({ name: "AbortError" });
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });
});

describe("aborted while queued", () => {
  it("leaves the queue at once, rejects with the reason, and the batch forms without it", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const first = batcher.process(1);
    const aborted = track(batcher.process(2, { signal: controller.signal }));
    const third = batcher.process(3);
    await vi.advanceTimersByTimeAsync(5);
    expect(batcher.queueSize).toBe(3);

    const reason = new CustomAbort("no longer needed");
    controller.abort(reason);
    expect(batcher.queueSize).toBe(2); // synchronously, before any job runs
    expect(listeners(controller.signal)).toBe(0);
    await runJobs();
    expect(aborted.settled).toBe(true);
    expect(aborted.error).toBe(reason);
    expect(calls).toHaveLength(0);

    await vi.advanceTimersByTimeAsync(5);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([1, 3]);
    expect(calls[0]?.startedAt).toBe(10);
    double(calls[0]);
    expect(await Promise.all([first, third])).toEqual([2, 6]);
    await batcher.stop();
  });

  it("moves the maxQueueTime clock to the next oldest item", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const oldest = track(batcher.process(1, { signal: controller.signal })); // t = 0
    await vi.advanceTimersByTimeAsync(4);
    const next = batcher.process(2); // t = 4: due at 14
    await vi.advanceTimersByTimeAsync(2);
    controller.abort("stop"); // t = 6

    await vi.advanceTimersByTimeAsync(4); // t = 10: the aborted item's deadline
    expect(calls).toHaveLength(0);
    expect(batcher.queueSize).toBe(1);
    await vi.advanceTimersByTimeAsync(3); // t = 13
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1); // t = 14
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([2]);
    expect(calls[0]?.startedAt).toBe(14);
    expect(reasons).toEqual(["time"]);
    expect(oldest.error).toBe("stop");
    double(calls[0]);
    await expect(next).resolves.toBe(4);
    await batcher.stop();
  });

  it("aborting the only queued items cuts no batch and leaves no timer behind", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const results = [1, 2, 3].map((i) => track(batcher.process(i, { signal: controller.signal })));
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    controller.abort();
    expect(batcher.queueSize).toBe(0);
    await runJobs();
    expect(vi.getTimerCount()).toBe(0);
    for (const result of results) {
      expect(result.error).toBe(controller.signal.reason);
    }
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(0);
    await batcher.stop();
  });

  it("a flush() waiting for the aborted items resolves, while an earlier batch still runs", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000, maxBatchSize: 1 });
    const controller = new AbortController();
    const running = batcher.process(0);
    await runJobs();
    expect(calls).toHaveLength(1); // the only slot is busy
    const a = track(batcher.process(1, { signal: controller.signal }));
    const b = track(batcher.process(2, { signal: controller.signal }));
    expect(batcher.queueSize).toBe(2);

    const flushed = track(batcher.flush());
    await runJobs();
    expect(flushed.settled).toBe(false);
    controller.abort("cancelled");
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(a.error).toBe("cancelled");
    expect(b.error).toBe("cancelled");
    expect(calls).toHaveLength(1);

    double(calls[0]);
    await expect(running).resolves.toBe(0);
    await runJobs();
    expect(calls).toHaveLength(1);
    await batcher.stop();
  });

  it("a flush() resolves once the items left have settled", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000, maxBatchSize: 1 });
    const controller = new AbortController();
    const running = batcher.process(0);
    await runJobs();
    const aborted = track(batcher.process(1, { signal: controller.signal }));
    const kept = batcher.process(2);
    const flushed = track(batcher.flush());
    controller.abort("cancelled");
    await runJobs();
    expect(aborted.error).toBe("cancelled");
    expect(flushed.settled).toBe(false);

    double(calls[0]);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[0], [2]]);
    expect(flushed.settled).toBe(false);
    double(calls[1]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(await Promise.all([running, kept])).toEqual([0, 4]);
    await batcher.stop();
  });

  it('with onQueueFull "wait", the freed room admits a waiting caller at once', async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      maxQueueSize: 1,
      onQueueFull: "wait",
    });
    const controller = new AbortController();
    const aborted = track(batcher.process(1, { signal: controller.signal }));
    const waiter = batcher.process(2);
    expect(batcher.queueSize).toBe(1);
    expect(batcher.waiting).toBe(1);

    await vi.advanceTimersByTimeAsync(3);
    controller.abort("gone");
    expect(batcher.queueSize).toBe(1);
    expect(batcher.waiting).toBe(0);
    await runJobs();
    expect(aborted.error).toBe("gone");

    await vi.advanceTimersByTimeAsync(10); // t = 13: maxQueueTime counts from the admission, at 3
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([2]);
    expect(calls[0]?.startedAt).toBe(13);
    double(calls[0]);
    await expect(waiter).resolves.toBe(4);
    await batcher.stop();
  });

  it('with onQueueFull "wait", an abort while waiting for room rejects and frees the wait', async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      maxQueueSize: 1,
      onQueueFull: "wait",
    });
    const controller = new AbortController();
    const queued = batcher.process(1);
    const waiting = track(batcher.process(2, { signal: controller.signal }));
    expect(batcher.waiting).toBe(1);
    controller.abort("gave up");
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(1);
    expect(listeners(controller.signal)).toBe(0);
    await runJobs();
    expect(waiting.error).toBe("gave up");

    await vi.advanceTimersByTimeAsync(10);
    double(calls[0]);
    await expect(queued).resolves.toBe(2);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    await batcher.stop();
  });
});

describe("aborted after its batch was dispatched", () => {
  it("rejects the caller at once; the others get their results; the late result is dropped", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const other = new AbortController();
    const aborted = track(batcher.process(1, { signal: controller.signal }));
    const plain = batcher.process(2);
    const withOtherSignal = batcher.process(3, { signal: other.signal });
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([1, 2, 3]);

    const reason = new CustomAbort("late");
    controller.abort(reason);
    await runJobs();
    expect(aborted.settled).toBe(true);
    expect(aborted.error).toBe(reason);
    expect(listeners(controller.signal)).toBe(0);
    expect(listeners(other.signal)).toBe(1);
    // Two items are still wanted: the batch goes on.
    expect(calls[0]?.context.signal.aborted).toBe(false);

    double(calls[0]);
    expect(await Promise.all([plain, withOtherSignal])).toEqual([4, 6]);
    expect(aborted.error).toBe(reason);
    expect(listeners(other.signal)).toBe(0);
    expect(calls[0]?.context.signal.aborted).toBe(false);
    await batcher.stop();
  });

  it("does not abort context.signal while an item without a signal is still wanted", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const aborted = track(batcher.process(1, { signal: controller.signal }));
    const plain = batcher.process(2);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort("x");
    await runJobs();
    expect(aborted.error).toBe("x");
    expect(calls[0]?.context.signal.aborted).toBe(false);
    double(calls[0]);
    await expect(plain).resolves.toBe(4);
    await batcher.stop();
  });

  it("aborts context.signal with the last reason once every item of the batch is aborted", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const results = controllers.map((c, i) => track(batcher.process(i, { signal: c.signal })));
    await vi.advanceTimersByTimeAsync(10);
    const signal = calls[0]?.context.signal as AbortSignal;
    const seen: unknown[] = [];
    signal.addEventListener("abort", () => seen.push(signal.reason));

    const reasons = [new CustomAbort("a"), "b", new CustomAbort("c")];
    controllers[1]?.abort(reasons[1]);
    controllers[0]?.abort(reasons[0]);
    await runJobs();
    expect(signal.aborted).toBe(false);
    expect(seen).toEqual([]);

    controllers[2]?.abort(reasons[2]);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reasons[2]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(reasons[2]);
    await runJobs();
    results.forEach((result, i) => {
      expect(result.error).toBe(reasons[i]);
    });

    calls[0]?.resolve([0, 2, 4]);
    await runJobs();
    results.forEach((result, i) => {
      expect(result.error).toBe(reasons[i]);
    });
    await batcher.stop();
  });

  it("context.signal first read after the aborts is already aborted", async () => {
    const contexts: BatchContext[] = [];
    const finish: (() => void)[] = [];
    const batcher = createBatcher<number, number>(
      (items, context) => {
        contexts.push(context); // never reads context.signal while it runs
        return new Promise((resolve) => finish.push(() => resolve(items)));
      },
      { maxQueueTime: 10 },
    );
    const a = new AbortController();
    const b = new AbortController();
    const results = [
      track(batcher.process(1, { signal: a.signal })),
      track(batcher.process(2, { signal: b.signal })),
    ];
    await vi.advanceTimersByTimeAsync(10);
    expect(contexts).toHaveLength(1);
    a.abort("first");
    b.abort("second");
    await runJobs();
    expect(results.map((r) => r.error)).toEqual(["first", "second"]);
    expect(contexts[0]?.signal.aborted).toBe(true);
    expect(contexts[0]?.signal.reason).toBe("second");
    finish[0]?.();
    await batcher.stop();
  });

  it("the batch holds its concurrency slot until the batch function returns", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, maxBatchSize: 1 });
    const controller = new AbortController();
    const aborted = track(batcher.process(1, { signal: controller.signal }));
    const next = batcher.process(2);
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(1);

    controller.abort("cancel");
    await runJobs();
    expect(aborted.error).toBe("cancel");
    expect(calls[0]?.context.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1); // the slot is still held
    expect(batcher.queueSize).toBe(1);

    calls[0]?.resolve([2]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.items).toEqual([2]);
    double(calls[1]);
    await expect(next).resolves.toBe(4);
    expect(aborted.error).toBe("cancel");
    await batcher.stop();
  });

  it("a batch that fails after its item was aborted leaves the aborted caller alone", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const aborted = track(batcher.process(1, { signal: controller.signal }));
    const plain = track(batcher.process(2));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort("cancel");
    const failure = new Error("boom");
    calls[0]?.reject(failure);
    await runJobs();
    expect(aborted.error).toBe("cancel");
    expect(plain.error).toBe(failure);
    await batcher.stop();
  });
});

describe("aborted between the cut and the start of its batch", () => {
  it("does not run a batch whose callers all left, and frees its slot", async () => {
    const calls: number[][] = [];
    const batcher = createBatcher(
      (items: number[]) => {
        calls.push([...items]);
        return items;
      },
      { maxBatchSize: 2 },
    );
    const controller = new AbortController();
    // The second call fills the batch: it is cut inside process(), to start on the next microtask.
    const first = track(batcher.process(1, { signal: controller.signal }));
    const second = track(batcher.process(2, { signal: controller.signal }));
    expect(batcher.inFlight).toBe(2);
    controller.abort("gone");
    await runJobs();
    expect([first.error, second.error]).toEqual(["gone", "gone"]);
    expect(calls).toEqual([]);
    expect(batcher.inFlight).toBe(0);
    await expect(Promise.all([batcher.process(3), batcher.process(4)])).resolves.toEqual([3, 4]);
    expect(calls).toEqual([[3, 4]]);
  });
  it("takes out of the batch the items whose callers left, and runs it with the rest", async () => {
    const calls: number[][] = [];
    const batcher = createBatcher(
      (items: number[]) => {
        calls.push([...items]);
        return items.map((x) => x * 10);
      },
      { maxBatchSize: 4 },
    );
    const controller = new AbortController();
    const timeouts = new AbortController();
    const p1 = track(batcher.process(1));
    const p2 = track(batcher.process(2, { signal: controller.signal }));
    const p3 = batcher.process(3, { signal: timeouts.signal });
    const p4 = track(batcher.process(4, { signal: controller.signal })); // cut: [1, 2, 3, 4]
    expect(batcher.inFlight).toBe(4);
    controller.abort("gone");
    expect(batcher.inFlight).toBe(4); // still cut, not started
    await runJobs();
    expect(calls).toEqual([[1, 3]]);
    expect(batcher.inFlight).toBe(0);
    expect(await p3).toBe(30);
    expect(p1.settled).toBe(true);
    expect([p2.error, p4.error]).toEqual(["gone", "gone"]);
    // The cohort of item 3 was released with its batch: its signal has no listener left.
    expect(getEventListeners(timeouts.signal, "abort")).toHaveLength(0);
  });
});

describe("one signal shared by many items", () => {
  it("gets one listener however many items use it, removed when the last of them settles", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, maxBatchSize: 50 });
    const shared = new AbortController();
    const other = new AbortController();
    const results = Array.from({ length: 100 }, (_, i) =>
      batcher.process(i, { signal: i % 10 === 0 ? other.signal : shared.signal }),
    );
    expect(listeners(shared.signal)).toBe(1);
    expect(listeners(other.signal)).toBe(1);
    await runJobs();
    expect(calls).toHaveLength(1); // [0..49] cut by size; [50..99] waits for the slot
    expect(listeners(shared.signal)).toBe(1);

    double(calls[0]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(listeners(shared.signal)).toBe(1); // items 50..99 still use it
    expect(listeners(other.signal)).toBe(1);

    double(calls[1]);
    const values = await Promise.all(results);
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => i * 2));
    expect(listeners(shared.signal)).toBe(0);
    expect(listeners(other.signal)).toBe(0);

    // Used again after its items settled: one listener again, gone again.
    const again = batcher.process(7, { signal: shared.signal });
    expect(listeners(shared.signal)).toBe(1);
    await vi.advanceTimersByTimeAsync(10);
    double(calls[2]);
    await expect(again).resolves.toBe(14);
    expect(listeners(shared.signal)).toBe(0);
    await batcher.stop();
  });

  it("aborts every item using it, queued and running, in different batches", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      maxBatchSize: 2,
      concurrency: 2,
    });
    const shared = new AbortController();
    const signal = shared.signal;
    const p1 = track(batcher.process(1, { signal })); // batch 1: [1, 2]
    const p2 = batcher.process(2);
    const p3 = track(batcher.process(3, { signal })); // batch 2: [3, 4]
    const p4 = track(batcher.process(4, { signal }));
    const p5 = track(batcher.process(5, { signal })); // queued: no slot for [5, 6]
    const p6 = batcher.process(6);
    const p7 = track(batcher.process(7, { signal })); // queued
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(batcher.queueSize).toBe(3);
    expect(listeners(signal)).toBe(1);

    const reason = new CustomAbort("all of them");
    shared.abort(reason);
    expect(batcher.queueSize).toBe(1);
    expect(listeners(signal)).toBe(0);
    await runJobs();
    for (const result of [p1, p3, p4, p5, p7]) expect(result.error).toBe(reason);
    expect(calls[0]?.context.signal.aborted).toBe(false); // item 2 is still wanted
    expect(calls[1]?.context.signal.aborted).toBe(true);
    expect(calls[1]?.context.signal.reason).toBe(reason);

    double(calls[0]);
    await expect(p2).resolves.toBe(4);
    double(calls[1]);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(3);
    expect(calls[2]?.items).toEqual([6]);
    double(calls[2]);
    await expect(p6).resolves.toBe(12);
    await batcher.stop();
  });

  it("two batchers sharing a signal each hold one listener and each drop it", async () => {
    const first = manualBatcher({ maxQueueTime: 10 });
    const second = manualBatcher({ maxQueueTime: 10 });
    const shared = new AbortController();
    const a = track(first.batcher.process(1, { signal: shared.signal }));
    const b = track(second.batcher.process(2, { signal: shared.signal }));
    const c = track(second.batcher.process(3, { signal: shared.signal }));
    expect(listeners(shared.signal)).toBe(2);
    shared.abort("both");
    expect(listeners(shared.signal)).toBe(0);
    await runJobs();
    expect([a.error, b.error, c.error]).toEqual(["both", "both", "both"]);
    expect(first.batcher.queueSize + second.batcher.queueSize).toBe(0);
    await Promise.all([first.batcher.stop(), second.batcher.stop()]);
  });
});

describe("the abort reason", () => {
  it.each([
    { what: "a custom Error", reason: new CustomAbort("custom") },
    { what: "a string", reason: "just a string" },
    { what: "a number", reason: 42 },
    { what: "null", reason: null },
    { what: "a plain object", reason: { why: "object" } },
  ])("can be $what, queued or running", async ({ reason }) => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const running = new AbortController();
    const queued = new AbortController();
    const inBatch = track(batcher.process(1, { signal: running.signal }));
    await vi.advanceTimersByTimeAsync(10);
    const inQueue = track(batcher.process(2, { signal: queued.signal }));
    running.abort(reason);
    queued.abort(reason);
    await runJobs();
    expect(inBatch.settled).toBe(true);
    expect(inBatch.error).toBe(reason);
    expect(inQueue.settled).toBe(true);
    expect(inQueue.error).toBe(reason);
    expect(calls[0]?.context.signal.reason).toBe(reason);
    calls[0]?.resolve([2]);
    await batcher.stop();
    expect(calls).toHaveLength(1);
  });

  it("abort() without a reason: the signal's DOMException AbortError", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const result = batcher.process(1, { signal: controller.signal });
    controller.abort();
    const error = await result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBe(controller.signal.reason);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe("AbortError");
    await batcher.stop();
  });

  it("AbortSignal.timeout(): the DOMException TimeoutError, while queued", async () => {
    vi.useRealTimers(); // AbortSignal.timeout runs on Node's own timers
    const { batcher, calls } = manualBatcher({ maxQueueTime: Number.POSITIVE_INFINITY });
    const signal = AbortSignal.timeout(5);
    const other = batcher.process(1);
    const error = await batcher.process(2, { signal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBe(signal.reason);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe("TimeoutError");
    expect(batcher.queueSize).toBe(1);
    expect(listeners(signal)).toBe(0);
    const flushed = batcher.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    double(calls[0]);
    await flushed;
    await expect(other).resolves.toBe(2);
    await batcher.stop();
  });
});

describe("with stop()", () => {
  it("graceful: aborting a queued item lets the stop resolve without running it", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, maxBatchSize: 1 });
    const controller = new AbortController();
    const running = batcher.process(1);
    const queued = track(batcher.process(2, { signal: controller.signal }));
    await runJobs();
    const stopped = track(batcher.stop());
    await runJobs();
    expect(stopped.settled).toBe(false);

    controller.abort("not needed");
    await runJobs();
    expect(queued.error).toBe("not needed");
    expect(stopped.settled).toBe(false); // batch 1 still runs

    double(calls[0]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    await expect(running).resolves.toBe(2);
    expect(calls).toHaveLength(1);
    expect(listeners(controller.signal)).toBe(0);
  });

  it("graceful: a stop waiting only for queued items resolves as soon as they are aborted", async () => {
    // The rate limit holds the second batch back, so the graceful stop has queued items to wait for.
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      rateLimit: { batches: 1, interval: 1000 },
    });
    const first = batcher.process(1);
    await vi.advanceTimersByTimeAsync(10);
    double(calls[0]);
    await expect(first).resolves.toBe(2);

    const controller = new AbortController();
    const queued = track(batcher.process(2, { signal: controller.signal }));
    const stopped = track(batcher.stop());
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    expect(stopped.settled).toBe(false);

    controller.abort("drop it");
    await runJobs();
    expect(queued.error).toBe("drop it");
    expect(stopped.settled).toBe(true);
    expect(Date.now()).toBe(110);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toHaveLength(1);
  });

  it("graceful: aborting a running item rejects it at once; the stop waits for the batch function", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const controller = new AbortController();
    const item = track(batcher.process(1, { signal: controller.signal }));
    const stopped = track(batcher.stop());
    await runJobs();
    expect(calls).toHaveLength(1); // the stop cut it at once

    controller.abort("cancel");
    await runJobs();
    expect(item.error).toBe("cancel");
    expect(calls[0]?.context.signal.aborted).toBe(true);
    expect(stopped.settled).toBe(false);

    calls[0]?.resolve([2]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(item.error).toBe("cancel");
  });

  it("force: items with signals reject with BatcherStoppedError and their listeners go", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, maxBatchSize: 1 });
    const shared = new AbortController();
    const early = new AbortController();
    const running = track(batcher.process(1, { signal: shared.signal }));
    const queued = track(batcher.process(2, { signal: shared.signal }));
    const abortedFirst = track(batcher.process(3, { signal: early.signal }));
    await runJobs();
    early.abort("before the stop");
    expect(calls).toHaveLength(1);

    await batcher.stop({ force: true });
    await runJobs();
    expect(running.error).toBeInstanceOf(BatcherStoppedError);
    expect(queued.error).toBeInstanceOf(BatcherStoppedError);
    expect(abortedFirst.error).toBe("before the stop");
    expect(listeners(shared.signal)).toBe(0);
    expect(calls[0]?.context.signal.reason).toBe(running.error);

    shared.abort("after the stop"); // nothing is listening, nothing changes
    await runJobs();
    expect(running.error).toBeInstanceOf(BatcherStoppedError);
    expect(queued.error).toBeInstanceOf(BatcherStoppedError);
    expect(calls[0]?.context.signal.reason).toBeInstanceOf(BatcherStoppedError);
    calls[0]?.resolve([2]); // the abandoned batch function returns late
    await runJobs();
    expect(calls).toHaveLength(1);
  });
});

describe("onIdle()", () => {
  it("resolves once every queued item was aborted, without running a batch", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const controller = new AbortController();
    const results = [1, 2, 3].map((i) => track(batcher.process(i, { signal: controller.signal })));
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(false);
    controller.abort("all");
    await runJobs();
    expect(idle.settled).toBe(true);
    expect(results.map((r) => r.error)).toEqual(["all", "all", "all"]);
    expect(calls).toHaveLength(0);
    await batcher.stop();
  });

  it("waits for a batch whose items were all aborted until its function returns", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const item = track(batcher.process(1, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort("all");
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(item.error).toBe("all");
    expect(idle.settled).toBe(false);
    calls[0]?.resolve([2]);
    await runJobs();
    expect(idle.settled).toBe(true);
    await batcher.stop();
  });
});

describe("aborting inside the batch function", () => {
  it("synchronously aborting a queued item of a later batch: it never reaches a batch", async () => {
    const later = new AbortController();
    const seen: number[][] = [];
    const batcher = createBatcher<number, number>(
      (items) => {
        seen.push([...items]);
        if (items.includes(1)) later.abort("from inside");
        return items.map((x) => x * 2);
      },
      { maxQueueTime: 10, maxBatchSize: 2 },
    );
    const first = Promise.all([batcher.process(1), batcher.process(2)]);
    const aborted = track(batcher.process(3, { signal: later.signal }));
    const kept = batcher.process(4);
    expect(batcher.queueSize).toBe(2);
    await runJobs();
    expect(seen).toEqual([[1, 2]]);
    expect(aborted.error).toBe("from inside");
    expect(batcher.queueSize).toBe(1);
    expect(await first).toEqual([2, 4]);

    await vi.advanceTimersByTimeAsync(10);
    expect(seen).toEqual([[1, 2], [4]]);
    await expect(kept).resolves.toBe(8);
    await batcher.stop();
  });

  it("synchronously aborting items of its own batch: their results are dropped", async () => {
    const controllers = [new AbortController(), new AbortController()];
    const abortedInside: boolean[] = [];
    const batcher = createBatcher<number, number>(
      (items, context) => {
        controllers[0]?.abort("one");
        abortedInside.push(context.signal.aborted); // item 2 is still wanted
        if (items.length === 2) controllers[1]?.abort("two");
        abortedInside.push(context.signal.aborted);
        return items.map((x) => x * 2);
      },
      { maxQueueTime: 10 },
    );
    const results = controllers.map((c, i) => track(batcher.process(i + 1, { signal: c.signal })));
    const plain = batcher.process(3);
    await vi.advanceTimersByTimeAsync(10);
    await runJobs();
    expect(results.map((r) => r.error)).toEqual(["one", undefined]);
    await expect(plain).resolves.toBe(6);
    // Not every item was aborted (item 3 had no signal), so the batch's signal stayed quiet.
    expect(abortedInside).toEqual([false, false]);
    await batcher.stop();
  });

  it("synchronously aborting every item of its own batch aborts context.signal at once", async () => {
    const controllers = [new AbortController(), new AbortController()];
    const abortedInside: boolean[] = [];
    let reasonInside: unknown;
    const batcher = createBatcher<number, number>(
      (items, context) => {
        controllers[0]?.abort("one");
        abortedInside.push(context.signal.aborted);
        controllers[1]?.abort("two");
        abortedInside.push(context.signal.aborted);
        reasonInside = context.signal.reason;
        return items.map((x) => x * 2);
      },
      { maxQueueTime: 10 },
    );
    const results = controllers.map((c, i) => track(batcher.process(i + 1, { signal: c.signal })));
    await vi.advanceTimersByTimeAsync(10);
    await runJobs();
    expect(results.map((r) => r.error)).toEqual(["one", "two"]);
    expect(abortedInside).toEqual([false, true]);
    expect(reasonInside).toBe("two");
    await batcher.stop();
  });
});

describe("bad options", () => {
  it.each([
    { options: null, kind: TypeError },
    { options: 5, kind: TypeError },
    { options: "signal", kind: TypeError },
    { options: true, kind: TypeError },
    { options: { signal: {} }, kind: TypeError },
    { options: { signal: "abort" }, kind: TypeError },
    { options: { signal: 1 }, kind: TypeError },
    { options: { signal: null }, kind: TypeError },
    { options: { signal: { aborted: false } }, kind: TypeError },
    { options: { signal: new AbortController() }, kind: TypeError },
    { options: { timeout: -1 }, kind: RangeError },
    { options: { timeout: Number.NaN }, kind: RangeError },
    { options: { timeout: "10" }, kind: TypeError },
    { options: { priority: Number.NaN }, kind: RangeError },
    { options: { priority: Number.POSITIVE_INFINITY }, kind: RangeError },
    { options: { priority: "1" }, kind: TypeError },
  ])(
    "process(item, $options) rejects with $kind.name without throwing; nothing is queued",
    async ({ options, kind }) => {
      const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
      const good = batcher.process(1);
      let bad: Promise<number> | undefined;
      expect(() => {
        bad = batcher.process(2, options as never);
      }).not.toThrow();
      expect(bad).toBeInstanceOf(Promise);
      const error = await (bad as Promise<number>).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(kind);
      expect(error).not.toBeInstanceOf(kind === RangeError ? TypeError : RangeError);
      expect(batcher.queueSize).toBe(1);

      await vi.advanceTimersByTimeAsync(10);
      expect(calls.map((c) => c.items)).toEqual([[1]]);
      double(calls[0]);
      await expect(good).resolves.toBe(2);
      await batcher.stop();
    },
  );

  it("an aborted signal with a valid timeout: the signal's reason, and no timer is armed", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 10 });
    const result = batcher.process(1, { signal: AbortSignal.abort("gone"), timeout: 5 });
    expect(batcher.queueSize).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await expect(result).rejects.toBe("gone");
    await batcher.stop();
  });
});
