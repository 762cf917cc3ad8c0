/**
 * `splitOnError: true` (issue 4): a batch that throws (and is not retried) is tried again in two
 * halves, the first holding the first ceil(n/2) items, recursively, so that only the items that
 * fail alone reject, each with its own error. Halves need a concurrency slot like any batch, come
 * after the whole batch's retries, follow their items with `dedupe`, lose callers that leave, and
 * show in events and stats. Fake timers throughout.
 */
import { getEventListeners } from "node:events";
import {
  type BatchEndEvent,
  type BatcherOptions,
  BatcherStoppedError,
  BatchResultError,
  type BatchStartEvent,
  createBatcher,
  type SplitEvent,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

const listeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** What a batch holding a bad item throws: a new one per call, naming the batch. */
class BadBatch extends Error {
  override name = "BadBatch";
  readonly items: readonly number[];

  constructor(items: readonly number[]) {
    super(`bad batch ${items.join(",")}`);
    this.items = items;
  }
}

class Transient extends Error {
  override name = "Transient";
}

class Fatal extends Error {
  override name = "Fatal";
}

/**
 * A batcher whose batch function rejects with a fresh `BadBatch` when its batch holds one of
 * `bad`, and otherwise answers each item `x` with `x * 10`; it records every call and every
 * error. `sync`: the function throws (and returns) synchronously instead.
 */
function splitting(bad: Iterable<number>, options: BatcherOptions = {}, sync = false) {
  const badSet = new Set(bad);
  const calls: number[][] = [];
  const thrown: BadBatch[] = [];
  const starts: BatchStartEvent[] = [];
  const run = (items: number[]) => {
    calls.push([...items]);
    if (items.some((x) => badSet.has(x))) {
      const error = new BadBatch([...items]);
      thrown.push(error);
      throw error;
    }
    return items.map((x) => x * 10);
  };
  const batcher = createBatcher(sync ? run : async (items: number[]) => run(items), {
    maxQueueTime: 10,
    splitOnError: true,
    ...options,
  });
  batcher.on("batchStart", (event) => starts.push(event));
  /** The error thrown by the one-item call of `x`. */
  const errorOf = (x: number) => thrown.find((e) => e.items.length === 1 && e.items[0] === x);
  return { batcher, calls, thrown, starts, errorOf };
}

/**
 * The calls the binary split should make, in order (halves wait in a FIFO): the whole batch,
 * then each failing part of two or more items as its first ceil(n/2) items and the rest.
 */
function expectedSplit(items: number[], bad: ReadonlySet<number>): number[][] {
  const calls: number[][] = [];
  const pending = [items];
  for (let part = pending.shift(); part !== undefined; part = pending.shift()) {
    calls.push(part);
    if (part.length > 1 && part.some((x) => bad.has(x))) {
      const half = Math.ceil(part.length / 2);
      pending.push(part.slice(0, half), part.slice(half));
    }
  }
  return calls;
}

/** Submits `items` and lets every batch run; returns each caller's outcome. */
async function runAll(batcher: { process(x: number): Promise<number> }, items: number[]) {
  const results = items.map((x) => track(batcher.process(x)));
  await vi.advanceTimersByTimeAsync(10);
  await runJobs();
  return results;
}

describe("splitOnError validation", () => {
  it.each([
    ["a string", "true"],
    ["a number", 1],
    ["null", null],
  ])("throws TypeError when it is not a boolean (%s)", (_, splitOnError) => {
    expect(() =>
      createBatcher(async (items: number[]) => items, {
        splitOnError: splitOnError as unknown as boolean,
      }),
    ).toThrow(TypeError);
  });

  it("without it, a throwing batch rejects every caller with its error", async () => {
    const { batcher, calls, thrown } = splitting([1], { splitOnError: false });
    const results = await runAll(batcher, [0, 1, 2]);
    expect(calls).toEqual([[0, 1, 2]]);
    for (const result of results) expect(result.error).toBe(thrown[0]);
    await batcher.stop();
  });
});

describe("one bad item", () => {
  it("n = 3: the exact calls, and only the bad item rejects", async () => {
    const { batcher, calls, thrown, errorOf } = splitting([1]);
    const results = await runAll(batcher, [0, 1, 2]);
    expect(calls).toEqual([[0, 1, 2], [0, 1], [2], [0], [1]]);
    expect(results.map((r) => r.settled)).toEqual([true, true, true]);
    expect(results[0]?.error).toBeUndefined();
    expect(results[2]?.error).toBeUndefined();
    expect(results[1]?.error).toBe(errorOf(1));
    expect(thrown.map((e) => e.items)).toEqual([[0, 1, 2], [0, 1], [1]]);
    await batcher.stop();
  });

  it("n = 13, item 5: the exact calls", async () => {
    const { batcher, calls, errorOf } = splitting([5]);
    const results = await runAll(batcher, range(13));
    expect(calls).toEqual([
      range(13),
      [0, 1, 2, 3, 4, 5, 6],
      [7, 8, 9, 10, 11, 12],
      [0, 1, 2, 3],
      [4, 5, 6],
      [4, 5],
      [6],
      [4],
      [5],
    ]);
    expect(results[5]?.error).toBe(errorOf(5));
    await batcher.stop();
  });

  const cases = [1, 2, 3, 8, 13].flatMap((n) => range(n).map((bad) => [n, bad] as const));
  it.each(cases)(
    "n = %i, bad item %i: binary split, its own error, the rest resolve",
    async (n, bad) => {
      const { batcher, calls, errorOf } = splitting([bad]);
      const results = await runAll(batcher, range(n));
      expect(calls).toEqual(expectedSplit(range(n), new Set([bad])));
      expect(calls.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(n)));
      for (const [x, result] of results.entries()) {
        expect(result.settled).toBe(true);
        if (x === bad) {
          expect(result.error).toBeInstanceOf(BadBatch);
          expect(result.error).toBe(errorOf(bad));
        } else {
          expect(result.error).toBeUndefined();
        }
      }
      await batcher.stop();
    },
  );

  it("resolves the good items with their own results", async () => {
    const { batcher } = splitting([2]);
    const results = [0, 1, 2, 3].map((x) => batcher.process(x));
    const settled = Promise.allSettled(results);
    await vi.advanceTimersByTimeAsync(10);
    const outcome = await settled;
    expect(outcome.map((o) => (o.status === "fulfilled" ? o.value : "rejected"))).toEqual([
      0,
      10,
      "rejected",
      30,
    ]);
    await batcher.stop();
  });
});

