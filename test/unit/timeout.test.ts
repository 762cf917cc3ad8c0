/**
 * Per-item `timeout` of `process()` and the batcher's `itemTimeout`: counted from `process()`;
 * when it passes the caller rejects with `ItemTimeoutError` and the item is dropped as if aborted
 * (out of the queue, or its late result ignored). One shared timer serves every timeout.
 */
import { getEventListeners } from "node:events";
import { BatcherError, BatcherStoppedError, createBatcher, ItemTimeoutError } from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, syncBatcher, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

const echo = (items: number[]) => items;

/** The error `construct` throws. */
function thrownBy(construct: () => unknown): unknown {
  try {
    construct();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Checks `error` is an `ItemTimeoutError` for `timeout` ms. */
function expectTimeout(error: unknown, timeout: number) {
  expect(error).toBeInstanceOf(ItemTimeoutError);
  expect(error).toBeInstanceOf(BatcherError);
  expect(error).toMatchObject({ code: "ERR_ITEM_TIMEOUT", timeout });
}

describe("validation", () => {
  it.each([-1, -0.5, Number.NaN, Number.NEGATIVE_INFINITY])(
    "itemTimeout %s: RangeError at construction",
    (value) => {
      const error = thrownBy(() => createBatcher(echo, { itemTimeout: value }));
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toMatch(/itemTimeout/);
    },
  );

  it.each(["10", null, {}, true, 10n])("itemTimeout %s: TypeError at construction", (value) => {
    const error = thrownBy(() => createBatcher(echo, { itemTimeout: value as never }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error).not.toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/itemTimeout/);
  });

  it.each([0, 1, 0.5, 1000, Number.POSITIVE_INFINITY, undefined])(
    "itemTimeout %s is accepted",
    async (value) => {
      const batcher = createBatcher(echo, { itemTimeout: value });
      await batcher.stop();
    },
  );

  it.each([
    { timeout: -1, kind: RangeError },
    { timeout: Number.NaN, kind: RangeError },
    { timeout: Number.NEGATIVE_INFINITY, kind: RangeError },
    { timeout: "10", kind: TypeError },
    { timeout: null, kind: TypeError },
    { timeout: {}, kind: TypeError },
  ])(
    "process(item, { timeout: $timeout }) rejects with $kind.name without throwing",
    async ({ timeout, kind }) => {
      const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
      let result: Promise<number> | undefined;
      expect(() => {
        result = batcher.process(1, { timeout: timeout as never });
      }).not.toThrow();
      const error = await (result as Promise<number>).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(kind);
      expect(error).not.toBeInstanceOf(kind === RangeError ? TypeError : RangeError);
      expect((error as Error).message).toMatch(/timeout/);
      expect(batcher.queueSize).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      await vi.advanceTimersByTimeAsync(100);
      expect(calls).toHaveLength(0);
      await batcher.stop();
    },
  );
});

describe("ItemTimeoutError", () => {
  it("carries the code and the timeout of the call", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 1000 });
    const result = track(batcher.process(1, { timeout: 50 }));
    await vi.advanceTimersByTimeAsync(50);
    expect(result.settled).toBe(true);
    expectTimeout(result.error, 50);
    expect((result.error as Error).name).toBe("ItemTimeoutError");
    await batcher.stop();
  });

  it("carries itemTimeout when the call gives no timeout", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 1000, itemTimeout: 75 });
    const result = track(batcher.process(1));
    await vi.advanceTimersByTimeAsync(74);
    expect(result.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expectTimeout(result.error, 75);
    await batcher.stop();
  });
});

