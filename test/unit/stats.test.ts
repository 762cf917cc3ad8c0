/**
 * stats() (issue 4): exact counters after exact workloads (submitted, resolved, rejected by every
 * reason, batches by reason, retries, splits), gauges at chosen moments (queued, waiting, in
 * flight, running batches), histograms (batch size, queue wait, batch duration) on fake timers,
 * the invariant `submitted === resolved + rejected.total` once everything has settled, frozen
 * snapshots, and a property test of the invariant over random workloads.
 */
import {
  AsyncBatcher,
  type BatcherOptions,
  type BatcherStats,
  BatcherStoppedError,
  createBatcher,
  type DropReason,
  type HistogramSnapshot,
  InvalidInputError,
  ItemTimeoutError,
  ItemTooLargeError,
  MissingResultError,
  type ProcessOptions,
  QueueFullError,
  type QueueFullPolicy,
  type RejectReason,
} from "async-batcher";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { manualBatcher, runJobs, track } from "../helpers/manual.js";
import {
  BatchFailure,
  count,
  ItemFailure,
  runTimeline,
  type Step,
  type StopMode,
} from "../helpers/property.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
const INF = Number.POSITIVE_INFINITY;

const EMPTY: HistogramSnapshot = {
  count: 0,
  sum: 0,
  min: 0,
  max: 0,
  mean: 0,
  p50: 0,
  p90: 0,
  p99: 0,
};

/** What stats() says of a batcher that has done nothing. */
function fresh(name: string): BatcherStats {
  return {
    name,
    submitted: 0,
    resolved: 0,
    rejected: {
      error: 0,
      missing: 0,
      abort: 0,
      timeout: 0,
      queueFull: 0,
      stopped: 0,
      tooLarge: 0,
      invalid: 0,
      total: 0,
    },
    batches: { size: 0, weight: 0, time: 0, flush: 0, stop: 0, retry: 0, split: 0, total: 0 },
    retries: 0,
    splits: 0,
    queued: 0,
    waiting: 0,
    inFlight: 0,
    runningBatches: 0,
    batchSize: EMPTY,
    queueWait: EMPTY,
    batchDuration: EMPTY,
  };
}

/** Rejected counters: the ones given, every other 0, and their total. */
function rejected(counts: Partial<Record<RejectReason, number>>): BatcherStats["rejected"] {
  const out = { ...fresh("").rejected, ...counts };
  out.total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
  return out;
}

/** Batch counters by reason: the ones given, every other 0, and their total. */
function batches(counts: Partial<Record<keyof BatcherStats["batches"], number>>) {
  const out = { ...fresh("").batches, ...counts };
  out.total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
  return out;
}

const gauges = (stats: BatcherStats) => ({
  queued: stats.queued,
  waiting: stats.waiting,
  inFlight: stats.inFlight,
  runningBatches: stats.runningBatches,
});

const IDLE = { queued: 0, waiting: 0, inFlight: 0, runningBatches: 0 };

/** `submitted === resolved + rejected.total`, and the total is the sum of the reasons. */
function expectBalanced(stats: BatcherStats) {
  const { total, ...reasons } = stats.rejected;
  expect(total).toBe(Object.values(reasons).reduce((a, b) => a + b, 0));
  expect(stats.submitted).toBe(stats.resolved + total);
}

/** A batcher named "st" whose batch function takes `ms` (0: answers at once), items times 10. */
function timed(
  ms: number,
  options: BatcherOptions<number, number> = {},
  answer: (items: number[]) => (number | Error)[] = (items) => items.map((x) => x * 10),
) {
  const calls: number[][] = [];
  const batcher = createBatcher<number, number>(
    ms === 0
      ? (items) => {
          calls.push([...items]);
          return answer(items) as number[];
        }
      : async (items) => {
          calls.push([...items]);
          await sleep(ms);
          return answer(items) as number[];
        },
    { name: "st", ...options },
  );
  return { batcher, calls };
}

