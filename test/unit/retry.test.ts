/**
 * `retry: { attempts, delay, maxDelay, jitter, retryIf }` (issue 4): a batch that throws is tried
 * again with the callers still waiting, together, after an exponential backoff; an `Error`
 * returned for one item is tried again for that item alone, which rejoins its key's queue ahead of
 * everything newer. Tries are counted per item; callers may leave during the backoff; retries
 * honour concurrency, the rate limit, stop(), flush() and onIdle(), and show in events and stats.
 * Fake timers throughout: every backoff is checked to the millisecond.
 */
import { getEventListeners } from "node:events";
import {
  type BatchEndEvent,
  type BatcherOptions,
  BatcherStoppedError,
  BatchResultError,
  type BatchStartEvent,
  createBatcher,
  ItemTimeoutError,
  type RetryEvent,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Listeners the batcher (or anyone) holds on `signal`'s `abort` event. */
const listeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

class Transient extends Error {
  override name = "Transient";
}

class Fatal extends Error {
  override name = "Fatal";
}

/** A manual batcher that also records its `batchStart`, `batchEnd` and `retry` events. */
function observed(options: BatcherOptions) {
  const manual = manualBatcher(options);
  const starts: BatchStartEvent[] = [];
  const ends: BatchEndEvent[] = [];
  const retries: RetryEvent[] = [];
  manual.batcher.on("batchStart", (event) => starts.push(event));
  manual.batcher.on("batchEnd", (event) => ends.push(event));
  manual.batcher.on("retry", (event) => retries.push(event));
  return { ...manual, starts, ends, retries };
}

/** Moves the clock to `to` (absolute, in ms), then checks the clock really is there. */
async function advanceTo(to: number) {
  await vi.advanceTimersByTimeAsync(to - Date.now());
  expect(Date.now()).toBe(to);
}

describe("retry validation", () => {
  const make = (retry: unknown) => () =>
    createBatcher(async (items: number[]) => items, {
      retry: retry as BatcherOptions["retry"],
    });

  it.each([
    ["null", null],
    ["a number", 3],
    ["a string", "3"],
    ["an array", [3, 100]],
    ["true", true],
  ])("throws TypeError when retry is not an object (%s)", (_, value) => {
    expect(make(value)).toThrow(TypeError);
  });

  it("throws TypeError when attempts is missing", () => {
    expect(make({})).toThrow(TypeError);
    expect(make({ delay: 100 })).toThrow(TypeError);
    expect(make({ attempts: undefined })).toThrow(TypeError);
  });

  it.each([
    ["a string", "3"],
    ["null", null],
    ["a boolean", true],
    ["an object", { n: 3 }],
  ])("throws TypeError when attempts is not a number (%s)", (_, attempts) => {
    expect(make({ attempts })).toThrow(TypeError);
  });

  it.each([
    ["0", 0],
    ["negative", -1],
    ["fractional", 1.5],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["NaN", Number.NaN],
  ])("throws RangeError when attempts is %s", (_, attempts) => {
    expect(make({ attempts })).toThrow(RangeError);
  });

  it.each([
    ["negative", -1],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
  ])("throws RangeError when delay is %s", (_, delay) => {
    expect(make({ attempts: 3, delay })).toThrow(RangeError);
  });

  it.each([
    ["a string", "100"],
    ["null", null],
    ["an object", { ms: 100 }],
  ])("throws TypeError when delay is neither a number nor a function (%s)", (_, delay) => {
    expect(make({ attempts: 3, delay })).toThrow(TypeError);
  });

  it.each([
    ["negative", -1],
    ["NaN", Number.NaN],
  ])("throws RangeError when maxDelay is %s", (_, maxDelay) => {
    expect(make({ attempts: 3, maxDelay })).toThrow(RangeError);
  });

  it("throws TypeError when maxDelay is not a number", () => {
    expect(make({ attempts: 3, maxDelay: "1000" })).toThrow(TypeError);
    expect(make({ attempts: 3, maxDelay: null })).toThrow(TypeError);
  });

  it.each([
    ["a string", "true"],
    ["a number", 1],
    ["null", null],
  ])("throws TypeError when jitter is not a boolean (%s)", (_, jitter) => {
    expect(make({ attempts: 3, jitter })).toThrow(TypeError);
  });

  it.each([
    ["a string", "isTransient"],
    ["true", true],
    ["an object", {}],
    ["null", null],
  ])("throws TypeError when retryIf is not a function (%s)", (_, retryIf) => {
    expect(make({ attempts: 3, retryIf })).toThrow(TypeError);
  });

  it("accepts every valid shape", () => {
    expect(make({ attempts: 1 })).not.toThrow();
    expect(make({ attempts: 5, delay: 0, maxDelay: 0, jitter: false })).not.toThrow();
    expect(
      make({
        attempts: 2,
        delay: (attempt: number) => attempt,
        maxDelay: Number.POSITIVE_INFINITY,
        jitter: true,
        retryIf: () => true,
      }),
    ).not.toThrow();
  });
});

describe("a batch that throws", () => {
  it("is retried with the same items after 100 ms, then 200 ms, and callers get the last error", async () => {
    const { batcher, calls, starts } = observed({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1));
    const b = track(batcher.process(2));
    await advanceTo(10);
    expect(calls.map((c) => c.items)).toEqual([[1, 2]]);

    const errors = [new Transient("1"), new Transient("2"), new Transient("3")];
    calls[0]?.reject(errors[0]);
    await advanceTo(109);
    expect(calls).toHaveLength(1);
    expect(a.settled).toBe(false);
    await advanceTo(110);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.items).toEqual([1, 2]);
    expect(calls[1]?.startedAt).toBe(110);

    calls[1]?.reject(errors[1]);
    await advanceTo(309);
    expect(calls).toHaveLength(2);
    await advanceTo(310);
    expect(calls).toHaveLength(3);
    expect(calls[2]?.items).toEqual([1, 2]);
    expect(calls[2]?.startedAt).toBe(310);
    expect(a.settled).toBe(false);

    calls[2]?.reject(errors[2]);
    await runJobs();
    expect(a.error).toBe(errors[2]);
    expect(b.error).toBe(errors[2]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toHaveLength(3);
    expect(starts.map((s) => s.reason)).toEqual(["time", "retry", "retry"]);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("resolves every caller with the retry's results when a retry succeeds", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    await advanceTo(10);
    calls[0]?.reject(new Transient("flaky"));
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
    double(calls[1]);
    expect(await results).toEqual([2, 4, 6]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(2);
    await batcher.stop();
  });

  it("makes exactly `attempts` calls when every try fails, each backoff double the last", async () => {
    const calls: number[][] = [];
    const times: number[] = [];
    const error = new Transient("down");
    const batcher = createBatcher(
      (items: number[]) => {
        calls.push([...items]);
        times.push(Date.now());
        throw error;
      },
      { maxQueueTime: 0, retry: { attempts: 5, delay: 10 } },
    );
    const result = track(batcher.process(1));
    await advanceTo(149);
    expect(calls).toHaveLength(4);
    expect(result.settled).toBe(false);
    await advanceTo(150);
    expect(calls).toEqual([[1], [1], [1], [1], [1]]);
    expect(times).toEqual([0, 10, 30, 70, 150]);
    expect(result.error).toBe(error);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(5);
    await batcher.stop();
  });

  it("attempts: 1 retries nothing: callers reject at once and no timer is left", async () => {
    const { batcher, calls, retries } = observed({ maxQueueTime: 10, retry: { attempts: 1 } });
    const a = track(batcher.process(1));
    await advanceTo(10);
    const error = new Transient("once");
    calls[0]?.reject(error);
    await runJobs();
    expect(a.error).toBe(error);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    expect(retries).toEqual([]);
    expect(batcher.stats().retries).toBe(0);
    await batcher.stop();
  });

  it("without retry, a throwing batch rejects at once (the default is no retry)", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10 });
    const a = track(batcher.process(1));
    await advanceTo(10);
    const error = new Transient("no retry");
    calls[0]?.reject(error);
    await runJobs();
    expect(a.error).toBe(error);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    await batcher.stop();
  });

  it("a retry holds no slot during its backoff and stats count it in flight", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 2 } });
    const results = Promise.all([batcher.process(1), batcher.process(2)]);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(50);
    expect(batcher.inFlight).toBe(2);
    expect(batcher.queueSize).toBe(0);
    const stats = batcher.stats();
    expect(stats.inFlight).toBe(2);
    expect(stats.queued).toBe(0);
    expect(stats.runningBatches).toBe(0);
    await advanceTo(110);
    expect(batcher.stats().runningBatches).toBe(1);
    double(calls[1]);
    expect(await results).toEqual([2, 4]);
    expect(batcher.inFlight).toBe(0);
    await batcher.stop();
  });
});