describe("a batch function that throws synchronously", () => {
  it("its halves still run at once, with nothing else happening", async () => {
    const { batcher, calls, errorOf } = splitting([1], {}, true);
    const results = [0, 1, 2, 3].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    await runJobs();
    expect(calls).toEqual([[0, 1, 2, 3], [0, 1], [2, 3], [0], [1]]);
    expect(results.map((r) => r.settled)).toEqual([true, true, true, true]);
    expect(results[1]?.error).toBe(errorOf(1));
    await batcher.stop();
  });

  it("its halves run when the batch was cut by size", async () => {
    const { batcher, calls, errorOf } = splitting([1], { maxBatchSize: 4 }, true);
    const results = [0, 1, 2, 3].map((x) => track(batcher.process(x)));
    await runJobs();
    expect(calls).toEqual([[0, 1, 2, 3], [0, 1], [2, 3], [0], [1]]);
    expect(results[1]?.error).toBe(errorOf(1));
    await batcher.stop();
  });
});

describe("several bad items", () => {
  it.each([
    [2, [0, 1], 3],
    [3, [0, 2], 5],
    [4, [0, 1, 2, 3], 7],
    [8, [2, 3], 7],
    [8, [0, 7], 11],
    [8, [1, 4, 6], 13],
    [13, [0, 6, 12], 15],
  ])("n = %i, bad %j: exactly those reject, in %i calls", async (n, bad, count) => {
    const { batcher, calls, errorOf } = splitting(bad);
    const results = await runAll(batcher, range(n));
    expect(calls).toHaveLength(count);
    expect(calls).toEqual(expectedSplit(range(n), new Set(bad)));
    expect(calls.length).toBeLessThanOrEqual(1 + 2 * bad.length * Math.ceil(Math.log2(n)));
    for (const [x, result] of results.entries()) {
      expect(result.settled).toBe(true);
      expect(result.error).toBe(bad.includes(x) ? errorOf(x) : undefined);
    }
    expect(batcher.stats().rejected.error).toBe(bad.length);
    expect(batcher.stats().resolved).toBe(n - bad.length);
    await batcher.stop();
  });
});