/** The reason a promise rejected with (it must reject). */
async function reasonOf(promise: Promise<unknown>): Promise<unknown> {
  const [result] = await Promise.allSettled([promise]);
  expect(result?.status).toBe("rejected");
  return (result as PromiseRejectedResult).reason;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("a new batcher", () => {
  it("reports zeros, under the name option", () => {
    const { batcher } = timed(0);
    expect(batcher.stats()).toStrictEqual(fresh("st"));
  });

  it("is named AsyncBatcher by createBatcher, and after its class when subclassed", () => {
    expect(createBatcher<number, number>((items) => items).stats().name).toBe("AsyncBatcher");
    class Users extends AsyncBatcher<number, number> {
      processBatch(items: number[]) {
        return items;
      }
    }
    expect(new Users().stats().name).toBe("Users");
    expect(new Users({ name: "users-db" }).stats().name).toBe("users-db");
  });
});

describe("counters", () => {
  it("counts submitted, resolved and rejected by error (per-item Errors and a throwing batch)", async () => {
    const { batcher } = timed(0, { maxBatchSize: 3, maxQueueTime: 10 }, (items) => {
      if (items.includes(5)) throw new BatchFailure("batch");
      return items.map((x) => (x === 2 ? new ItemFailure(x) : x * 10));
    });
    const settled = Promise.allSettled([1, 2, 3, 4, 5].map((x) => batcher.process(x)));
    await advance(10);
    expect((await settled).map((r) => r.status)).toEqual([
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "rejected",
    ]);
    const stats = batcher.stats();
    expect(stats.submitted).toBe(5);
    expect(stats.resolved).toBe(2);
    expect(stats.rejected).toStrictEqual(rejected({ error: 3 }));
    expect(stats.batches).toStrictEqual(batches({ size: 1, time: 1 }));
    expectBalanced(stats);
  });

  it("counts callers whose key is missing from a Map result as missing", async () => {
    const { batcher } = timed(0, { maxQueueTime: 0, keyOf: (x) => `k${x}` });
    const byKey = createBatcher<number, number>(
      (items) => new Map(items.filter((x) => x !== 2).map((x) => [`k${x}`, x * 10])),
      { maxQueueTime: 0, keyOf: (x) => `k${x}` },
    );
    const settled = await Promise.allSettled([1, 2, 3].map((x) => byKey.process(x)));
    const missing = (settled[1] as PromiseRejectedResult).reason;
    expect(missing).toBeInstanceOf(MissingResultError);
    expect((missing as MissingResultError).code).toBe("ERR_MISSING_RESULT");
    expect(byKey.stats().resolved).toBe(2);
    expect(byKey.stats().rejected).toStrictEqual(rejected({ missing: 1 }));
    // An array result with keyOf: by position, nothing missing.
    expect(await batcher.process(4)).toBe(40);
    expect(batcher.stats().rejected.missing).toBe(0);
  });

  it("counts a missing key resolved with undefined as resolved (onMissingResult: undefined)", async () => {
    const batcher = createBatcher<number, number | undefined>(() => new Map(), {
      maxQueueTime: 0,
      keyOf: (x) => x,
      onMissingResult: "undefined",
    });
    expect(await Promise.all([batcher.process(1), batcher.process(2)])).toEqual([
      undefined,
      undefined,
    ]);
    expect(batcher.stats().resolved).toBe(2);
    expect(batcher.stats().rejected.total).toBe(0);
  });

  it("counts aborts: already aborted, queued, waiting for room, and in a running batch", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 1,
      maxQueueSize: 1,
      onQueueFull: "wait",
      maxQueueTime: INF,
    });
    const controller = new AbortController();
    const signal = controller.signal;
    await reasonOf(batcher.process(0, { signal: AbortSignal.abort() }));
    const states = [1, 2, 3].map((x) => track(batcher.process(x, { signal })));
    const survivor = batcher.process(4);
    await runJobs();
    expect(gauges(batcher.stats())).toEqual({
      queued: 1,
      waiting: 2,
      inFlight: 1,
      runningBatches: 1,
    });
    controller.abort();
    await runJobs();
    expect(states.every((s) => s.settled)).toBe(true);
    calls[0]?.resolve([10]);
    await runJobs();
    calls[1]?.resolve([40]);
    expect(await survivor).toBe(40);
    const stats = batcher.stats();
    expect(stats.submitted).toBe(5);
    expect(stats.resolved).toBe(1);
    expect(stats.rejected).toStrictEqual(rejected({ abort: 4 }));
    expect(gauges(stats)).toEqual(IDLE);
  });

  it("counts timeouts, queued and in a running batch", async () => {
    const { batcher, calls } = manualBatcher({ maxBatchSize: 2, maxQueueTime: INF });
    const states = [1, 2, 3].map((x) => track(batcher.process(x, { timeout: 50 })));
    const kept = batcher.process(4);
    await advance(50);
    expect(states.map((s) => s.error instanceof ItemTimeoutError)).toEqual([true, true, true]);
    calls[0]?.resolve([10, 20]);
    const flushed = batcher.flush(); // 4 is alone now: not a full batch
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1, 2], [4]]);
    calls[1]?.resolve([40]);
    await flushed;
    expect(await kept).toBe(40);
    const stats = batcher.stats();
    expect([stats.submitted, stats.resolved]).toEqual([4, 1]);
    expect(stats.rejected).toStrictEqual(rejected({ timeout: 3 }));
  });

  it("counts queueFull: refused at admission and dropped for a newer caller", async () => {
    const refusing = timed(0, { maxQueueSize: 2, maxQueueTime: 10 }).batcher;
    const refused = Promise.allSettled([1, 2, 3, 4].map((x) => refusing.process(x)));
    await advance(10);
    expect((await refused).map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
    ]);
    expect(refusing.stats().submitted).toBe(4);
    expect(refusing.stats().rejected).toStrictEqual(rejected({ queueFull: 2 }));

    const dropping = timed(0, {
      maxQueueSize: 2,
      onQueueFull: "dropOldest",
      maxQueueTime: 10,
    }).batcher;
    const dropped = Promise.allSettled([1, 2, 3].map((x) => dropping.process(x)));
    await advance(10);
    expect((await dropped).map((r) => r.status)).toEqual(["rejected", "fulfilled", "fulfilled"]);
    expect(((await dropped)[0] as PromiseRejectedResult).reason).toBeInstanceOf(QueueFullError);
    expect(dropping.stats().resolved).toBe(2);
    expect(dropping.stats().rejected).toStrictEqual(rejected({ queueFull: 1 }));
  });

  it("counts stopped: calls after stop(), and every caller of a force stop", async () => {
    const graceful = timed(0).batcher;
    await graceful.stop();
    await reasonOf(graceful.process(1));
    await reasonOf(graceful.process(2, { priority: 1 }));
    expect(graceful.stats().submitted).toBe(2);
    expect(graceful.stats().rejected).toStrictEqual(rejected({ stopped: 2 }));

    const { batcher: forced } = manualBatcher({
      maxBatchSize: 2,
      maxQueueSize: 2,
      onQueueFull: "wait",
      maxQueueTime: INF,
    });
    // [1,2] runs, 3 and 4 are queued, 5 waits for room.
    const settled = Promise.allSettled([1, 2, 3, 4, 5].map((x) => forced.process(x)));
    await runJobs();
    expect(gauges(forced.stats())).toEqual({
      queued: 2,
      waiting: 1,
      inFlight: 2,
      runningBatches: 1,
    });
    await forced.stop({ force: true });
    const reasons = (await settled).map((r) => (r as PromiseRejectedResult).reason);
    expect(reasons.every((r) => r instanceof BatcherStoppedError)).toBe(true);
    await reasonOf(forced.process(6));
    const stats = forced.stats();
    expect(stats.submitted).toBe(6);
    expect(stats.rejected).toStrictEqual(rejected({ stopped: 6 }));
    expect(gauges(stats)).toEqual(IDLE);
    expectBalanced(stats);
  });

  it("counts tooLarge: at admission and after setOptions lowers maxBatchWeight", async () => {
    const { batcher } = timed(0, { weigh: (x) => x, maxBatchWeight: 100, maxQueueTime: INF });
    const error = await reasonOf(batcher.process(101));
    expect(error).toBeInstanceOf(ItemTooLargeError);
    const states = [6, 2, 7].map((x) => track(batcher.process(x)));
    batcher.setOptions({ maxBatchWeight: 5 });
    await batcher.flush();
    await runJobs();
    expect(states.map((s) => s.error instanceof ItemTooLargeError)).toEqual([true, false, true]);
    const stats = batcher.stats();
    expect([stats.submitted, stats.resolved]).toEqual([4, 1]);
    expect(stats.rejected).toStrictEqual(rejected({ tooLarge: 3 }));
  });

  describe("invalid", () => {
    type Case = [label: string, run: () => Promise<unknown>, check: (error: unknown) => void];
    const isType = (error: unknown) => expect(error).toBeInstanceOf(TypeError);
    const isRange = (error: unknown) => expect(error).toBeInstanceOf(RangeError);
    const isInput = (reason: string) => (error: unknown) => {
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as InvalidInputError).code).toBe("ERR_INVALID_INPUT");
      expect((error as InvalidInputError).reason).toBe(reason);
    };
    const thrown = new Error("user function threw");
    const isThrown = (error: unknown) => expect(error).toBe(thrown);

    it("counts bad process() options", async () => {
      const { batcher } = timed(0, { maxQueueTime: 0 });
      const bad = (options: unknown) => () => batcher.process(1, options as ProcessOptions);
      const cases: Case[] = [
        ["null", bad(null), isType],
        ["a number", bad(5), isType],
        ["a string", bad("x"), isType],
        ["a signal that is not one", bad({ signal: {} }), isType],
        ["a negative timeout", bad({ timeout: -1 }), isRange],
        ["a NaN timeout", bad({ timeout: Number.NaN }), isRange],
        ["a string timeout", bad({ timeout: "5" }), isType],
        ["an infinite priority", bad({ priority: INF }), isRange],
        ["a string priority", bad({ priority: "1" }), isType],
      ];
      for (const [, run, check] of cases) check(await reasonOf(run()));
      expect(await batcher.process(2, {})).toBe(20);
      const stats = batcher.stats();
      expect(stats.submitted, cases.map(([l]) => l).join()).toBe(cases.length + 1);
      expect(stats.resolved).toBe(1);
      expect(stats.rejected).toStrictEqual(rejected({ invalid: cases.length }));
      // Bad input is not a drop: nothing was batched or counted as queued.
      expect(stats.batches.total).toBe(1);
    });

    it("counts weigh throwing or returning a weight that is not a finite non-negative number", async () => {
      let weight: unknown = 0;
      const { batcher } = timed(0, {
        maxQueueTime: 0,
        weigh: () => {
          if (weight === "throw") throw thrown;
          return weight as number;
        },
      });
      const cases: [unknown, (error: unknown) => void][] = [
        ["throw", isThrown],
        [-1, isInput("weight")],
        [Number.NaN, isInput("weight")],
        [INF, isInput("weight")],
        ["3", isInput("weight")],
        [undefined, isInput("weight")],
      ];
      for (const [value, check] of cases) {
        weight = value;
        check(await reasonOf(batcher.process(1)));
      }
      weight = 0;
      expect(await batcher.process(1)).toBe(10);
      expect(batcher.stats().rejected).toStrictEqual(rejected({ invalid: cases.length }));
      expect(batcher.stats().submitted).toBe(cases.length + 1);
    });

    it("counts batchKey throwing or returning a key that is not a string or finite number", async () => {
      let key: unknown = "a";
      const { batcher } = timed(0, {
        maxQueueTime: 0,
        batchKey: () => {
          if (key === "throw") throw thrown;
          return key as string;
        },
      });
      const cases: [unknown, (error: unknown) => void][] = [
        ["throw", isThrown],
        [{}, isInput("key")],
        [Number.NaN, isInput("key")],
        [INF, isInput("key")],
        [null, isInput("key")],
        [undefined, isInput("key")],
        [true, isInput("key")],
      ];
      // Through the keyed fast path (no options) and the general one (with options).
      for (const options of [undefined, { priority: 1 }]) {
        for (const [value, check] of cases) {
          key = value;
          check(await reasonOf(batcher.process(1, options)));
        }
      }
      key = "a";
      expect(await batcher.process(1)).toBe(10);
      expect(batcher.stats().rejected).toStrictEqual(rejected({ invalid: 2 * cases.length }));
      expect(batcher.stats().submitted).toBe(2 * cases.length + 1);
    });

    it("counts keyOf throwing", async () => {
      const { batcher } = timed(0, {
        maxQueueTime: 0,
        keyOf: (x) => {
          if (x < 0) throw thrown;
          return x;
        },
      });
      isThrown(await reasonOf(batcher.process(-1)));
      isThrown(await reasonOf(batcher.process(-2, { priority: 2 })));
      expect(await batcher.process(3)).toBe(30);
      expect(batcher.stats().rejected).toStrictEqual(rejected({ invalid: 2 }));
      expect([batcher.stats().submitted, batcher.stats().resolved]).toEqual([3, 1]);
    });
  });

  it("counts batches by reason: size, weight, time, flush and stop", async () => {
    const { batcher } = timed(0, {
      maxBatchSize: 3,
      weigh: (x) => x,
      maxBatchWeight: 10,
      maxQueueTime: 20,
    });
    const results: Promise<number>[] = [];
    const submit = (...xs: number[]) => {
      for (const x of xs) results.push(batcher.process(x));
    };
    submit(1, 1, 1); // size
    await runJobs();
    submit(4, 6); // weight
    await runJobs();
    submit(2);
    await advance(20); // time
    submit(3);
    await batcher.flush(); // flush
    submit(5);
    await batcher.stop(); // stop
    expect(await Promise.all(results)).toEqual([10, 10, 10, 40, 60, 20, 30, 50]);
    expect(batcher.stats().batches).toStrictEqual(
      batches({ size: 1, weight: 1, time: 1, flush: 1, stop: 1 }),
    );
  });

  it("counts retries (items scheduled again) and retry batches when a batch throws", async () => {
    let call = 0;
    const { batcher } = timed(
      0,
      { maxQueueTime: 0, retry: { attempts: 3, delay: 10 } },
      (items) => {
        call++;
        if (call <= 2) throw new BatchFailure(`call ${call}`); // batch of 3 retried twice
        return items.map((x) => (x === 2 && call === 3 ? new ItemFailure(x) : x * 10));
      },
    );
    const results = Promise.allSettled([1, 2, 3].map((x) => batcher.process(x)));
    await advance(10 + 20);
    // Call 3 (third try) gives item 2 an Error: its tries are spent, it rejects.
    expect((await results).map((r) => (r.status === "fulfilled" ? r.value : r.reason))).toEqual([
      10,
      new ItemFailure(2),
      30,
    ]);
    const stats = batcher.stats();
    expect(stats.retries).toBe(6);
    expect(stats.batches).toStrictEqual(batches({ time: 1, retry: 2 }));
    expect(stats.resolved).toBe(2);
    expect(stats.rejected).toStrictEqual(rejected({ error: 1 }));
  });

  it("counts retries and the retry batch of items whose own result was an Error", async () => {
    let call = 0;
    const { batcher } = timed(0, { maxQueueTime: 0, retry: { attempts: 2, delay: 10 } }, (xs) => {
      call++;
      return xs.map((x) => (x % 2 === 0 && call === 1 ? new ItemFailure(x) : x * 10));
    });
    const results = Promise.all([1, 2, 3, 4].map((x) => batcher.process(x)));
    await advance(10);
    expect(await results).toEqual([10, 20, 30, 40]);
    const stats = batcher.stats();
    expect(stats.retries).toBe(2);
    expect(stats.resolved).toBe(4);
    expect(stats.batches.retry).toBeGreaterThanOrEqual(1);
    expectBalanced(stats);
  });

  // Items 2 and 4 fail in one batch, wait one backoff together (one retry event, size 2) and
  // rejoin their queue together, which is then due: they belong in one retry batch. The engine
  // pushes them back one at a time, and the first push cuts a batch of that item alone.
  it("hands items retried together to one retry batch", async () => {
    let call = 0;
    const { batcher, calls } = timed(
      0,
      { maxQueueTime: 0, retry: { attempts: 2, delay: 10 } },
      (xs) => {
        call++;
        return xs.map((x) => (x % 2 === 0 && call === 1 ? new ItemFailure(x) : x * 10));
      },
    );
    const results = Promise.all([1, 2, 3, 4].map((x) => batcher.process(x)));
    await advance(10);
    expect(await results).toEqual([10, 20, 30, 40]);
    expect(calls).toEqual([
      [1, 2, 3, 4],
      [2, 4],
    ]);
    expect(batcher.stats().batches).toStrictEqual(batches({ time: 1, retry: 1 }));
  });

  it("counts splits (failed batches split in two) and split batches", async () => {
    const batcher = createBatcher<number, number>(
      async (items) => {
        await sleep(1);
        if (items.includes(3)) throw new BatchFailure(`${items}`);
        return items.map((x) => x * 10);
      },
      { maxQueueTime: 0, splitOnError: true },
    );
    const settled = Promise.allSettled([1, 2, 3, 4].map((x) => batcher.process(x)));
    await advance(10);
    expect((await settled).map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    // [1,2,3,4] fails: [1,2] ok, [3,4] fails: [3] fails alone, [4] ok.
    const stats = batcher.stats();
    expect(stats.splits).toBe(2);
    expect(stats.batches).toStrictEqual(batches({ time: 1, split: 4 }));
    expect(stats.retries).toBe(0);
    expect(stats.resolved).toBe(3);
    expect(stats.rejected).toStrictEqual(rejected({ error: 1 }));
    expect(stats.batchSize).toMatchObject({ count: 5, sum: 4 + 2 + 2 + 1 + 1, min: 1, max: 4 });
  });
});