describe("backoff", () => {
  it("a delay function gives each backoff outright, from (attempt, error)", async () => {
    const delay = vi.fn((attempt: number, _error: unknown) => attempt * 30);
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3, delay } });
    const a = track(batcher.process(1));
    await advanceTo(10);
    const first = new Transient("first");
    calls[0]?.reject(first);
    await advanceTo(39);
    expect(calls).toHaveLength(1);
    await advanceTo(40); // 10 + delay(1) = 30
    expect(calls).toHaveLength(2);
    expect(calls[1]?.startedAt).toBe(40);

    const second = new Transient("second");
    calls[1]?.reject(second);
    await advanceTo(99);
    expect(calls).toHaveLength(2);
    await advanceTo(100); // 40 + delay(2) = 60
    expect(calls).toHaveLength(3);
    expect(delay.mock.calls).toEqual([
      [1, first],
      [2, second],
    ]);
    double(calls[2]);
    await runJobs();
    expect(a.settled).toBe(true);
    expect(a.error).toBeUndefined();
    expect(delay).toHaveBeenCalledTimes(2);
    await batcher.stop();
  });

  it.each([
    [
      "throws",
      () => {
        throw new Error("bad delay");
      },
    ],
    ["returns NaN", () => Number.NaN],
    ["returns a negative number", () => -50],
  ])("a delay function that %s means no wait", async (_, delay) => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 2, delay } });
    const a = batcher.process(1);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.startedAt).toBe(10);
    double(calls[1]);
    await expect(a).resolves.toBe(2);
    await batcher.stop();
  });

  it("delay: 0 retries in the same millisecond", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      retry: { attempts: 3, delay: 0 },
    });
    const a = track(batcher.process(1));
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await runJobs();
    calls[1]?.reject(new Transient("y"));
    await runJobs();
    expect(calls.map((c) => c.startedAt)).toEqual([10, 10, 10]);
    double(calls[2]);
    await runJobs();
    expect(a.settled).toBe(true);
    expect(a.error).toBeUndefined();
    await batcher.stop();
  });

  it("maxDelay caps the exponential backoff: 100, then 150 instead of 200 and 400", async () => {
    const { batcher, calls, retries } = observed({
      maxQueueTime: 10,
      retry: { attempts: 4, delay: 100, maxDelay: 150 },
    });
    const a = track(batcher.process(1));
    await advanceTo(10);
    const expected = [110, 260, 410];
    for (const [i, at] of expected.entries()) {
      calls[i]?.reject(new Transient(`try ${i + 1}`));
      await advanceTo(at - 1);
      expect(calls).toHaveLength(i + 1);
      await advanceTo(at);
      expect(calls).toHaveLength(i + 2);
    }
    expect(retries.map((r) => r.delay)).toEqual([100, 150, 150]);
    expect(calls.map((c) => c.startedAt)).toEqual([10, 110, 260, 410]);
    calls[3]?.reject(new Transient("last"));
    await runJobs();
    expect(a.error).toBeInstanceOf(Transient);
    await batcher.stop();
  });

  it("maxDelay caps a delay function too", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      retry: { attempts: 2, delay: () => 10_000, maxDelay: 50 },
    });
    const a = batcher.process(1);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(59);
    expect(calls).toHaveLength(1);
    await advanceTo(60);
    expect(calls).toHaveLength(2);
    double(calls[1]);
    await expect(a).resolves.toBe(2);
    await batcher.stop();
  });

  it("jitter draws each backoff as Math.random() times the computed one", async () => {
    const random = vi.spyOn(Math, "random").mockReturnValue(0.25);
    const { batcher, calls, retries } = observed({
      maxQueueTime: 10,
      retry: { attempts: 3, delay: 100, jitter: true },
    });
    const a = track(batcher.process(1));
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(34);
    expect(calls).toHaveLength(1);
    await advanceTo(35); // 10 + 0.25 * 100
    expect(calls).toHaveLength(2);
    calls[1]?.reject(new Transient("y"));
    await advanceTo(84);
    expect(calls).toHaveLength(2);
    await advanceTo(85); // 35 + 0.25 * 200
    expect(calls).toHaveLength(3);
    expect(retries.map((r) => r.delay)).toEqual([25, 50]);
    expect(random).toHaveBeenCalledTimes(2);
    double(calls[2]);
    await runJobs();
    expect(a.error).toBeUndefined();
    await batcher.stop();
  });

  it("jitter applies to the backoff after maxDelay capped it", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const { batcher, calls, retries } = observed({
      maxQueueTime: 10,
      retry: { attempts: 2, delay: 100, maxDelay: 80, jitter: true },
    });
    const a = batcher.process(1);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(49);
    expect(calls).toHaveLength(1);
    await advanceTo(50); // 10 + 0.5 * min(100, 80)
    expect(calls).toHaveLength(2);
    expect(retries.map((r) => r.delay)).toEqual([40]);
    double(calls[1]);
    await expect(a).resolves.toBe(2);
    await batcher.stop();
  });

  it("without jitter, Math.random is never drawn", async () => {
    const random = vi.spyOn(Math, "random");
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 2 } });
    const a = batcher.process(1);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(110);
    double(calls[1]);
    await expect(a).resolves.toBe(2);
    expect(random).not.toHaveBeenCalled();
    await batcher.stop();
  });

  it("a backoff longer than the host's 2^31-1 ms timer limit is waited out in full", async () => {
    const long = 3_000_000_000; // about 35 days: more than a host timer can wait at once
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      retry: { attempts: 2, delay: () => long },
    });
    const a = track(batcher.process(1));
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(1010);
    expect(calls).toHaveLength(1);
    expect(a.settled).toBe(false);
    await advanceTo(10 + long - 1);
    expect(calls).toHaveLength(1);
    await advanceTo(10 + long);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.startedAt).toBe(10 + long);
    double(calls[1]);
    await runJobs();
    expect(a.settled).toBe(true);
    expect(a.error).toBeUndefined();
    await batcher.stop();
  });
});