describe("timeout while queued", () => {
  it("leaves the queue when it passes; the batch forms without it", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const first = batcher.process(1);
    const timed = track(batcher.process(2, { timeout: 50 }));
    const third = batcher.process(3);
    await vi.advanceTimersByTimeAsync(49);
    expect(timed.settled).toBe(false);
    expect(batcher.queueSize).toBe(3);

    await vi.advanceTimersByTimeAsync(1);
    expect(timed.settled).toBe(true);
    expectTimeout(timed.error, 50);
    expect(batcher.queueSize).toBe(2);
    expect(calls).toHaveLength(0);

    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([1, 3]);
    expect(calls[0]?.startedAt).toBe(100);
    double(calls[0]);
    expect(await Promise.all([first, third])).toEqual([2, 6]);
    await batcher.stop();
  });

  it("a timed-out oldest item moves the maxQueueTime clock to the next oldest", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 100 });
    const oldest = track(batcher.process(1, { timeout: 30 })); // t = 0
    await vi.advanceTimersByTimeAsync(20);
    const next = batcher.process(2); // t = 20: due at 120
    await vi.advanceTimersByTimeAsync(10);
    expectTimeout(oldest.error, 30);

    await vi.advanceTimersByTimeAsync(70); // t = 100: the timed-out item's deadline
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(19);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1); // t = 120
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual([2]);
    expect(calls[0]?.startedAt).toBe(120);
    double(calls[0]);
    await expect(next).resolves.toBe(4);
    await batcher.stop();
  });

  it("an item alone in the queue times out without a batch, and no timer is left", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const result = track(batcher.process(1, { timeout: 50 }));
    await vi.advanceTimersByTimeAsync(50);
    expectTimeout(result.error, 50);
    expect(batcher.queueSize).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toHaveLength(0);
    await batcher.stop();
  });

  it("timeout 0 passes without the clock moving, before the item can be batched", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const result = track(batcher.process(1, { timeout: 0 }));
    await runJobs();
    expect(Date.now()).toBe(0);
    expectTimeout(result.error, 0);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(0);
    await batcher.stop();
  });

  it('with onQueueFull "wait", times out while waiting for room', async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 100,
      maxQueueSize: 1,
      onQueueFull: "wait",
    });
    const queued = batcher.process(1);
    const waiting = track(batcher.process(2, { timeout: 30 }));
    expect(batcher.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(30);
    expectTimeout(waiting.error, 30);
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(1);
    await vi.advanceTimersByTimeAsync(70);
    expect(calls.map((c) => c.items)).toEqual([[1]]);
    double(calls[0]);
    await expect(queued).resolves.toBe(2);
    await batcher.stop();
  });
});

describe("timeout while its batch runs", () => {
  it("rejects the caller; the others get their results; the late result is dropped", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const timed = track(batcher.process(1, { timeout: 50 }));
    const plain = batcher.process(2);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls[0]?.items).toEqual([1, 2]);

    await vi.advanceTimersByTimeAsync(39);
    expect(timed.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expectTimeout(timed.error, 50);
    expect(calls[0]?.context.signal.aborted).toBe(false); // item 2 is still wanted

    double(calls[0]);
    await expect(plain).resolves.toBe(4);
    expectTimeout(timed.error, 50);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("once every item of the batch timed out, context.signal aborts with the last error", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const first = track(batcher.process(1, { timeout: 30 }));
    const second = track(batcher.process(2, { timeout: 40 }));
    await vi.advanceTimersByTimeAsync(10);
    const signal = calls[0]?.context.signal as AbortSignal;

    await vi.advanceTimersByTimeAsync(20); // t = 30
    expectTimeout(first.error, 30);
    expect(signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(10); // t = 40
    expectTimeout(second.error, 40);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(second.error);

    calls[0]?.resolve([2, 4]);
    await runJobs();
    expectTimeout(first.error, 30);
    await batcher.stop();
  });

  it("an abort and a timeout together empty the batch; it keeps its slot until it returns", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const aborted = track(batcher.process(1, { signal: controller.signal }));
    const timed = track(batcher.process(2, { timeout: 40 }));
    await vi.advanceTimersByTimeAsync(10);
    const later = batcher.process(3); // t = 10: due at 20, but the slot is busy
    await vi.advanceTimersByTimeAsync(10);
    controller.abort("gone"); // t = 20
    expect(calls[0]?.context.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(20); // t = 40
    expect(aborted.error).toBe("gone");
    expectTimeout(timed.error, 40);
    expect(calls[0]?.context.signal.reason).toBe(timed.error);

    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(1);
    double(calls[0]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.items).toEqual([3]);
    double(calls[1]);
    await expect(later).resolves.toBe(6);
    await batcher.stop();
  });

  it("releases the listener on the item's signal when it times out", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const controller = new AbortController();
    const timed = track(batcher.process(1, { signal: controller.signal, timeout: 30 }));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(30);
    expectTimeout(timed.error, 30);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    controller.abort("too late");
    await runJobs();
    expectTimeout(timed.error, 30);
    calls[0]?.resolve([2]);
    await batcher.stop();
  });

  it("an abort before the timeout wins and clears the timeout", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 1000 });
    const controller = new AbortController();
    const item = track(batcher.process(1, { signal: controller.signal, timeout: 30 }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort("first");
    await runJobs();
    expect(item.error).toBe("first");
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(item.error).toBe("first");
    await batcher.stop();
  });
});