describe("gauges", () => {
  it("follow items queued, waiting for room, in flight and the batches running", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 2,
      maxQueueSize: 2,
      onQueueFull: "wait",
      maxQueueTime: INF,
      concurrency: 2,
    });
    const agreeWithGetters = () => {
      const stats = batcher.stats();
      expect([stats.queued, stats.waiting, stats.inFlight]).toEqual([
        batcher.queueSize,
        batcher.waiting,
        batcher.inFlight,
      ]);
    };
    const results = [1, 2, 3, 4, 5, 6, 7].map((x) => batcher.process(x));
    await runJobs();
    agreeWithGetters();
    // [1,2] and [3,4] run, 5 and 6 are queued, 7 waits for room.
    expect(gauges(batcher.stats())).toEqual({
      queued: 2,
      waiting: 1,
      inFlight: 4,
      runningBatches: 2,
    });
    calls[0]?.resolve([10, 20]);
    await runJobs();
    // [5,6] runs, 7 is admitted.
    expect(gauges(batcher.stats())).toEqual({
      queued: 1,
      waiting: 0,
      inFlight: 4,
      runningBatches: 2,
    });
    calls[1]?.resolve([30, 40]);
    calls[2]?.resolve([50, 60]);
    await runJobs();
    // 7 alone is not a full batch: it stays queued.
    expect(gauges(batcher.stats())).toEqual({
      queued: 1,
      waiting: 0,
      inFlight: 0,
      runningBatches: 0,
    });
    agreeWithGetters();
    const flushed = batcher.flush();
    await runJobs();
    expect(gauges(batcher.stats())).toEqual({
      queued: 0,
      waiting: 0,
      inFlight: 1,
      runningBatches: 1,
    });
    agreeWithGetters();
    calls[3]?.resolve([70]);
    await flushed;
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(gauges(batcher.stats())).toEqual(IDLE);
  });

  it("count items waiting for a retry as in flight, without a running batch", async () => {
    let call = 0;
    const { batcher } = timed(
      5,
      { maxQueueTime: 0, retry: { attempts: 2, delay: 100 } },
      (items) => {
        if (++call === 1) throw new BatchFailure("once");
        return items;
      },
    );
    const results = Promise.all([1, 2].map((x) => batcher.process(x)));
    await advance(5);
    expect(gauges(batcher.stats())).toEqual({
      queued: 0,
      waiting: 0,
      inFlight: 2,
      runningBatches: 0,
    });
    await advance(100);
    expect(gauges(batcher.stats())).toEqual({
      queued: 0,
      waiting: 0,
      inFlight: 2,
      runningBatches: 1,
    });
    await advance(5);
    expect(await results).toEqual([1, 2]);
    expect(gauges(batcher.stats())).toEqual(IDLE);
  });
});