describe("halves and concurrency", () => {
  it("with concurrency 1 the halves run one after another, before newer batches", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxQueueTime: 10,
      concurrency: 1,
      splitOnError: true,
    });
    const first = [1, 2, 3, 4].map((x) => batcher.process(x));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3, 4]]);
    await vi.advanceTimersByTimeAsync(2);
    const newer = batcher.process(5); // t = 12: due at 22
    calls[0]?.reject(new Fatal("x"));
    await runJobs();
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2, 3, 4], 10],
      [[1, 2], 12],
    ]);
    await vi.advanceTimersByTimeAsync(18); // t = 30
    expect(calls).toHaveLength(2);
    double(calls[1]);
    await runJobs();
    expect(calls.map((c) => [c.items, c.startedAt])[2]).toEqual([[3, 4], 30]);
    await vi.advanceTimersByTimeAsync(10);
    double(calls[2]);
    await runJobs();
    expect(calls.map((c) => [c.items, c.startedAt])[3]).toEqual([[5], 40]);
    double(calls[3]);
    expect(await Promise.all([...first, newer])).toEqual([2, 4, 6, 8, 10]);
    expect(maxRunning()).toBe(1);
    await batcher.stop();
  });

  it("with a free slot for each, both halves start at once", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      concurrency: 2,
      splitOnError: true,
    });
    const results = [1, 2, 3, 4].map((x) => batcher.process(x));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Fatal("x"));
    await runJobs();
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2, 3, 4], 10],
      [[1, 2], 10],
      [[3, 4], 10],
    ]);
    double(calls[1]);
    double(calls[2]);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8]);
    await batcher.stop();
  });
});

describe("split with retry", () => {
  it("a retryable error retries the whole batch first; when the tries are spent, it splits", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      concurrency: 2,
      splitOnError: true,
      retry: { attempts: 2, delay: 100 },
    });
    const starts: BatchStartEvent[] = [];
    batcher.on("batchStart", (e) => starts.push(e));
    const results = [1, 2, 3, 4].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Transient("first"));
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1); // t = 110
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3, 4],
      [1, 2, 3, 4],
    ]);
    calls[1]?.reject(new Transient("second"));
    await runJobs();
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2, 3, 4], 10],
      [[1, 2, 3, 4], 110],
      [[1, 2], 110],
      [[3, 4], 110],
    ]);
    expect(starts.map((s) => [s.reason, s.parentId])).toEqual([
      ["time", undefined],
      ["retry", 1],
      ["split", 2],
      ["split", 2],
    ]);
    double(calls[2]);
    double(calls[3]);
    await runJobs();
    expect(results.map((r) => [r.settled, r.error])).toEqual([
      [true, undefined],
      [true, undefined],
      [true, undefined],
      [true, undefined],
    ]);
    await batcher.stop();
  });

  it("an error retryIf refuses splits at once", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      concurrency: 2,
      splitOnError: true,
      retry: { attempts: 3, retryIf: (e) => e instanceof Transient },
    });
    const results = [1, 2, 3, 4].map((x) => batcher.process(x));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Fatal("constraint"));
    await runJobs();
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2, 3, 4], 10],
      [[1, 2], 10],
      [[3, 4], 10],
    ]);
    expect(batcher.stats().retries).toBe(0);
    double(calls[1]);
    double(calls[2]);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8]);
    await batcher.stop();
  });

  it("split halves are not tries: an item may be in more than `attempts` calls", async () => {
    const { batcher, calls, starts, errorOf } = splitting([3], {
      retry: { attempts: 2, delay: 100 },
    });
    const results = [1, 2, 3, 4].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(110);
    await runJobs();
    expect(calls).toEqual([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2], [3, 4], [3], [4]]);
    expect(starts.map((s) => s.reason)).toEqual([
      "time",
      "retry",
      "split",
      "split",
      "split",
      "split",
    ]);
    const withThree = starts.filter((_, i) => calls[i]?.includes(3));
    expect(withThree).toHaveLength(4);
    expect(withThree.filter((s) => s.reason !== "split")).toHaveLength(2);
    expect(results[2]?.error).toBe(errorOf(3));
    expect(results.filter((r) => r.error === undefined)).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(6);
    await batcher.stop();
  });
});