describe("timeout and itemTimeout", () => {
  it("a shorter per-call timeout overrides itemTimeout", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: Number.POSITIVE_INFINITY, itemTimeout: 100 });
    const short = track(batcher.process(1, { timeout: 30 }));
    const byDefault = track(batcher.process(2));
    await vi.advanceTimersByTimeAsync(30);
    expectTimeout(short.error, 30);
    expect(byDefault.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(70);
    expectTimeout(byDefault.error, 100);
    await batcher.stop();
  });

  it("a longer per-call timeout overrides itemTimeout", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: Number.POSITIVE_INFINITY, itemTimeout: 50 });
    const long = track(batcher.process(1, { timeout: 200 }));
    await vi.advanceTimersByTimeAsync(199);
    expect(long.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expectTimeout(long.error, 200);
    await batcher.stop();
  });

  it("timeout: Infinity disables itemTimeout for that call", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: Number.POSITIVE_INFINITY,
      itemTimeout: 50,
    });
    const forever = batcher.process(1, { timeout: Number.POSITIVE_INFINITY });
    const byDefault = track(batcher.process(2));
    await vi.advanceTimersByTimeAsync(50);
    expectTimeout(byDefault.error, 50);
    expect(vi.getTimerCount()).toBe(0); // nothing left to time out
    await vi.advanceTimersByTimeAsync(10_000);
    expect(batcher.queueSize).toBe(1);

    const flushed = batcher.flush();
    await runJobs();
    expect(calls[0]?.items).toEqual([1]);
    double(calls[0]);
    await flushed;
    await expect(forever).resolves.toBe(2);
    await batcher.stop();
  });

  it("without a timeout, items arm no timer of their own", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: Number.POSITIVE_INFINITY });
    const results = Array.from({ length: 100 }, (_, i) => batcher.process(i));
    const withInfinity = batcher.process(100, { timeout: Number.POSITIVE_INFINITY });
    expect(vi.getTimerCount()).toBe(0);
    const flushed = batcher.flush();
    await runJobs();
    double(calls[0]);
    await flushed;
    expect(await Promise.all([...results, withInfinity])).toHaveLength(101);
    await batcher.stop();
  });
});

describe("counted from process()", () => {
  it("not from dispatch: items time out during their batch at process() + timeout", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 40 });
    const times: number[] = [];
    const record = (p: Promise<number>) =>
      p.catch((error: unknown) => {
        expect(error).toBeInstanceOf(ItemTimeoutError);
        times.push(Date.now());
      });
    const a = record(batcher.process(1, { timeout: 50 })); // t = 0
    await vi.advanceTimersByTimeAsync(20);
    const b = record(batcher.process(2, { timeout: 50 })); // t = 20
    await vi.advanceTimersByTimeAsync(20); // t = 40: the batch starts
    expect(calls[0]?.items).toEqual([1, 2]);
    expect(times).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(times).toEqual([50, 70]);
    calls[0]?.resolve([2, 4]);
    await Promise.all([a, b]);
    await batcher.stop();
  });

  it("the wait for a concurrency slot counts too", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 0, itemTimeout: 100 });
    const first = batcher.process(1);
    await runJobs();
    const second = track(batcher.process(2)); // t = 0: waits for the slot
    await vi.advanceTimersByTimeAsync(60);
    expect(calls).toHaveLength(1);
    double(calls[0]);
    await expect(first).resolves.toBe(2);
    await runJobs();
    expect(calls[1]?.items).toEqual([2]); // dispatched at 60
    await vi.advanceTimersByTimeAsync(39);
    expect(second.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1); // t = 100, not 160
    expectTimeout(second.error, 100);
    calls[1]?.resolve([4]);
    await batcher.stop();
  });
});