describe("histograms", () => {
  it("batchSize: exact count, sum, min, max, mean, and exact integer percentiles", async () => {
    const { batcher } = timed(0, { maxQueueTime: INF });
    const results: Promise<number>[] = [];
    for (const size of [3, 1, 10, 7, 2, 9, 4, 8, 6, 5]) {
      for (let i = 0; i < size; i++) results.push(batcher.process(i));
      await batcher.flush();
    }
    await Promise.all(results);
    expect(batcher.stats().batchSize).toStrictEqual({
      count: 10,
      sum: 55,
      min: 1,
      max: 10,
      mean: 5.5,
      p50: 5,
      p90: 9,
      p99: 10,
    });
  });

  it("queueWait: the exact wait of each batch's oldest item, percentiles within 1/32", async () => {
    const { batcher } = timed(0, { maxQueueTime: INF });
    const waits = [40, 10, 30, 20, 50, 60, 70, 80, 90, 100];
    for (const wait of waits) {
      const first = batcher.process(1);
      await advance(wait / 2);
      const second = batcher.process(2); // younger: the oldest item's wait counts
      await advance(wait / 2);
      await batcher.flush();
      await Promise.all([first, second]);
    }
    const histogram = batcher.stats().queueWait;
    expect([histogram.count, histogram.sum, histogram.min, histogram.max, histogram.mean]).toEqual([
      10, 550, 10, 100, 55,
    ]);
    for (const [field, exact] of [
      ["p50", 50],
      ["p90", 90],
      ["p99", 100],
    ] as const) {
      expect(Math.abs(histogram[field] - exact) / exact, field).toBeLessThanOrEqual(1 / 32);
    }
  });

  it("batchDuration: from the call of each batch function to the settling, failures included", async () => {
    const batcher = createBatcher<number, number>(
      async (items) => {
        await sleep(items[0] as number);
        if (items[0] === 15) throw new BatchFailure("slow and broken");
        return items;
      },
      { maxQueueTime: 0 },
    );
    for (const ms of [5, 15, 25, 35]) {
      const settled = Promise.allSettled([batcher.process(ms)]);
      await advance(ms);
      await settled;
    }
    const histogram = batcher.stats().batchDuration;
    expect([histogram.count, histogram.sum, histogram.min, histogram.max, histogram.mean]).toEqual([
      4, 80, 5, 35, 20,
    ]);
    expect(Math.abs(histogram.p50 - 15) / 15).toBeLessThanOrEqual(1 / 32);
    expect(histogram.p90).toBe(35);
    expect(histogram.p99).toBe(35);
  });

  it("records no batch whose callers all left before it started", async () => {
    const { batcher, calls } = timed(0, { maxBatchSize: 2 });
    const controller = new AbortController();
    const states = [1, 2].map((x) => track(batcher.process(x, { signal: controller.signal })));
    controller.abort();
    await runJobs();
    expect(states.every((s) => s.settled)).toBe(true);
    expect(calls).toEqual([]);
    const stats = batcher.stats();
    expect(stats.batches.total).toBe(0);
    expect([stats.batchSize, stats.queueWait, stats.batchDuration]).toEqual([EMPTY, EMPTY, EMPTY]);
    expect(stats.rejected).toStrictEqual(rejected({ abort: 2 }));
    expect(gauges(stats)).toEqual(IDLE);
  });
});