describe("split with dedupe", () => {
  it("halves by distinct item; every caller follows its item", async () => {
    const { batcher, calls, starts, errorOf } = splitting([3], {
      keyOf: (x: unknown) => x,
      dedupe: true,
    });
    // Distinct items [1, 3, 2, 4]: the first half is {1, 3}, whatever the callers' count.
    const order = [1, 1, 1, 1, 3, 2, 3, 4];
    const results = order.map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    await runJobs();
    expect(calls).toEqual([[1, 3, 2, 4], [1, 3], [2, 4], [1], [3]]);
    expect(starts.map((s) => [s.size, s.callers])).toEqual([
      [4, 8],
      [2, 6],
      [2, 2],
      [1, 4],
      [1, 2],
    ]);
    const error = errorOf(3);
    expect(error).toBeInstanceOf(BadBatch);
    expect(results.map((r) => r.settled)).toEqual(order.map(() => true));
    expect(results.map((r) => r.error)).toEqual(order.map((x) => (x === 3 ? error : undefined)));
    // The batcher goes on: a later batch without the bad item resolves every caller.
    const again = Promise.all([1, 2, 1, 4].map((x) => batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    expect(await again).toEqual([10, 20, 10, 40]);
    expect(calls[5]).toEqual([1, 2, 4]);
    await batcher.stop();
  });

  it("one item with several callers is not split: they all reject with its error", async () => {
    const { batcher, calls, thrown } = splitting([7], { keyOf: (x: unknown) => x, dedupe: true });
    const results = [7, 7, 7].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    await runJobs();
    expect(calls).toEqual([[7]]);
    for (const result of results) expect(result.error).toBe(thrown[0]);
    expect(batcher.stats().splits).toBe(0);
    await batcher.stop();
  });
});

describe("callers that leave during a split", () => {
  it("a caller of a pending half leaves at once; the half runs without it", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, splitOnError: true });
    const starts: BatchStartEvent[] = [];
    batcher.on("batchStart", (e) => starts.push(e));
    const controller = new AbortController();
    const one = batcher.process(1);
    const two = batcher.process(2);
    const three = track(batcher.process(3, { signal: controller.signal }));
    const four = batcher.process(4);
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Fatal("x"));
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3, 4],
      [1, 2],
    ]);
    const reason = new Error("left");
    controller.abort(reason);
    await runJobs();
    expect(three.error).toBe(reason);
    expect(listeners(controller.signal)).toBe(0);
    double(calls[1]);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3, 4], [1, 2], [4]]);
    expect(starts[2]).toMatchObject({ reason: "split", size: 1, callers: 1, parentId: 1 });
    double(calls[2]);
    expect(await Promise.all([one, two, four])).toEqual([2, 4, 8]);
    await batcher.stop();
  });

  it("a half whose callers all left is not run", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, splitOnError: true });
    const controller = new AbortController();
    const kept = [batcher.process(1), batcher.process(2)];
    const gone = [3, 4].map((x) => track(batcher.process(x, { signal: controller.signal })));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Fatal("x"));
    await runJobs();
    controller.abort("gone");
    await runJobs();
    expect(gone.map((g) => g.error)).toEqual(["gone", "gone"]);
    double(calls[1]);
    await runJobs();
    expect(await Promise.all(kept)).toEqual([2, 4]);
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3, 4],
      [1, 2],
    ]);
    expect(batcher.stats().batches.split).toBe(1);
    expect(batcher.inFlight).toBe(0);
    // The dropped half left its slot free.
    const later = batcher.process(5);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)[2]).toEqual([5]);
    double(calls[2]);
    await expect(later).resolves.toBe(10);
    await batcher.stop();
  });

  it("a caller left while its batch ran: the one still waiting gets a try alone", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, splitOnError: true });
    const controller = new AbortController();
    const kept = track(batcher.process(1));
    const gone = track(batcher.process(2, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort("gone");
    await runJobs();
    expect(gone.error).toBe("gone");
    calls[0]?.reject(new Fatal("maybe item 2's fault"));
    await runJobs();
    expect(kept.settled).toBe(false);
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [1]]);
    double(calls[1]);
    await runJobs();
    expect(kept.settled).toBe(true);
    expect(kept.error).toBeUndefined();
    await batcher.stop();
  });
});