describe("retryIf", () => {
  it("false: the callers reject at once with the error, no retry", async () => {
    const retryIf = vi.fn((error: unknown) => error instanceof Transient);
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3, retryIf } });
    const a = track(batcher.process(1));
    const b = track(batcher.process(2));
    await advanceTo(10);
    const error = new Fatal("constraint");
    calls[0]?.reject(error);
    await runJobs();
    expect(a.error).toBe(error);
    expect(b.error).toBe(error);
    expect(retryIf).toHaveBeenCalledWith(error);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    expect(batcher.stats().retries).toBe(0);
    await batcher.stop();
  });

  it("true: retried; and it is asked again about each later error", async () => {
    const retryIf = vi.fn((error: unknown) => error instanceof Transient);
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3, retryIf } });
    const a = track(batcher.process(1));
    await advanceTo(10);
    const first = new Transient("flaky");
    calls[0]?.reject(first);
    await advanceTo(110);
    expect(calls).toHaveLength(2);
    const second = new Fatal("then fatal");
    calls[1]?.reject(second);
    await runJobs();
    expect(a.error).toBe(second);
    expect(retryIf.mock.calls).toEqual([[first], [second]]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(2);
    await batcher.stop();
  });

  it("a retryIf that throws counts as false: callers get the batch's error", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      retry: {
        attempts: 3,
        retryIf: () => {
          throw new Error("retryIf broke");
        },
      },
    });
    const a = track(batcher.process(1));
    await advanceTo(10);
    const error = new Transient("x");
    calls[0]?.reject(error);
    await runJobs();
    expect(a.error).toBe(error);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    await batcher.stop();
  });

  it("decides for Error results of items too", async () => {
    const retryIf = (error: unknown) => error instanceof Transient;
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      retry: { attempts: 3, retryIf },
    });
    const results = [1, 2, 3].map((i) => track(batcher.process(i)));
    await runJobs();
    const fatal = new Fatal("no such row");
    calls[0]?.resolve([new Transient("busy"), fatal, 6]);
    await runJobs();
    expect(results[1]?.error).toBe(fatal);
    expect(results[2]?.settled).toBe(true);
    expect(results[0]?.settled).toBe(false);
    await advanceTo(100);
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3], [1]]);
    double(calls[1]);
    await runJobs();
    expect(results[0]?.settled).toBe(true);
    expect(results[0]?.error).toBeUndefined();
    await batcher.stop();
  });
});