describe("timers", () => {
  /** Timers held by a batcher with `n` queued items timing out after `timeout(i)` ms. */
  async function timersFor(n: number, timeout: (i: number) => number | undefined) {
    const { batcher } = manualBatcher({ maxQueueTime: Number.POSITIVE_INFINITY });
    const results = Array.from({ length: n }, (_, i) => {
      const ms = timeout(i);
      return track(batcher.process(i, ms === undefined ? undefined : { timeout: ms }));
    });
    await runJobs();
    const count = vi.getTimerCount();
    await batcher.stop({ force: true });
    await runJobs();
    expect(results.every((r) => r.error instanceof BatcherStoppedError)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    return count;
  }

  it("a uniform timeout needs as many timers for 1000 items as for 1: one", async () => {
    expect(await timersFor(1, () => 500)).toBe(1);
    expect(await timersFor(1000, () => 500)).toBe(1);
  });

  it("a uniform itemTimeout needs as many timers for 1000 items as for 1", async () => {
    const count = async (n: number) => {
      const { batcher } = manualBatcher({ maxQueueTime: 1000, itemTimeout: 500 });
      const results = Array.from({ length: n }, (_, i) => track(batcher.process(i)));
      await runJobs();
      const timers = vi.getTimerCount();
      await batcher.stop({ force: true });
      await runJobs();
      expect(results.every((r) => r.settled)).toBe(true);
      return timers;
    };
    const one = await count(1);
    expect(one).toBeLessThanOrEqual(2); // batching and timeouts
    expect(await count(1000)).toBe(one);
  });

  it("items arriving over time with a uniform timeout still share one timer", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: Number.POSITIVE_INFINITY,
      itemTimeout: 50,
    });
    const results = [];
    for (let i = 0; i < 200; i++) {
      results.push(track(batcher.process(i)));
      await vi.advanceTimersByTimeAsync(1);
      expect(vi.getTimerCount()).toBeLessThanOrEqual(1);
    }
    // t = 200: items 0..150 timed out, each at its own deadline
    expect(results.filter((r) => r.settled)).toHaveLength(151);
    expect(batcher.queueSize).toBe(49);
    await vi.advanceTimersByTimeAsync(50);
    expect(results.every((r) => r.error instanceof ItemTimeoutError)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(calls).toHaveLength(0);
    await batcher.stop();
  });

  it("a few distinct durations over many items still share one timer", async () => {
    expect(await timersFor(300, (i) => [100, 200, 300][i % 3])).toBe(1);
    expect(await timersFor(300, (i) => (i % 2 === 0 ? 100 : undefined))).toBe(1);
  });

  it("items that settle before their timeout leave no timers behind", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, maxBatchSize: 40 });
    const results = Array.from({ length: 100 }, (_, i) =>
      batcher.process(i, { timeout: 1000 + (i % 4) * 100 }),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) {
      double(calls[i]);
      await runJobs();
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(await Promise.all(results)).toEqual(Array.from({ length: 100 }, (_, i) => i * 2));
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("a synchronous batch function with itemTimeout leaves no timers behind", async () => {
    const { batcher, calls } = syncBatcher({ maxQueueTime: 0, maxBatchSize: 7, itemTimeout: 100 });
    const results = Array.from({ length: 50 }, (_, i) => batcher.process(i));
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await runJobs();
    expect(await Promise.all(results)).toHaveLength(50);
    expect(calls.flat()).toHaveLength(50);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });
});

describe("several durations", () => {
  it("fire in deadline order, each at its deadline", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: Number.POSITIVE_INFINITY });
    const fired: [string, number][] = [];
    const watch = (name: string, p: Promise<number>) =>
      p.catch((error: unknown) => {
        expect(error).toBeInstanceOf(ItemTimeoutError);
        fired.push([name, Date.now()]);
      });
    const all = [
      watch("a", batcher.process(1, { timeout: 30 })), // deadline 30
      watch("b", batcher.process(2, { timeout: 10 })), // 10
      watch("c", batcher.process(3, { timeout: 20 })), // 20
    ];
    await vi.advanceTimersByTimeAsync(15);
    all.push(watch("d", batcher.process(4, { timeout: 10 }))); // 25
    all.push(watch("e", batcher.process(5, { timeout: 30 }))); // 45
    all.push(watch("f", batcher.process(6, { timeout: 1 }))); // 16
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all(all);
    expect(fired).toEqual([
      ["b", 10],
      ["f", 16],
      ["c", 20],
      ["d", 25],
      ["a", 30],
      ["e", 45],
    ]);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("an earlier deadline added later still fires on time", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: Number.POSITIVE_INFINITY });
    const long = track(batcher.process(1, { timeout: 1000 }));
    const short = track(batcher.process(2, { timeout: 5 }));
    await vi.advanceTimersByTimeAsync(5);
    expectTimeout(short.error, 5);
    expect(long.settled).toBe(false);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(995);
    expectTimeout(long.error, 1000);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });
});