describe("split and stop()", () => {
  it("a force stop rejects the callers of running and pending halves; nothing runs later", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, splitOnError: true });
    const results = [1, 2, 3, 4].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Fatal("x"));
    await runJobs();
    expect(calls).toHaveLength(2);
    await batcher.stop({ force: true });
    await runJobs();
    for (const result of results) {
      expect(result.error).toBeInstanceOf(BatcherStoppedError);
      expect(result.error).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    }
    expect(calls[1]?.context.signal.aborted).toBe(true);
    double(calls[1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(2);
    expect(batcher.stats().rejected.stopped).toBe(4);
  });

  it("a graceful stop lets the pending halves run and resolves after them", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, splitOnError: true });
    const results = [1, 2, 3, 4].map((x) => batcher.process(x));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Fatal("x"));
    await runJobs();
    const stopped = track(batcher.stop());
    double(calls[1]);
    await runJobs();
    expect(calls.map((c) => c.items)[2]).toEqual([3, 4]);
    expect(stopped.settled).toBe(false);
    double(calls[2]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8]);
  });
});

describe("events and stats", () => {
  it("split, batchStart and batchEnd payloads", async () => {
    const { batcher, calls } = manualBatcher({
      name: "splitter",
      maxQueueTime: 10,
      batchKey: () => "k",
      splitOnError: true,
    });
    const splits: SplitEvent[] = [];
    const starts: BatchStartEvent[] = [];
    const ends: BatchEndEvent[] = [];
    batcher.on("split", (e) => splits.push(e));
    batcher.on("batchStart", (e) => starts.push(e));
    batcher.on("batchEnd", (e) => ends.push(e));
    const results = [1, 2, 3, 4].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    const first = new Fatal("first");
    calls[0]?.reject(first);
    await runJobs();
    double(calls[1]);
    await runJobs();
    await vi.advanceTimersByTimeAsync(5);
    const second = new Fatal("second");
    calls[2]?.reject(second);
    await runJobs();
    double(calls[3]);
    await runJobs();
    const last = new Fatal("last");
    calls[4]?.reject(last);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3, 4], [1, 2], [3, 4], [3], [4]]);
    expect(results.map((r) => r.error)).toEqual([undefined, undefined, undefined, last]);

    expect(splits).toEqual([
      { batcher: "splitter", batchId: 1, key: "k", size: 4, error: first },
      { batcher: "splitter", batchId: 3, key: "k", size: 2, error: second },
    ]);
    const start = {
      batcher: "splitter",
      key: "k",
      weight: 0,
      reason: "split",
      queueWait: 0,
      attempt: 1,
      contexts: undefined,
    };
    expect(starts).toEqual([
      {
        ...start,
        batchId: 1,
        parentId: undefined,
        size: 4,
        callers: 4,
        reason: "time",
        queueWait: 10,
      },
      { ...start, batchId: 2, parentId: 1, size: 2, callers: 2 },
      { ...start, batchId: 3, parentId: 1, size: 2, callers: 2 },
      { ...start, batchId: 4, parentId: 3, size: 1, callers: 1 },
      { ...start, batchId: 5, parentId: 3, size: 1, callers: 1 },
    ]);
    const end = { batcher: "splitter", key: "k", duration: 0 };
    expect(ends).toEqual([
      {
        ...end,
        batchId: 1,
        size: 4,
        resolved: 0,
        rejected: 0,
        retried: 4,
        error: first,
        failed: true,
      },
      {
        ...end,
        batchId: 2,
        size: 2,
        resolved: 2,
        rejected: 0,
        retried: 0,
        error: undefined,
        failed: false,
      },
      {
        ...end,
        batchId: 3,
        size: 2,
        duration: 5,
        resolved: 0,
        rejected: 0,
        retried: 2,
        error: second,
        failed: true,
      },
      {
        ...end,
        batchId: 4,
        size: 1,
        resolved: 1,
        rejected: 0,
        retried: 0,
        error: undefined,
        failed: false,
      },
      {
        ...end,
        batchId: 5,
        size: 1,
        resolved: 0,
        rejected: 1,
        retried: 0,
        error: last,
        failed: true,
      },
    ]);
    const stats = batcher.stats();
    expect(stats.splits).toBe(2);
    expect(stats.batches).toEqual({
      size: 0,
      weight: 0,
      time: 1,
      flush: 0,
      stop: 0,
      retry: 0,
      split: 4,
      total: 5,
    });
    expect(stats.retries).toBe(0);
    expect(stats.resolved).toBe(3);
    expect(stats.rejected.error).toBe(1);
    expect(stats.rejected.total).toBe(1);
    await batcher.stop();
  });

  it("stats after a split of 8 with one bad item", async () => {
    const { batcher } = splitting([0]);
    await runAll(batcher, range(8));
    const stats = batcher.stats();
    expect(stats.splits).toBe(3); // 8, then 4, then 2
    expect(stats.batches.split).toBe(6);
    expect(stats.batches.total).toBe(7);
    expect(stats.resolved).toBe(7);
    expect(stats.rejected.error).toBe(1);
    expect(stats.submitted).toBe(stats.resolved + stats.rejected.total);
    expect(stats.inFlight).toBe(0);
    await batcher.stop();
  });
});