describe("an Error result for an item", () => {
  it("retries that item alone after the backoff; the others resolve at once", async () => {
    const { batcher, calls, reasons, starts } = observed({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const one = track(batcher.process(1));
    const two = batcher.process(2);
    const three = track(batcher.process(3));
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3]]);
    calls[0]?.resolve([2, new Transient("row busy"), 6]);
    await runJobs();
    expect(one.settled).toBe(true);
    expect(three.settled).toBe(true);

    await advanceTo(99);
    expect(calls).toHaveLength(1);
    await advanceTo(100);
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3], [2]]);
    expect(calls[1]?.startedAt).toBe(100);
    expect(reasons).toEqual(["size", "retry"]);
    expect(starts[1]).toMatchObject({ reason: "retry", attempt: 2, size: 1, callers: 1 });
    calls[1]?.resolve([40]);
    await expect(two).resolves.toBe(40);
    await batcher.stop();
  });

  it("rejects with the item's last error once its tries are spent", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      retry: { attempts: 2 },
    });
    const a = track(batcher.process(1));
    const b = track(batcher.process(2));
    await runJobs();
    calls[0]?.resolve([2, new Transient("first")]);
    await advanceTo(100);
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [2]]);
    const last = new Transient("last");
    calls[1]?.resolve([last]);
    await runJobs();
    expect(a.error).toBeUndefined();
    expect(b.error).toBe(last);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(2);
    await batcher.stop();
  });

  it("rejoins ahead of newer items and of higher priorities; the lane is cut at once", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxQueueTime: 100,
      retry: { attempts: 3 },
    });
    const first = [1, 2, 3].map((i) => batcher.process(i));
    await advanceTo(100);
    calls[0]?.resolve([2, new Transient("x"), 6]);
    await advanceTo(150);
    const newer = [batcher.process(4), batcher.process(5, { priority: 10 }), batcher.process(6)];
    await advanceTo(199);
    expect(calls).toHaveLength(1);
    await advanceTo(200); // the backoff ends; the newer items' own deadline would be 250
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3],
      [2, 5, 4, 6],
    ]);
    expect(calls[1]?.startedAt).toBe(200);
    expect(reasons).toEqual(["time", "retry"]);
    double(calls[1]);
    expect(await Promise.all([...first, ...newer])).toEqual([2, 4, 6, 8, 10, 12]);
    await batcher.stop();
  });

  it("two items retried from one batch rejoin together, ahead of newer items", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 100,
      retry: { attempts: 3 },
    });
    const first = [1, 2, 3].map((i) => batcher.process(i));
    await advanceTo(100);
    calls[0]?.resolve([new Transient("a"), new Transient("b"), 6]);
    await advanceTo(150);
    const newer = [batcher.process(4), batcher.process(5, { priority: 10 })];
    await advanceTo(200);
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3],
      [1, 2, 5, 4],
    ]);
    double(calls[1]);
    await runJobs();
    expect(await Promise.all([...first, ...newer])).toEqual([2, 4, 6, 8, 10]);
    await batcher.stop();
  });

  it("two items retried from one batch go in one batch, even with nothing else queued", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      concurrency: 4,
      retry: { attempts: 3 },
    });
    const results = [1, 2, 3].map((i) => batcher.process(i));
    await advanceTo(10);
    calls[0]?.resolve([new Transient("a"), new Transient("b"), 6]);
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3],
      [1, 2],
    ]);
    double(calls[1]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(await Promise.all(results)).toEqual([2, 4, 6]);
    await batcher.stop();
  });

  it("newer items ride along up to maxBatchSize, behind the retried one", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const all = [1, 2, 3].map((i) => batcher.process(i));
    await runJobs(); // [1, 2, 3] cut by size at t = 0
    calls[0]?.resolve([2, new Transient("x"), 6]);
    await advanceTo(50);
    all.push(...[4, 5, 6].map((i) => batcher.process(i)));
    await runJobs(); // [4, 5, 6] cut by size, and kept running
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    await advanceTo(60);
    all.push(...[7, 8, 9].map((i) => batcher.process(i))); // full, but the only slot is busy
    await advanceTo(100); // item 2 rejoins
    expect(calls).toHaveLength(2);
    await advanceTo(120);
    double(calls[1]);
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [2, 7, 8],
    ]);
    expect(calls[2]?.startedAt).toBe(120);
    double(calls[2]);
    await advanceTo(1059); // item 9 waits for its own maxQueueTime
    expect(calls).toHaveLength(3);
    await advanceTo(1060);
    expect(calls[3]?.items).toEqual([9]);
    double(calls[3]);
    expect(await Promise.all(all)).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18]);
    await batcher.stop();
  });

  it("with dedupe, the callers of an item retried alone stay one item", async () => {
    const { batcher, calls, starts } = observed({
      maxQueueTime: 10,
      keyOf: (x: unknown) => x,
      dedupe: true,
      retry: { attempts: 3 },
    });
    const results = [5, 5, 6].map((x) => batcher.process(x));
    await advanceTo(10);
    expect(calls.map((c) => c.items)).toEqual([[5, 6]]);
    calls[0]?.resolve([new Transient("x"), 12]);
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([[5, 6], [5]]);
    expect(starts.map((s) => [s.size, s.callers])).toEqual([
      [2, 3],
      [1, 2],
    ]);
    double(calls[1]);
    expect(await Promise.all(results)).toEqual([10, 10, 12]);
    await batcher.stop();
  });

  it("with batchKey, the item rejoins its own key's queue", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxQueueTime: 100,
      concurrency: 4,
      batchKey: (x: number) => (x >= 100 ? "b" : "a"),
      retry: { attempts: 3 },
    } as BatcherOptions);
    const all = [1, 2, 101].map((i) => batcher.process(i));
    await advanceTo(100);
    expect(calls.map((c) => [c.context.key, c.items])).toEqual([
      ["a", [1, 2]],
      ["b", [101]],
    ]);
    calls[0]?.resolve([new Transient("x"), 4]);
    double(calls[1]);
    await advanceTo(150);
    all.push(batcher.process(3), batcher.process(102));
    await advanceTo(200);
    expect(calls.map((c) => [c.context.key, c.items])).toEqual([
      ["a", [1, 2]],
      ["b", [101]],
      ["a", [1, 3]],
    ]);
    expect(reasons).toEqual(["time", "time", "retry"]);
    double(calls[2]);
    await advanceTo(249);
    expect(calls).toHaveLength(3);
    await advanceTo(250);
    expect(calls.map((c) => [c.context.key, c.items])[3]).toEqual(["b", [102]]);
    double(calls[3]);
    expect(await Promise.all(all)).toEqual([2, 4, 202, 6, 204]);
    await batcher.stop();
  });

  it("the retried item's signal listener and timeout are gone once it settles", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const controller = new AbortController();
    const a = batcher.process(1, { signal: controller.signal, timeout: 5000 });
    const b = batcher.process(2);
    await runJobs();
    expect(listeners(controller.signal)).toBe(1);
    calls[0]?.resolve([new Transient("x"), 4]);
    await advanceTo(100);
    expect(calls[1]?.items).toEqual([1]);
    expect(listeners(controller.signal)).toBe(1);
    double(calls[1]);
    expect(await Promise.all([a, b])).toEqual([2, 4]);
    expect(listeners(controller.signal)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });
});