describe("the invariant submitted === resolved + rejected.total", () => {
  it("holds once a mixed workload has settled", async () => {
    const { batcher } = timed(
      3,
      {
        maxBatchSize: 3,
        maxQueueTime: 5,
        maxQueueSize: 4,
        weigh: (x) => x,
        maxBatchWeight: 20,
        retry: { attempts: 2, delay: 5 },
      },
      (items) => items.map((x) => (x % 4 === 0 ? new ItemFailure(x) : x)),
    );
    const controller = new AbortController();
    const all: Promise<unknown>[] = [];
    for (let x = 1; x <= 12; x++) {
      all.push(batcher.process(x, x === 5 ? { signal: controller.signal } : { timeout: 100 }));
    }
    all.push(batcher.process(30), batcher.process(1, { timeout: -1 }));
    controller.abort();
    const settled = Promise.allSettled(all);
    await advance(200);
    await settled;
    const stats = batcher.stats();
    expect(stats.submitted).toBe(14);
    expectBalanced(stats);
    expect(gauges(stats)).toEqual(IDLE);
  });

  it("holds after a force stop with batches running, queued, waiting and in backoff", async () => {
    let call = 0;
    const { batcher } = timed(
      10,
      {
        maxBatchSize: 2,
        maxQueueSize: 2,
        onQueueFull: "wait",
        maxQueueTime: INF,
        concurrency: 2,
        retry: { attempts: 3, delay: 100 },
      },
      (items) => {
        if (++call === 1) throw new BatchFailure("first");
        return items;
      },
    );
    const settled = Promise.allSettled([1, 2, 3, 4, 5, 6, 7].map((x) => batcher.process(x)));
    await advance(10); // [1,2] failed: in backoff; [3,4] done; [5,6] running; 7 queued
    const before = batcher.stats();
    expect(before.inFlight).toBeGreaterThan(0);
    await batcher.stop({ force: true });
    await settled;
    const stats = batcher.stats();
    expect(stats.submitted).toBe(7);
    expectBalanced(stats);
    expect(gauges(stats)).toEqual(IDLE);
    expect(stats.rejected.stopped).toBe(7 - stats.resolved);
  });
});