describe("what is not split", () => {
  it("a throwing batch of one item rejects with its error: no split", async () => {
    const { batcher, calls, thrown } = splitting([0]);
    const splits: SplitEvent[] = [];
    batcher.on("split", (e) => splits.push(e));
    const [result] = await runAll(batcher, [0]);
    expect(calls).toEqual([[0]]);
    expect(result?.error).toBe(thrown[0]);
    expect(splits).toEqual([]);
    expect(batcher.stats().splits).toBe(0);
    expect(batcher.stats().batches.split).toBe(0);
    await batcher.stop();
  });

  it("a result of the wrong length (BatchResultError) rejects everyone, no split", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, splitOnError: true });
    const results = [1, 2, 3, 4].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    calls[0]?.resolve([2]);
    await runJobs();
    for (const result of results) {
      expect(result.error).toBeInstanceOf(BatchResultError);
      expect(result.error).toMatchObject({ code: "ERR_BATCH_RESULT", expected: 4, received: 1 });
    }
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    expect(batcher.stats().splits).toBe(0);
    await batcher.stop();
  });

  it("an Error result for an item rejects that item alone: nothing is split", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, splitOnError: true });
    const results = [1, 2, 3].map((x) => track(batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    const error = new Fatal("row");
    calls[0]?.resolve([2, error, 6]);
    await runJobs();
    expect(results.map((r) => r.error)).toEqual([undefined, error, undefined]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    expect(batcher.stats().splits).toBe(0);
    await batcher.stop();
  });
});