describe("tries are counted per item", () => {
  it("an item that failed twice alone stops at attempts when its batch then throws", async () => {
    const { batcher, calls, starts } = observed({
      maxQueueTime: 10,
      retry: { attempts: 3 },
    });
    const one = track(batcher.process(1));
    const two = batcher.process(2);
    await advanceTo(10);
    calls[0]?.resolve([new Transient("1a"), 4]);
    await expect(two).resolves.toBe(4);
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [1]]);
    calls[1]?.resolve([new Transient("1b")]);
    await advanceTo(305);
    const three = track(batcher.process(3)); // would be due at 315
    await advanceTo(309);
    expect(calls).toHaveLength(2);
    await advanceTo(310); // 110 + 200: item 1's third try, item 3 rides along
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [1], [1, 3]]);
    expect(starts.map((s) => s.attempt)).toEqual([1, 2, 3]);

    const thrown = new Transient("whole batch");
    calls[2]?.reject(thrown);
    await runJobs();
    expect(one.error).toBe(thrown); // three tries spent
    expect(three.settled).toBe(false);
    await advanceTo(409);
    expect(calls).toHaveLength(3);
    await advanceTo(410); // item 3 failed its first try: 100 ms
    expect(calls[3]?.items).toEqual([3]);
    expect(starts[3]).toMatchObject({ reason: "retry", attempt: 2 });
    double(calls[3]);
    await runJobs();
    expect(three.settled).toBe(true);
    expect(three.error).toBeUndefined();
    expect(calls.filter((c) => c.items.includes(1))).toHaveLength(3);
    await batcher.stop();
  });

  it("a batch retry takes only the callers with tries left, and its backoff follows the most tried", async () => {
    const { batcher, calls, retries } = observed({
      maxQueueTime: 10,
      retry: { attempts: 3 },
    });
    const one = track(batcher.process(1));
    await advanceTo(10);
    calls[0]?.resolve([new Transient("1a")]);
    await advanceTo(105);
    const two = track(batcher.process(2));
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([[1], [1, 2]]);
    calls[1]?.reject(new Transient("both"));
    await advanceTo(309); // item 1 failed its second try: 200 ms
    expect(calls).toHaveLength(2);
    await advanceTo(310);
    expect(calls[2]?.items).toEqual([1, 2]);
    expect(retries.map((r) => [r.scope, r.size, r.attempt, r.delay])).toEqual([
      ["item", 1, 2, 100],
      ["batch", 2, 3, 200],
    ]);
    const last = new Transient("again");
    calls[2]?.reject(last);
    await runJobs();
    expect(one.error).toBe(last);
    expect(two.settled).toBe(false);
    await advanceTo(509); // item 2 failed its second try: 200 ms
    expect(calls).toHaveLength(3);
    await advanceTo(510);
    expect(calls.map((c) => c.items)).toEqual([[1], [1, 2], [1, 2], [2]]);
    expect(calls[3]?.startedAt).toBe(510);
    calls[3]?.reject(new Transient("spent"));
    await runJobs();
    expect(two.error).toBeInstanceOf(Transient);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(4);
    await batcher.stop();
  });
});