describe("the snapshot", () => {
  it("is frozen, all the way down", async () => {
    const { batcher } = timed(0, { maxQueueTime: 0 });
    await batcher.process(1);
    const stats = batcher.stats();
    for (const part of [
      stats,
      stats.rejected,
      stats.batches,
      stats.batchSize,
      stats.queueWait,
      stats.batchDuration,
    ]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (stats as { submitted: number }).submitted = 99;
    }).toThrow(TypeError);
  });

  it("does not change when the batcher goes on", async () => {
    const { batcher } = timed(2, { maxQueueTime: 1 });
    const first = Promise.all([batcher.process(1), batcher.process(2)]);
    await advance(3);
    await first;
    const stats = batcher.stats();
    const copy = structuredClone(stats);
    const more = [batcher.process(3), batcher.process(4)];
    await advance(10);
    await Promise.all(more);
    await reasonOf(batcher.process(5, { timeout: -1 }));
    expect(stats).toStrictEqual(copy);
    expect(batcher.stats().submitted).toBe(5);
    expect(batcher.stats()).not.toBe(stats);
  });
});

// -------------------------------------------------------------------------------------------------
// Property: random workloads, with every rejection classified by its error.

class Aborted extends Error {
  override name = "Aborted";
}

type Behaviour = "ok" | "itemErrors" | "throw";