describe("with maxQueueTime, flush() and stop()", () => {
  it("maxQueueTime 0: the batch starts at once and the item times out while it runs", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 0 });
    const timed = track(batcher.process(1, { timeout: 5 }));
    await runJobs();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5);
    expectTimeout(timed.error, 5);
    expect(calls[0]?.context.signal.aborted).toBe(true);
    calls[0]?.resolve([2]);
    await batcher.stop();
  });

  it("a timeout shorter than maxQueueTime never reaches a batch", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 50, itemTimeout: 20 });
    const results = [1, 2, 3].map((i) => track(batcher.process(i)));
    await vi.advanceTimersByTimeAsync(100);
    for (const result of results) expectTimeout(result.error, 20);
    expect(calls).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("flush() dispatches before the timeout, and the item resolves", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const item = batcher.process(1, { timeout: 50 });
    const flushed = batcher.flush();
    await runJobs();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10);
    double(calls[0]);
    await flushed;
    await expect(item).resolves.toBe(2);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("flush() resolves when the queued items it waits for time out", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000, maxBatchSize: 1 });
    const running = batcher.process(0);
    await runJobs();
    const timed = track(batcher.process(1, { timeout: 50 }));
    const flushed = track(batcher.flush());
    await vi.advanceTimersByTimeAsync(49);
    expect(flushed.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expectTimeout(timed.error, 50);
    expect(flushed.settled).toBe(true);
    expect(calls).toHaveLength(1);
    double(calls[0]);
    await expect(running).resolves.toBe(0);
    await runJobs();
    expect(calls).toHaveLength(1);
    await batcher.stop();
  });

  it("graceful stop: a queued item times out, and the stop resolves without running it", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, maxBatchSize: 1 });
    const running = batcher.process(1);
    const timed = track(batcher.process(2, { timeout: 50 }));
    await runJobs();
    const stopped = track(batcher.stop());
    await vi.advanceTimersByTimeAsync(50);
    expectTimeout(timed.error, 50);
    expect(stopped.settled).toBe(false);
    double(calls[0]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    await expect(running).resolves.toBe(2);
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("graceful stop: a running item times out; the stop waits for the batch function", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const timed = track(batcher.process(1, { timeout: 50 }));
    const stopped = track(batcher.stop());
    await runJobs();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50);
    expectTimeout(timed.error, 50);
    expect(calls[0]?.context.signal.aborted).toBe(true);
    expect(stopped.settled).toBe(false);
    calls[0]?.resolve([2]);
    await runJobs();
    expect(stopped.settled).toBe(true);
  });

  it("force stop: BatcherStoppedError for everyone, and every timeout timer is cleared", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      maxBatchSize: 1,
      itemTimeout: 50,
    });
    const running = track(batcher.process(1));
    const queued = track(batcher.process(2, { timeout: 80 }));
    await runJobs();
    expect(calls).toHaveLength(1);
    await batcher.stop({ force: true });
    await runJobs();
    expect(running.error).toBeInstanceOf(BatcherStoppedError);
    expect(queued.error).toBeInstanceOf(BatcherStoppedError);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(running.error).toBeInstanceOf(BatcherStoppedError);
    expect(queued.error).toBeInstanceOf(BatcherStoppedError);
    calls[0]?.resolve([2]);
  });

  it("onIdle() resolves once the queued items have timed out", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000, itemTimeout: 30 });
    const results = [1, 2].map((i) => track(batcher.process(i)));
    const idle = track(batcher.onIdle());
    await vi.advanceTimersByTimeAsync(29);
    expect(idle.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(idle.settled).toBe(true);
    for (const result of results) expectTimeout(result.error, 30);
    expect(calls).toHaveLength(0);
    await batcher.stop();
  });
});