describe("callers that leave during the backoff", () => {
  it("an abort rejects at once with its reason; the retry goes on without it", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const controller = new AbortController();
    const a = track(batcher.process(1, { signal: controller.signal }));
    const b = batcher.process(2);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(50);
    const reason = new Error("user left");
    controller.abort(reason);
    await runJobs();
    expect(a.error).toBe(reason);
    expect(listeners(controller.signal)).toBe(0);
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [2]]);
    double(calls[1]);
    await expect(b).resolves.toBe(4);
    expect(batcher.stats().rejected.abort).toBe(1);
    await batcher.stop();
  });

  it("a timeout passing during the backoff rejects at once, counted from process()", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1, { timeout: 80 }));
    const b = batcher.process(2);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(79);
    expect(a.settled).toBe(false);
    await advanceTo(80);
    expect(a.error).toBeInstanceOf(ItemTimeoutError);
    expect(a.error).toMatchObject({ code: "ERR_ITEM_TIMEOUT", timeout: 80 });
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [2]]);
    double(calls[1]);
    await expect(b).resolves.toBe(4);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("the deadline of a retried caller still counts from its process() call", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1, { timeout: 150 }));
    const b = batcher.process(2);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(110);
    expect(calls[1]?.items).toEqual([1, 2]); // the retry runs past the deadline
    await advanceTo(149);
    expect(a.settled).toBe(false);
    await advanceTo(150);
    expect(a.error).toBeInstanceOf(ItemTimeoutError);
    expect(a.error).toMatchObject({ code: "ERR_ITEM_TIMEOUT", timeout: 150 });
    double(calls[1]);
    await expect(b).resolves.toBe(4);
    await batcher.stop();
  });

  it("a retry whose callers all left is dropped: no call, onIdle resolves, no timer left", async () => {
    const { batcher, calls, starts, ends } = observed({
      maxQueueTime: 10,
      retry: { attempts: 3 },
    });
    const controller = new AbortController();
    const a = track(batcher.process(1, { signal: controller.signal }));
    const b = track(batcher.process(2, { signal: controller.signal }));
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(50);
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(false);
    controller.abort("gone");
    await runJobs();
    expect(a.error).toBe("gone");
    expect(b.error).toBe("gone");
    expect(idle.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(batcher.inFlight).toBe(0);
    expect(listeners(controller.signal)).toBe(0);
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
    expect(starts).toHaveLength(1);
    expect(ends).toHaveLength(1);
    expect(batcher.stats().batches.retry).toBe(0);
    await batcher.stop();
  });

  it("a retry whose callers all timed out during the backoff is dropped", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1, { timeout: 60 }));
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(60);
    expect(a.error).toBeInstanceOf(ItemTimeoutError);
    expect(vi.getTimerCount()).toBe(0);
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
    await batcher.stop();
  });

  it("an item retried alone: an abort during its backoff rejects it, and nothing is called", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const controller = new AbortController();
    const a = track(batcher.process(1, { signal: controller.signal }));
    const b = batcher.process(2);
    await runJobs();
    calls[0]?.resolve([new Transient("x"), 4]);
    await expect(b).resolves.toBe(4);
    await advanceTo(40);
    const reason = new Error("left");
    controller.abort(reason);
    await runJobs();
    expect(a.error).toBe(reason);
    expect(listeners(controller.signal)).toBe(0);
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
    await batcher.stop();
  });

  it("an item retried alone keeps its signal after it rejoined the queue", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const controller = new AbortController();
    const a = track(batcher.process(1, { signal: controller.signal }));
    const b = batcher.process(2);
    await runJobs();
    calls[0]?.resolve([new Transient("x"), 4]);
    await advanceTo(50);
    const busy = [batcher.process(3), batcher.process(4)]; // takes the only slot
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await advanceTo(100); // item 1 rejoins, waits for the slot
    expect(batcher.queueSize).toBe(1);
    expect(listeners(controller.signal)).toBe(1);
    controller.abort("left while queued");
    await runJobs();
    expect(a.error).toBe("left while queued");
    expect(batcher.queueSize).toBe(0);
    expect(listeners(controller.signal)).toBe(0);
    double(calls[1]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(await Promise.all([b, ...busy])).toEqual([4, 6, 8]);
    await batcher.stop();
  });

  it("an item retried alone times out at its first deadline, even back in the queue", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const a = track(batcher.process(1, { timeout: 150 }));
    const b = batcher.process(2);
    await runJobs();
    calls[0]?.resolve([new Transient("x"), 4]);
    await advanceTo(50);
    const busy = [batcher.process(3), batcher.process(4)];
    await advanceTo(100); // item 1 rejoins, waits for the slot
    expect(batcher.queueSize).toBe(1);
    await advanceTo(149);
    expect(a.settled).toBe(false);
    await advanceTo(150);
    expect(a.error).toBeInstanceOf(ItemTimeoutError);
    expect(a.error).toMatchObject({ code: "ERR_ITEM_TIMEOUT", timeout: 150 });
    expect(batcher.queueSize).toBe(0);
    double(calls[1]);
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(await Promise.all([b, ...busy])).toEqual([4, 6, 8]);
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });
});

describe("retries and flow control", () => {
  it("the backoff holds no slot; then the retry waits for one, ahead of newer batches", async () => {
    const { batcher, calls, maxRunning } = manualBatcher({
      maxQueueTime: 10,
      concurrency: 1,
      retry: { attempts: 3 },
    });
    const first = [batcher.process(1), batcher.process(2)];
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(20);
    const third = batcher.process(3);
    await advanceTo(30);
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2], 10],
      [[3], 30],
    ]);
    await advanceTo(100);
    const fourth = batcher.process(4); // due at 110, when the backoff ends
    await advanceTo(119);
    expect(calls).toHaveLength(2);
    await advanceTo(120);
    double(calls[1]);
    await runJobs();
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2], 10],
      [[3], 30],
      [[1, 2], 120],
    ]);
    double(calls[2]);
    await runJobs();
    expect(calls[3]?.items).toEqual([4]);
    double(calls[3]);
    expect(await Promise.all([...first, third, fourth])).toEqual([2, 4, 6, 8]);
    expect(maxRunning()).toBe(1);
    await batcher.stop();
  });

  it("a retry waits for the rate limit's batch quota", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      rateLimit: { batches: 1, interval: 1000 },
      retry: { attempts: 3 },
    });
    const a = batcher.process(1);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(1009);
    expect(calls).toHaveLength(1);
    await advanceTo(1010);
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1], 10],
      [[1], 1010],
    ]);
    double(calls[1]);
    await expect(a).resolves.toBe(2);
    await batcher.stop();
  });

  it("a retry is not cut smaller by the item quota, and newer items wait behind it", async () => {
    const { batcher, calls } = manualBatcher({
      maxQueueTime: 10,
      concurrency: 2,
      rateLimit: { items: 3, interval: 1000 },
      retry: { attempts: 3 },
    });
    const first = [batcher.process(1), batcher.process(2)];
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(500);
    const third = batcher.process(3); // one item of quota is left, but the retry goes first
    await advanceTo(1009);
    expect(calls).toHaveLength(1);
    await advanceTo(1010);
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2], 10],
      [[1, 2], 1010],
      [[3], 1010],
    ]);
    double(calls[1]);
    double(calls[2]);
    expect(await Promise.all([...first, third])).toEqual([2, 4, 6]);
    await batcher.stop();
  });
});