interface ItemSpec {
  readonly at: number;
  readonly weight: number;
  readonly abortAt: number | undefined;
  readonly timeout: number | undefined;
  readonly priority: number;
  /** Submitted with bad options. */
  readonly bad: boolean;
}

interface Workload {
  readonly maxBatchSize: number;
  readonly maxQueueTime: number;
  readonly concurrency: number;
  readonly maxQueueSize: number;
  readonly onQueueFull: QueueFullPolicy;
  readonly maxBatchWeight: number | undefined;
  readonly retry: { attempts: number; delay: number } | undefined;
  readonly splitOnError: boolean;
  readonly byKey: boolean;
  readonly sync: boolean;
  readonly duration: number;
  readonly behaviours: readonly Behaviour[];
  readonly items: readonly ItemSpec[];
  readonly flushAt: number | undefined;
  /** A stop during the workload; a graceful one comes at the end anyway. */
  readonly stop: { readonly at: number; readonly mode: StopMode } | undefined;
}

const itemArb: fc.Arbitrary<ItemSpec> = fc.record({
  at: fc.integer({ min: 0, max: 60 }),
  weight: fc.integer({ min: 0, max: 12 }),
  abortAt: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined, freq: 4 }),
  timeout: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined, freq: 4 }),
  priority: fc.integer({ min: 0, max: 2 }),
  bad: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});

const workloadArb: fc.Arbitrary<Workload> = fc.record({
  maxBatchSize: count(5),
  maxQueueTime: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constant(INF)),
  concurrency: fc.integer({ min: 1, max: 3 }),
  maxQueueSize: count(6),
  onQueueFull: fc.constantFrom<QueueFullPolicy>("reject", "wait", "dropOldest"),
  maxBatchWeight: fc.option(fc.integer({ min: 10, max: 30 }), { nil: undefined }),
  retry: fc.option(
    fc.record({
      attempts: fc.integer({ min: 1, max: 3 }),
      delay: fc.integer({ min: 0, max: 20 }),
    }),
    { nil: undefined },
  ),
  splitOnError: fc.boolean(),
  byKey: fc.boolean(),
  sync: fc.boolean(),
  duration: fc.integer({ min: 0, max: 30 }),
  behaviours: fc.array(fc.constantFrom<Behaviour>("ok", "ok", "itemErrors", "throw"), {
    minLength: 1,
    maxLength: 4,
  }),
  items: fc.array(itemArb, { minLength: 1, maxLength: 25 }),
  flushAt: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
  stop: fc.option(
    fc.record({
      at: fc.integer({ min: 0, max: 100 }),
      mode: fc.constantFrom<StopMode>("graceful", "timeout", "force"),
    }),
    { nil: undefined },
  ),
});

/** Which counter a settled caller belongs to, from what it got. */
function classify(result: PromiseSettledResult<unknown>): "resolved" | RejectReason | "unknown" {
  if (result.status === "fulfilled") return "resolved";
  const error = result.reason;
  if (error instanceof Aborted) return "abort";
  if (error instanceof ItemTimeoutError) return "timeout";
  if (error instanceof QueueFullError) return "queueFull";
  if (error instanceof BatcherStoppedError) return "stopped";
  if (error instanceof ItemTooLargeError) return "tooLarge";
  if (error instanceof MissingResultError) return "missing";
  if (error instanceof BatchFailure || error instanceof ItemFailure) return "error";
  if (error instanceof RangeError || error instanceof TypeError) return "invalid";
  return "unknown";
}