describe("retries and stop()", () => {
  it("a graceful stop waits for a pending retry, which still runs after its backoff", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const results = [batcher.process(1), batcher.process(2)];
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(20);
    const stopped = track(batcher.stop());
    await advanceTo(109);
    expect(stopped.settled).toBe(false);
    expect(calls).toHaveLength(1);
    await advanceTo(110);
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [[1, 2], 10],
      [[1, 2], 110],
    ]);
    expect(stopped.settled).toBe(false);
    double(calls[1]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeUndefined();
    expect(await Promise.all(results)).toEqual([2, 4]);
  });

  it("a graceful stop waits for an item retried alone", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const results = [batcher.process(1), batcher.process(2)];
    await advanceTo(10);
    calls[0]?.resolve([new Transient("x"), 4]);
    await advanceTo(20);
    const stopped = track(batcher.stop());
    await advanceTo(109);
    expect(stopped.settled).toBe(false);
    await advanceTo(110);
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [1]]);
    double(calls[1]);
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(await Promise.all(results)).toEqual([2, 4]);
  });

  it("a force stop during the backoff rejects its callers at once; no retry runs later", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1));
    const b = track(batcher.process(2));
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(50);
    await batcher.stop({ force: true });
    await runJobs();
    for (const result of [a, b]) {
      expect(result.error).toBeInstanceOf(BatcherStoppedError);
      expect(result.error).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    }
    expect(vi.getTimerCount()).toBe(0);
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
    expect(batcher.stats().rejected.stopped).toBe(2);
  });

  it("a force stop during an item's backoff rejects it at once; nothing runs later", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1));
    const b = batcher.process(2);
    await advanceTo(10);
    calls[0]?.resolve([new Transient("x"), 4]);
    await expect(b).resolves.toBe(4);
    await advanceTo(50);
    await batcher.stop({ force: true });
    await runJobs();
    expect(a.error).toBeInstanceOf(BatcherStoppedError);
    expect(a.error).toMatchObject({ code: "ERR_BATCHER_STOPPED" });
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a graceful stop whose timeout passes during the backoff is forced: no retry runs", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1));
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(20);
    const stopped = track(batcher.stop({ timeout: 50 }));
    await advanceTo(69);
    expect(a.settled).toBe(false);
    await advanceTo(70);
    expect(a.error).toBeInstanceOf(BatcherStoppedError);
    expect(stopped.settled).toBe(true);
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
  });
});

describe("retries, flush() and onIdle()", () => {
  it("flush() resolves only once an item retried alone has settled", async () => {
    const { batcher, calls, reasons } = manualBatcher({
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const results = [1, 2, 3].map((i) => batcher.process(i));
    const flushed = track(batcher.flush());
    await runJobs();
    calls[0]?.resolve([2, new Transient("x"), 6]);
    await advanceTo(99);
    expect(flushed.settled).toBe(false);
    await advanceTo(100);
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3], [2]]);
    expect(flushed.settled).toBe(false);
    double(calls[1]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(reasons).toEqual(["flush", "retry"]);
    expect(await Promise.all(results)).toEqual([2, 4, 6]);
    await batcher.stop();
  });

  it("flush() resolves only once a retried batch has settled", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000, retry: { attempts: 3 } });
    const results = [1, 2].map((i) => batcher.process(i));
    const flushed = track(batcher.flush());
    await runJobs();
    calls[0]?.reject(new Transient("x"));
    await advanceTo(100);
    expect(calls).toHaveLength(2);
    expect(flushed.settled).toBe(false);
    double(calls[1]);
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(await Promise.all(results)).toEqual([2, 4]);
    await batcher.stop();
  });

  it("onIdle() waits for retries; the idle event fires once, at the end", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    let idleEvents = 0;
    batcher.on("idle", () => idleEvents++);
    const a = batcher.process(1);
    await advanceTo(10);
    calls[0]?.reject(new Transient("x"));
    await advanceTo(20);
    const idle = track(batcher.onIdle());
    await advanceTo(110);
    expect(calls).toHaveLength(2);
    expect(idle.settled).toBe(false);
    expect(idleEvents).toBe(0);
    double(calls[1]);
    await runJobs();
    expect(idle.settled).toBe(true);
    expect(idleEvents).toBe(1);
    await expect(a).resolves.toBe(2);
    await batcher.stop();
  });
});

describe("events", () => {
  it("retry, batchStart and batchEnd of a batch retried until its tries are spent", async () => {
    const { batcher, calls, starts, ends, retries } = observed({
      name: "loader",
      maxQueueTime: 10,
      retry: { attempts: 3 },
    });
    const a = track(batcher.process(1));
    const b = track(batcher.process(2));
    await advanceTo(10);
    const errors = [new Transient("1"), new Transient("2"), new Transient("3")];
    calls[0]?.reject(errors[0]);
    await advanceTo(110);
    await advanceTo(115);
    calls[1]?.reject(errors[1]);
    await advanceTo(315);
    await advanceTo(320);
    calls[2]?.reject(errors[2]);
    await runJobs();
    expect(a.error).toBe(errors[2]);
    expect(b.error).toBe(errors[2]);

    expect(retries).toEqual([
      {
        batcher: "loader",
        batchId: 1,
        key: undefined,
        scope: "batch",
        size: 2,
        attempt: 2,
        delay: 100,
        error: errors[0],
      },
      {
        batcher: "loader",
        batchId: 2,
        key: undefined,
        scope: "batch",
        size: 2,
        attempt: 3,
        delay: 200,
        error: errors[1],
      },
    ]);
    const start = {
      batcher: "loader",
      key: undefined,
      size: 2,
      callers: 2,
      weight: 0,
      contexts: undefined,
    };
    expect(starts).toEqual([
      { ...start, batchId: 1, parentId: undefined, reason: "time", queueWait: 10, attempt: 1 },
      { ...start, batchId: 2, parentId: 1, reason: "retry", queueWait: 0, attempt: 2 },
      { ...start, batchId: 3, parentId: 2, reason: "retry", queueWait: 0, attempt: 3 },
    ]);
    const end = { batcher: "loader", key: undefined, size: 2, resolved: 0, failed: true };
    expect(ends).toEqual([
      { ...end, batchId: 1, duration: 0, rejected: 0, retried: 2, error: errors[0] },
      { ...end, batchId: 2, duration: 5, rejected: 0, retried: 2, error: errors[1] },
      { ...end, batchId: 3, duration: 5, rejected: 2, retried: 0, error: errors[2] },
    ]);
    await batcher.stop();
  });

  it("an item retried alone: a retry event of scope item, a batchEnd that hands it on", async () => {
    const { batcher, calls, starts, ends, retries } = observed({
      name: "rows",
      maxBatchSize: 3,
      maxQueueTime: 1000,
      batchKey: () => "k",
      retry: { attempts: 3, delay: 40 },
    });
    const results = [1, 2, 3].map((i) => batcher.process(i));
    await runJobs();
    const error = new Transient("row");
    calls[0]?.resolve([2, error, 6]);
    await runJobs();
    expect(retries).toEqual([
      {
        batcher: "rows",
        batchId: 1,
        key: "k",
        scope: "item",
        size: 1,
        attempt: 2,
        delay: 40,
        error,
      },
    ]);
    expect(ends).toEqual([
      {
        batcher: "rows",
        batchId: 1,
        key: "k",
        size: 3,
        duration: 0,
        resolved: 2,
        rejected: 0,
        retried: 1,
        error: undefined,
        failed: false,
      },
    ]);
    await advanceTo(39);
    expect(starts).toHaveLength(1);
    await advanceTo(40);
    expect(starts).toHaveLength(2);
    expect(starts[1]).toMatchObject({
      batcher: "rows",
      key: "k",
      size: 1,
      callers: 1,
      weight: 0,
      reason: "retry",
      attempt: 2,
      contexts: undefined,
    });
    expect(starts[1]?.batchId).toBeGreaterThan(1);
    double(calls[1]);
    expect(await Promise.all(results)).toEqual([2, 4, 6]);
    await batcher.stop();
  });

  it("the item scope's retry event counts every item retried, with the first one's error", async () => {
    const { batcher, calls, retries } = observed({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      concurrency: 4,
      retry: { attempts: 2 },
    });
    const results = [1, 2, 3].map((i) => batcher.process(i));
    await runJobs();
    const first = new Transient("first");
    calls[0]?.resolve([2, first, new Transient("second")]);
    await runJobs();
    expect(retries.map((r) => [r.scope, r.size, r.attempt, r.error])).toEqual([
      ["item", 2, 2, first],
    ]);
    await advanceTo(100);
    for (const call of calls.slice(1)) double(call);
    expect(await Promise.all(results)).toEqual([2, 4, 6]);
    await batcher.stop();
  });
});

describe("stats", () => {
  it("counts retries, retry batches and the final rejections", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1));
    const b = track(batcher.process(2));
    await advanceTo(10);
    calls[0]?.reject(new Transient("1"));
    await advanceTo(110);
    calls[1]?.reject(new Transient("2"));
    await advanceTo(310);
    calls[2]?.reject(new Transient("3"));
    await runJobs();
    expect(a.error).toBeInstanceOf(Transient);
    expect(b.error).toBeInstanceOf(Transient);
    const stats = batcher.stats();
    expect(stats.retries).toBe(4);
    expect(stats.batches).toEqual({
      size: 0,
      weight: 0,
      time: 1,
      flush: 0,
      stop: 0,
      retry: 2,
      split: 0,
      total: 3,
    });
    expect(stats.rejected.error).toBe(2);
    expect(stats.rejected.total).toBe(2);
    expect(stats.submitted).toBe(2);
    expect(stats.resolved).toBe(0);
    expect(stats.inFlight).toBe(0);
    expect(stats.batchSize).toMatchObject({ count: 3, sum: 6, min: 2, max: 2 });
    await batcher.stop();
  });

  it("counts an item retry: one retry, one retry batch, everything resolved", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      retry: { attempts: 3 },
    });
    const results = [1, 2, 3].map((i) => batcher.process(i));
    await runJobs();
    calls[0]?.resolve([2, new Transient("x"), 6]);
    await advanceTo(100);
    double(calls[1]);
    expect(await Promise.all(results)).toEqual([2, 4, 6]);
    const stats = batcher.stats();
    expect(stats.retries).toBe(1);
    expect(stats.batches.retry).toBe(1);
    expect(stats.batches.size).toBe(1);
    expect(stats.batches.total).toBe(2);
    expect(stats.resolved).toBe(3);
    expect(stats.rejected.total).toBe(0);
    expect(stats.submitted).toBe(stats.resolved + stats.rejected.total);
    await batcher.stop();
  });
});

describe("a result that does not fit (BatchResultError)", () => {
  it("is not retried: every caller rejects at once with BatchResultError", async () => {
    const retryIf = vi.fn(() => true);
    const { batcher, calls, retries } = observed({
      maxQueueTime: 10,
      retry: { attempts: 3, retryIf },
    });
    const a = track(batcher.process(1));
    const b = track(batcher.process(2));
    await advanceTo(10);
    calls[0]?.resolve([2]);
    await runJobs();
    for (const result of [a, b]) {
      expect(result.error).toBeInstanceOf(BatchResultError);
      expect(result.error).toMatchObject({ code: "ERR_BATCH_RESULT", expected: 2, received: 1 });
    }
    expect(vi.getTimerCount()).toBe(0);
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
    expect(retries).toEqual([]);
    const stats = batcher.stats();
    expect(stats.retries).toBe(0);
    expect(stats.rejected.error).toBe(2);
    await batcher.stop();
  });

  it("a result that is not an array is not retried either", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 10, retry: { attempts: 3 } });
    const a = track(batcher.process(1));
    await advanceTo(10);
    calls[0]?.resolve("oops" as never);
    await runJobs();
    expect(a.error).toBeInstanceOf(BatchResultError);
    expect(a.error).toMatchObject({ code: "ERR_BATCH_RESULT" });
    await advanceTo(1000);
    expect(calls).toHaveLength(1);
    await batcher.stop();
  });
});