async function runWorkload(w: Workload): Promise<void> {
  let call = 0;
  const produce = (items: number[]): number[] | Map<number, number | Error> => {
    const behaviour = w.behaviours[call++ % w.behaviours.length] as Behaviour;
    if (behaviour === "throw") throw new BatchFailure(`call ${call}`);
    const value = (x: number) =>
      behaviour === "itemErrors" && x % 3 === 1 ? new ItemFailure(x) : x * 10;
    if (!w.byKey) return items.map(value) as number[];
    // By key: ids that end in 4 have no entry.
    return new Map(items.filter((x) => x % 10 !== 4).map((x) => [x, value(x)]));
  };
  const batcher = createBatcher<number, number>(
    (items) => {
      if (w.sync) return produce(items) as number[];
      return new Promise<number[]>((resolve, reject) => {
        setTimeout(() => {
          try {
            resolve(produce(items) as number[]);
          } catch (error) {
            reject(error);
          }
        }, w.duration);
      });
    },
    {
      maxBatchSize: w.maxBatchSize,
      maxQueueTime: w.maxQueueTime,
      concurrency: w.concurrency,
      maxQueueSize: w.maxQueueSize,
      onQueueFull: w.onQueueFull,
      ...(w.maxBatchWeight === undefined
        ? {}
        : { weigh: (x: number) => w.items[x]?.weight ?? 0, maxBatchWeight: w.maxBatchWeight }),
      ...(w.retry === undefined ? {} : { retry: w.retry }),
      splitOnError: w.splitOnError,
      ...(w.byKey ? { keyOf: (x: number) => x } : {}),
    },
  );
  const drops = new Map<DropReason, number>();
  batcher.on("drop", (e) => drops.set(e.reason, (drops.get(e.reason) ?? 0) + e.count));
  let starts = 0;
  let ends = 0;
  batcher.on("batchStart", () => starts++);
  batcher.on("batchEnd", () => ends++);

  // Each caller's outcome, watched from its call on (no rejection is left unhandled meanwhile).
  const promises: Promise<PromiseSettledResult<number>>[] = [];
  const steps: Step[] = [];
  w.items.forEach((spec, id) => {
    const controller = spec.abortAt === undefined ? undefined : new AbortController();
    if (controller !== undefined && spec.abortAt !== undefined) {
      // At or before its arrival: already aborted when submitted.
      const already = spec.abortAt <= spec.at;
      steps.push({
        at: already ? spec.at : spec.abortAt,
        order: already ? 0 : 2,
        run: () => controller.abort(new Aborted(`item ${id}`)),
      });
    }
    steps.push({
      at: spec.at,
      order: 1,
      run: () => {
        const options: ProcessOptions = spec.bad
          ? { priority: Number.NaN }
          : {
              priority: spec.priority,
              ...(controller === undefined ? {} : { signal: controller.signal }),
              ...(spec.timeout === undefined ? {} : { timeout: spec.timeout }),
            };
        promises.push(
          batcher.process(id, options).then(
            (value) => ({ status: "fulfilled", value }),
            (reason: unknown) => ({ status: "rejected", reason }),
          ),
        );
      },
    });
  });
  if (w.flushAt !== undefined) steps.push({ at: w.flushAt, order: 3, run: () => batcher.flush() });
  if (w.stop !== undefined) {
    const mode = w.stop.mode;
    steps.push({
      at: w.stop.at,
      order: 4,
      run: () => {
        void batcher.stop(
          mode === "force" ? { force: true } : mode === "timeout" ? { timeout: 15 } : undefined,
        );
      },
    });
  }
  const check = (label: string) => {
    const stats = batcher.stats();
    expect(stats.submitted, label).toBe(promises.length);
    expect(stats.submitted, label).toBeGreaterThanOrEqual(stats.resolved + stats.rejected.total);
    expect(stats.runningBatches, label).toBeLessThanOrEqual(w.concurrency);
    expect([stats.queued, stats.waiting, stats.inFlight], label).toEqual([
      batcher.queueSize,
      batcher.waiting,
      batcher.inFlight,
    ]);
  };
  await runTimeline(steps, check, false);
  let pending = promises.length;
  for (const promise of promises) void promise.then(() => pending--);
  // Long enough for every batch, retry and timeout: nothing may be stuck in flight, and with a
  // finite maxQueueTime nothing may be left queued either.
  await advance(10_000);
  const quiet = batcher.stats();
  expect([quiet.inFlight, quiet.runningBatches], "stuck in flight").toEqual([0, 0]);
  if (w.maxQueueTime !== INF) expect([quiet.queued, quiet.waiting], "stuck").toEqual([0, 0]);
  // A graceful stop drains what maxQueueTime: Infinity left queued.
  const stopping = batcher.stop();
  await advance(10_000);
  await stopping;
  expect(pending, "callers never settled").toBe(0);
  const results = await Promise.all(promises);

  const stats = batcher.stats();
  const seen = new Map<string, number>();
  for (const result of results) {
    const kind = classify(result);
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
  }
  expect(seen.get("unknown")).toBeUndefined();
  expect(stats.submitted).toBe(w.items.length);
  expect(stats.resolved).toBe(seen.get("resolved") ?? 0);
  for (const reason of Object.keys(stats.rejected) as (RejectReason | "total")[]) {
    if (reason === "total") continue;
    expect(stats.rejected[reason], reason).toBe(seen.get(reason) ?? 0);
  }
  expectBalanced(stats);
  expect(gauges(stats)).toEqual(IDLE);
  // Every drop is a rejection of its reason, and the other way round.
  for (const reason of ["abort", "timeout", "queueFull", "stopped", "tooLarge"] as const) {
    expect(drops.get(reason) ?? 0, `drop ${reason}`).toBe(stats.rejected[reason]);
  }
  expect(starts).toBe(stats.batches.total);
  expect(stats.batchSize.count).toBe(stats.batches.total);
  expect(stats.batchDuration.count).toBe(ends);
}

describe("property: random workloads", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const runs = Number(process.env.PROPERTY_RUNS ?? 200);

  it(
    "counts every caller once by how it settled, and the gauges return to 0",
    async () => {
      await fc.assert(
        fc.asyncProperty(workloadArb, async (workload) => {
          vi.useFakeTimers({ now: 0 });
          try {
            await runWorkload(workload);
          } finally {
            vi.useRealTimers();
          }
        }),
        { numRuns: runs },
      );
    },
    Math.max(60_000, runs * 50),
  );
});
