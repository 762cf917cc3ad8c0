/**
 * Events (issue 4): `batcher.on(name, listener)` delivers batchStart, batchEnd, retry, split, drop
 * and idle with exact payloads, on fake timers. Listeners are checked when subscribed, run in
 * order, never break the batcher (what they throw goes to the logger), may unsubscribe at any time
 * and may call back into the batcher. The `captureContext` hook hands each caller's context to
 * its batch's batchStart.
 */
import {
  type AsyncBatcher,
  type BatchEndEvent,
  type BatcherEventName,
  type BatcherEvents,
  type BatcherLogEvent,
  type BatcherOptions,
  BatcherStoppedError,
  BatchResultError,
  type BatchStartEvent,
  batchScope,
  captureContext,
  createBatcher,
  type DropEvent,
  ItemTimeoutError,
  ItemTooLargeError,
  QueueFullError,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { manualBatcher, runJobs, track } from "../helpers/manual.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

let savedNodeDebug: string | undefined;

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  // NODE_DEBUG would add a stderr logger: keep the output and the logger under test alone.
  savedNodeDebug = process.env.NODE_DEBUG;
  delete process.env.NODE_DEBUG;
});

afterEach(() => {
  vi.useRealTimers();
  if (savedNodeDebug === undefined) delete process.env.NODE_DEBUG;
  else process.env.NODE_DEBUG = savedNodeDebug;
});

const NAMES: readonly BatcherEventName[] = [
  "batchStart",
  "batchEnd",
  "retry",
  "split",
  "drop",
  "idle",
];

type Logged = { [K in BatcherEventName]: [K, BatcherEvents[K]] }[BatcherEventName];

/** Subscribes to every event: `log` keeps them in the order they came, `of(name)` by name. */
function listen<T, R>(batcher: AsyncBatcher<T, R>) {
  const log: Logged[] = [];
  for (const name of NAMES) batcher.on(name, (event) => log.push([name, event] as Logged));
  const of = <K extends BatcherEventName>(name: K): BatcherEvents[K][] =>
    log.filter((entry) => entry[0] === name).map((entry) => entry[1] as BatcherEvents[K]);
  return { log, of, names: () => log.map(([name]) => name) };
}

/** A batchStart payload of the batcher "ev": what a first try cut from the queue has. */
function start(
  fields: Partial<BatchStartEvent> & Pick<BatchStartEvent, "batchId" | "size" | "reason">,
): BatchStartEvent {
  return {
    batcher: "ev",
    parentId: undefined,
    key: undefined,
    callers: fields.size,
    weight: 0,
    queueWait: 0,
    attempt: 1,
    contexts: undefined,
    ...fields,
  };
}

/** A batchEnd payload of the batcher "ev": every caller resolved, unless told otherwise. */
function end(
  fields: Partial<BatchEndEvent> & Pick<BatchEndEvent, "batchId" | "size" | "duration">,
): BatchEndEvent {
  return {
    batcher: "ev",
    key: undefined,
    resolved: fields.size,
    rejected: 0,
    retried: 0,
    error: undefined,
    failed: false,
    ...fields,
  };
}

/**
 * A batcher named "ev" whose batch function takes `ms` on the fake clock (0: returns at once) and
 * answers `answer(items)` (each item times 10 by default); it records every batch it gets.
 */
function timed(
  ms: number,
  options: BatcherOptions<number, number> = {},
  answer: (items: number[]) => (number | Error)[] | undefined = (items) => items.map((x) => x * 10),
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
    { name: "ev", ...options },
  );
  return { batcher, calls, ...listen(batcher) };
}

/** The reason a promise rejected with (it must reject). */
async function reasonOf(promise: Promise<unknown>): Promise<unknown> {
  const [result] = await Promise.allSettled([promise]);
  expect(result?.status).toBe("rejected");
  return (result as PromiseRejectedResult).reason;
}

describe("batchStart", () => {
  it("reports a batch cut by size, with its oldest item's exact wait", async () => {
    const { batcher, of } = timed(0, { maxBatchSize: 2, maxQueueTime: 100 });
    const first = batcher.process(1);
    await advance(3);
    const second = batcher.process(2);
    expect(of("batchStart")).toEqual([]); // started on the next microtask, not inside process()
    await runJobs();
    expect(of("batchStart")).toStrictEqual([
      start({ batchId: 1, size: 2, reason: "size", queueWait: 3 }),
    ]);
    expect(await Promise.all([first, second])).toEqual([10, 20]);
  });

  it("reports a batch cut by time when its oldest item has waited maxQueueTime", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 10 });
    const results = [batcher.process(1)];
    await advance(4);
    results.push(batcher.process(2));
    await advance(5);
    expect(of("batchStart")).toEqual([]);
    await advance(1);
    expect(of("batchStart")).toStrictEqual([
      start({ batchId: 1, size: 2, reason: "time", queueWait: 10 }),
    ]);
    expect(await Promise.all(results)).toEqual([10, 20]);
  });

  it("reports a batch cut by flush()", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: Number.POSITIVE_INFINITY });
    const results = [batcher.process(1)];
    await advance(5);
    results.push(batcher.process(2));
    await advance(2);
    await batcher.flush();
    expect(of("batchStart")).toStrictEqual([
      start({ batchId: 1, size: 2, reason: "flush", queueWait: 7 }),
    ]);
    expect(await Promise.all(results)).toEqual([10, 20]);
  });

  it("reports a batch cut by weight, with its total weight", async () => {
    const { batcher, of } = timed(0, {
      weigh: (x) => x,
      maxBatchWeight: 10,
      maxQueueTime: 100,
    });
    const results = [batcher.process(4), batcher.process(6)]; // 10: full
    await runJobs();
    results.push(batcher.process(6), batcher.process(5)); // 11: [6] goes, 5 waits
    await runJobs();
    await advance(100);
    expect(of("batchStart")).toStrictEqual([
      start({ batchId: 1, size: 2, reason: "weight", weight: 10 }),
      start({ batchId: 2, size: 1, reason: "weight", weight: 6 }),
      start({ batchId: 3, size: 1, reason: "time", weight: 5, queueWait: 100 }),
    ]);
    expect(await Promise.all(results)).toEqual([40, 60, 60, 50]);
  });

  it("reports a batch cut by a graceful stop()", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 1000 });
    const result = batcher.process(1);
    await advance(2);
    await batcher.stop();
    expect(of("batchStart")).toStrictEqual([
      start({ batchId: 1, size: 1, reason: "stop", queueWait: 2 }),
    ]);
    expect(await result).toBe(10);
  });

  it("gives the batch's key with batchKey", async () => {
    const { batcher, of } = timed(0, {
      batchKey: (x) => (x % 2 === 0 ? "even" : 1),
      maxBatchSize: 2,
      maxQueueTime: 100,
      concurrency: 2,
    });
    const results = [1, 2, 3, 4].map((x) => batcher.process(x));
    await runJobs();
    expect(of("batchStart")).toStrictEqual([
      start({ batchId: 1, size: 2, reason: "size", key: 1 }),
      start({ batchId: 2, size: 2, reason: "size", key: "even" }),
    ]);
    expect(of("batchEnd")).toStrictEqual([
      end({ batchId: 1, size: 2, duration: 0, key: 1 }),
      end({ batchId: 2, size: 2, duration: 0, key: "even" }),
    ]);
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40]);
  });

  it("counts callers apart from items when dedupe merges them", async () => {
    const { batcher, of, calls } = timed(0, {
      keyOf: (x) => x,
      dedupe: true,
      maxQueueTime: 10,
    });
    const results = [5, 5, 6].map((x) => batcher.process(x));
    await advance(10);
    expect(calls).toEqual([[5, 6]]);
    expect(of("batchStart")).toStrictEqual([
      start({ batchId: 1, size: 2, callers: 3, reason: "time", queueWait: 10 }),
    ]);
    expect(of("batchEnd")).toStrictEqual([end({ batchId: 1, size: 2, duration: 0, resolved: 3 })]);
    expect(await Promise.all(results)).toEqual([50, 50, 60]);
  });

  it("numbers batches from 1 and reports each before its batch function runs", async () => {
    const order: string[] = [];
    const batcher = createBatcher<number, number>(
      (items, context) => {
        order.push(`run ${context.batchId}`);
        return items;
      },
      { name: "ev", maxBatchSize: 1 },
    );
    batcher.on("batchStart", (event) => order.push(`start ${event.batchId}`));
    batcher.on("batchEnd", (event) => order.push(`end ${event.batchId}`));
    expect(await Promise.all([batcher.process(1), batcher.process(2)])).toEqual([1, 2]);
    expect(order).toEqual(["start 1", "run 1", "end 1", "start 2", "run 2", "end 2"]);
  });
});

describe("batchEnd", () => {
  it("gives the exact duration from the call of the batch function to the settling", async () => {
    const { batcher, of } = timed(25, { maxQueueTime: 10 });
    const result = batcher.process(1);
    await advance(10);
    expect(of("batchStart")).toHaveLength(1);
    await advance(24);
    expect(of("batchEnd")).toEqual([]);
    await advance(1);
    expect(of("batchEnd")).toStrictEqual([end({ batchId: 1, size: 1, duration: 25 })]);
    expect(await result).toBe(10);
  });

  it("counts callers resolved and rejected by their own Error results", async () => {
    const bad = new Error("item 2");
    const { batcher, of } = timed(5, { maxQueueTime: 0 }, (items) =>
      items.map((x) => (x === 2 ? bad : x * 10)),
    );
    const results = [1, 2, 3].map((x) => batcher.process(x));
    const settled = Promise.allSettled(results);
    await advance(5);
    expect(of("batchEnd")).toStrictEqual([
      end({ batchId: 1, size: 3, duration: 5, resolved: 2, rejected: 1 }),
    ]);
    expect((await settled).map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("reports a batch function that rejects: failed, with its error", async () => {
    const boom = new Error("down");
    const batcher = createBatcher<number, number>(
      async () => {
        await sleep(7);
        throw boom;
      },
      { name: "ev", maxQueueTime: 0 },
    );
    const { of } = listen(batcher);
    const settled = Promise.allSettled([1, 2].map((x) => batcher.process(x)));
    await advance(7);
    expect(of("batchEnd")).toStrictEqual([
      end({
        batchId: 1,
        size: 2,
        duration: 7,
        resolved: 0,
        rejected: 2,
        failed: true,
        error: boom,
      }),
    ]);
    expect((await settled).map((r) => (r as PromiseRejectedResult).reason)).toEqual([boom, boom]);
  });

  it("reports a batch function that throws synchronously: failed, with its error", async () => {
    const boom = new Error("sync");
    const batcher = createBatcher<number, number>(
      () => {
        throw boom;
      },
      { name: "ev", maxQueueTime: 0 },
    );
    const { of } = listen(batcher);
    const settled = Promise.allSettled([batcher.process(1)]);
    await runJobs();
    expect(of("batchEnd")).toStrictEqual([
      end({
        batchId: 1,
        size: 1,
        duration: 0,
        resolved: 0,
        rejected: 1,
        failed: true,
        error: boom,
      }),
    ]);
    expect((await settled)[0]?.status).toBe("rejected");
  });

  it("reports a result that does not fit as a failure with BatchResultError", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0 }, () => [1]);
    const settled = Promise.allSettled([batcher.process(1), batcher.process(2)]);
    await runJobs();
    const [event] = of("batchEnd");
    expect(event).toMatchObject({ batchId: 1, size: 2, resolved: 0, rejected: 2, failed: true });
    const error = event?.error as BatchResultError | undefined;
    expect(error).toBeInstanceOf(BatchResultError);
    expect(error?.code).toBe("ERR_BATCH_RESULT");
    expect((await settled).map((r) => (r as PromiseRejectedResult).reason)).toEqual([
      event?.error,
      event?.error,
    ]);
  });

  it("counts every caller resolved when the batch function returns nothing", async () => {
    const { batcher, of } = timed(3, { maxQueueTime: 0 }, () => undefined);
    const results = Promise.all([batcher.process(1), batcher.process(2)]);
    await advance(3);
    expect(of("batchEnd")).toStrictEqual([end({ batchId: 1, size: 2, duration: 3 })]);
    expect(await results).toEqual([undefined, undefined]);
  });

  it("leaves out callers who left while the batch ran", async () => {
    const { batcher, of } = timed(10, { maxQueueTime: 0 });
    const controller = new AbortController();
    const kept = batcher.process(1);
    const left = track(batcher.process(2, { signal: controller.signal }));
    await advance(4);
    controller.abort(new Error("bye"));
    await advance(6);
    expect(left.error).toEqual(new Error("bye"));
    expect(await kept).toBe(10);
    expect(of("batchEnd")).toStrictEqual([
      end({ batchId: 1, size: 2, duration: 10, resolved: 1, rejected: 0 }),
    ]);
  });
});

describe("retry and split", () => {
  it("retries a failed batch together: retry event, batchEnd with retried, then a retry batch", async () => {
    const boom = new Error("flaky");
    let tries = 0;
    const batcher = createBatcher<number, number>(
      async (items) => {
        await sleep(5);
        if (++tries === 1) throw boom;
        return items.map((x) => x * 10);
      },
      { name: "ev", maxQueueTime: 0, retry: { attempts: 3, delay: 50 } },
    );
    const { log } = listen(batcher);
    const results = Promise.all([batcher.process(1), batcher.process(2)]);
    await advance(5);
    expect(log).toStrictEqual([
      ["batchStart", start({ batchId: 1, size: 2, reason: "time" })],
      [
        "retry",
        {
          batcher: "ev",
          batchId: 1,
          key: undefined,
          scope: "batch",
          size: 2,
          attempt: 2,
          delay: 50,
          error: boom,
        },
      ],
      [
        "batchEnd",
        end({
          batchId: 1,
          size: 2,
          duration: 5,
          resolved: 0,
          retried: 2,
          failed: true,
          error: boom,
        }),
      ],
    ]);
    log.length = 0;
    await advance(49);
    expect(log).toEqual([]);
    await advance(1);
    expect(log).toStrictEqual([
      ["batchStart", start({ batchId: 2, parentId: 1, size: 2, reason: "retry", attempt: 2 })],
    ]);
    await advance(5);
    expect(log.slice(1)).toStrictEqual([
      ["batchEnd", end({ batchId: 2, size: 2, duration: 5 })],
      ["idle", { batcher: "ev" }],
    ]);
    expect(await results).toEqual([10, 20]);
  });

  it("retries an item whose result was an Error on its own, in a batch cut with reason retry", async () => {
    const bad = new Error("item 2");
    let tries = 0;
    const { batcher, log } = timed(
      0,
      { maxQueueTime: 0, retry: { attempts: 2, delay: 20 } },
      (items) => items.map((x) => (x === 2 && ++tries === 1 ? bad : x * 10)),
    );
    const results = Promise.all([1, 2, 3].map((x) => batcher.process(x)));
    await runJobs();
    expect(log).toStrictEqual([
      ["batchStart", start({ batchId: 1, size: 3, reason: "time" })],
      [
        "retry",
        {
          batcher: "ev",
          batchId: 1,
          key: undefined,
          scope: "item",
          size: 1,
          attempt: 2,
          delay: 20,
          error: bad,
        },
      ],
      ["batchEnd", end({ batchId: 1, size: 3, duration: 0, resolved: 2, retried: 1 })],
    ]);
    log.length = 0;
    await advance(20);
    expect(log).toStrictEqual([
      ["batchStart", start({ batchId: 3, size: 1, reason: "retry", attempt: 2 })],
      ["batchEnd", end({ batchId: 3, size: 1, duration: 0 })],
      ["idle", { batcher: "ev" }],
    ]);
    expect(await results).toEqual([10, 20, 30]);
  });

  it("splits a failed batch in halves: split events, split batches, the bad item rejects alone", async () => {
    const calls: number[][] = [];
    const batcher = createBatcher<number, number>(
      async (items) => {
        calls.push([...items]);
        if (items.includes(2)) throw new Error(`bad ${items}`);
        return items.map((x) => x * 10);
      },
      { name: "ev", maxQueueTime: 0, splitOnError: true },
    );
    const { log } = listen(batcher);
    const settled = Promise.allSettled([1, 2, 3].map((x) => batcher.process(x)));
    await runJobs();
    const outcomes = (await settled).map((r) =>
      r.status === "fulfilled" ? r.value : (r.reason as Error).message,
    );
    expect(outcomes).toEqual([10, "bad 2", 30]);
    expect(calls).toEqual([[1, 2, 3], [1, 2], [3], [1], [2]]);
    const error = (items: string) => new Error(`bad ${items}`);
    expect(log).toStrictEqual([
      ["batchStart", start({ batchId: 1, size: 3, reason: "time" })],
      ["split", { batcher: "ev", batchId: 1, key: undefined, size: 3, error: error("1,2,3") }],
      [
        "batchEnd",
        end({
          batchId: 1,
          size: 3,
          duration: 0,
          resolved: 0,
          retried: 3,
          failed: true,
          error: error("1,2,3"),
        }),
      ],
      ["batchStart", start({ batchId: 2, parentId: 1, size: 2, reason: "split" })],
      ["split", { batcher: "ev", batchId: 2, key: undefined, size: 2, error: error("1,2") }],
      [
        "batchEnd",
        end({
          batchId: 2,
          size: 2,
          duration: 0,
          resolved: 0,
          retried: 2,
          failed: true,
          error: error("1,2"),
        }),
      ],
      ["batchStart", start({ batchId: 3, parentId: 1, size: 1, reason: "split" })],
      ["batchEnd", end({ batchId: 3, size: 1, duration: 0 })],
      ["batchStart", start({ batchId: 4, parentId: 2, size: 1, reason: "split" })],
      ["batchEnd", end({ batchId: 4, size: 1, duration: 0 })],
      ["batchStart", start({ batchId: 5, parentId: 2, size: 1, reason: "split" })],
      [
        "batchEnd",
        end({
          batchId: 5,
          size: 1,
          duration: 0,
          resolved: 0,
          rejected: 1,
          failed: true,
          error: error("2"),
        }),
      ],
      ["idle", { batcher: "ev" }],
    ]);
  });
});

describe("split with a synchronous batch function", () => {
  // A batch cut by time is started inside the scheduler loop; when its function throws at once,
  // the halves are queued for a slot while that loop runs, and nothing starts them afterwards.
  it("settles every caller when a batch cut by time throws synchronously (splitOnError)", async () => {
    const { batcher, calls, of } = timed(0, { maxQueueTime: 0, splitOnError: true }, (items) => {
      if (items.includes(2)) throw new Error("bad");
      return items.map((x) => x * 10);
    });
    const states = [1, 2, 3].map((x) => track(batcher.process(x)));
    await advance(100);
    expect(calls).toEqual([[1, 2, 3], [1, 2], [3], [1], [2]]);
    expect(states.map((s) => s.settled)).toEqual([true, true, true]);
    expect(of("split")).toHaveLength(2);
    expect(of("idle")).toHaveLength(1);
  });
});

describe("drop", () => {
  const drop = (reason: DropEvent["reason"], count: number, error: unknown): DropEvent => ({
    batcher: "ev",
    reason,
    count,
    error,
  });

  it("queueFull: a caller refused at admission", async () => {
    const { batcher, of } = timed(0, { maxQueueSize: 1, maxQueueTime: 10 });
    const kept = batcher.process(1);
    const error = await reasonOf(batcher.process(2));
    expect(error).toBeInstanceOf(QueueFullError);
    expect((error as QueueFullError).code).toBe("ERR_QUEUE_FULL");
    expect((error as QueueFullError).maxQueueSize).toBe(1);
    expect(of("drop")).toStrictEqual([drop("queueFull", 1, error)]);
    await advance(10);
    expect(await kept).toBe(10);
  });

  it("queueFull: the oldest caller dropped for a newer one (dropOldest)", async () => {
    const { batcher, of } = timed(0, {
      maxQueueSize: 2,
      onQueueFull: "dropOldest",
      maxQueueTime: 10,
    });
    const oldest = batcher.process(1);
    const rest = [batcher.process(2), batcher.process(3)];
    const error = await reasonOf(oldest);
    expect(error).toBeInstanceOf(QueueFullError);
    expect((error as QueueFullError).code).toBe("ERR_QUEUE_FULL");
    expect(of("drop")).toStrictEqual([drop("queueFull", 1, error)]);
    await advance(10);
    expect(await Promise.all(rest)).toEqual([20, 30]);
  });

  it("stopped: a caller after stop()", async () => {
    const { batcher, of } = timed(0);
    await batcher.stop();
    const error = await reasonOf(batcher.process(1));
    expect(error).toBeInstanceOf(BatcherStoppedError);
    expect((error as BatcherStoppedError).code).toBe("ERR_BATCHER_STOPPED");
    expect(of("drop")).toStrictEqual([drop("stopped", 1, error)]);
  });

  it("stopped: one event for every caller of a force stop (queued, waiting, in flight)", async () => {
    const { batcher, calls } = manualBatcher({
      name: "ev",
      maxBatchSize: 2,
      maxQueueTime: Number.POSITIVE_INFINITY,
      maxQueueSize: 2,
      onQueueFull: "wait",
    });
    const { of } = listen(batcher);
    const settled = Promise.allSettled([1, 2, 3, 4, 5].map((x) => batcher.process(x)));
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([[1, 2]]);
    expect([batcher.inFlight, batcher.queueSize, batcher.waiting]).toEqual([2, 2, 1]);
    await batcher.stop({ force: true });
    const reasons = (await settled).map((r) => (r as PromiseRejectedResult).reason);
    expect(new Set(reasons).size).toBe(1);
    expect(reasons[0]).toBeInstanceOf(BatcherStoppedError);
    expect(of("drop")).toStrictEqual([drop("stopped", 5, reasons[0])]);
  });

  it("stopped: no event when a force stop finds nobody waiting", async () => {
    const { batcher, log } = timed(0, { maxQueueTime: 0 });
    expect(await batcher.process(1)).toBe(10);
    await runJobs();
    log.length = 0;
    await batcher.stop({ force: true });
    expect(log).toEqual([]);
  });

  it("abort: a caller whose signal was already aborted", async () => {
    const { batcher, of } = timed(0);
    const reason = new Error("already");
    const error = await reasonOf(batcher.process(1, { signal: AbortSignal.abort(reason) }));
    expect(error).toBe(reason);
    expect(of("drop")).toStrictEqual([drop("abort", 1, reason)]);
  });

  it("abort: one event per abort, counting the callers that left (waiting, queued, in flight)", async () => {
    const { batcher, calls } = manualBatcher({
      name: "ev",
      maxBatchSize: 1,
      maxQueueSize: 1,
      onQueueFull: "wait",
      maxQueueTime: Number.POSITIVE_INFINITY,
    });
    const { of } = listen(batcher);
    const shared = new AbortController();
    const other = new AbortController();
    const a = track(batcher.process(1, { signal: shared.signal })); // runs
    const b = track(batcher.process(2, { signal: shared.signal })); // queued
    const c = track(batcher.process(3, { signal: shared.signal })); // waits for room
    const d = track(batcher.process(4, { signal: other.signal })); // waits for room
    await runJobs();
    expect([batcher.inFlight, batcher.queueSize, batcher.waiting]).toEqual([1, 1, 2]);
    const first = new Error("shared");
    shared.abort(first);
    await runJobs();
    expect([a.error, b.error, c.error]).toEqual([first, first, first]);
    expect(of("drop")).toStrictEqual([drop("abort", 3, first)]);
    const second = new Error("other");
    other.abort(second);
    await runJobs();
    expect(d.error).toBe(second);
    expect(of("drop")).toStrictEqual([drop("abort", 3, first), drop("abort", 1, second)]);
    calls[0]?.resolve([10]);
    await runJobs();
    expect(of("drop")).toHaveLength(2);
  });

  it("abort: counts only the callers still waiting; none left, no event", async () => {
    const { batcher, of } = timed(0, { maxBatchSize: 1 });
    const controller = new AbortController();
    expect(await batcher.process(1, { signal: controller.signal })).toBe(10);
    const pending = track(batcher.process(2, { signal: controller.signal }));
    controller.abort(new Error("late"));
    await runJobs();
    expect(pending.error).toEqual(new Error("late"));
    expect(of("drop")).toStrictEqual([drop("abort", 1, new Error("late"))]);
    const settled = new AbortController();
    expect(await batcher.process(3, { signal: settled.signal })).toBe(30);
    settled.abort();
    await runJobs();
    expect(of("drop")).toHaveLength(1);
  });

  it("timeout: one event per timer tick, counting the callers that timed out", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: Number.POSITIVE_INFINITY });
    const early = [
      track(batcher.process(1, { timeout: 20 })),
      track(batcher.process(2, { timeout: 20 })),
    ];
    await advance(5);
    const late = track(batcher.process(3, { timeout: 20 }));
    // Two timeouts that pass in the same tick: one event.
    await advance(5);
    const x = track(batcher.process(4, { timeout: 30 })); // deadline 40
    await advance(20);
    const y = track(batcher.process(5, { timeout: 10 })); // deadline 40
    await advance(9); // t = 39
    expect(of("drop").map((e) => [e.reason, e.count])).toEqual([
      ["timeout", 2],
      ["timeout", 1],
    ]);
    await advance(1); // t = 40
    const events = of("drop");
    expect(events.map((e) => [e.reason, e.count])).toEqual([
      ["timeout", 2],
      ["timeout", 1],
      ["timeout", 2],
    ]);
    for (const state of [...early, late, x, y]) {
      expect(state.error).toBeInstanceOf(ItemTimeoutError);
      expect((state.error as ItemTimeoutError).code).toBe("ERR_ITEM_TIMEOUT");
    }
    const error = events[0]?.error as ItemTimeoutError | undefined;
    expect(error).toBeInstanceOf(ItemTimeoutError);
    expect(error?.timeout).toBe(20);
    await batcher.stop();
  });

  it("timeout: the batcher's itemTimeout, at the exact tick", async () => {
    const { batcher, of } = timed(0, { itemTimeout: 15, maxQueueTime: Number.POSITIVE_INFINITY });
    const states = [1, 2, 3].map((x) => track(batcher.process(x)));
    await advance(14);
    expect(of("drop")).toEqual([]);
    await advance(1);
    expect(of("drop")).toStrictEqual([drop("timeout", 3, states[0]?.error)]);
    expect(states.every((s) => s.error instanceof ItemTimeoutError)).toBe(true);
  });

  it("tooLarge: a caller heavier than maxBatchWeight at admission", async () => {
    const { batcher, of } = timed(0, { weigh: (x) => x, maxBatchWeight: 10 });
    const error = await reasonOf(batcher.process(11));
    expect(error).toBeInstanceOf(ItemTooLargeError);
    expect((error as ItemTooLargeError).code).toBe("ERR_ITEM_TOO_LARGE");
    expect([
      (error as ItemTooLargeError).weight,
      (error as ItemTooLargeError).maxBatchWeight,
    ]).toEqual([11, 10]);
    expect(of("drop")).toStrictEqual([drop("tooLarge", 1, error)]);
  });

  it("tooLarge: the callers a lowered maxBatchWeight no longer fits, queued or waiting", async () => {
    const { batcher, of } = timed(0, {
      weigh: (x) => x,
      maxBatchWeight: 100,
      maxQueueTime: Number.POSITIVE_INFINITY,
      maxQueueSize: 3,
      onQueueFull: "wait",
    });
    const states = [8, 3, 9, 7].map((x) => track(batcher.process(x))); // 7 waits for room
    expect([batcher.queueSize, batcher.waiting]).toEqual([3, 1]);
    batcher.setOptions({ maxBatchWeight: 5 });
    await runJobs();
    const errors = [states[0]?.error, states[2]?.error, states[3]?.error] as ItemTooLargeError[];
    expect(
      errors.map((e) => [e instanceof ItemTooLargeError, e.code, e.weight, e.maxBatchWeight]),
    ).toEqual([
      [true, "ERR_ITEM_TOO_LARGE", 8, 5],
      [true, "ERR_ITEM_TOO_LARGE", 9, 5],
      [true, "ERR_ITEM_TOO_LARGE", 7, 5],
    ]);
    expect(of("drop")).toStrictEqual(errors.map((error) => drop("tooLarge", 1, error)));
    expect(states[1]?.settled).toBe(false);
    await batcher.flush();
    expect(states[1]).toEqual({ settled: true });
  });

  it("is not emitted for rejections that are not drops (invalid options, errors)", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0 }, () => {
      throw new Error("batch");
    });
    await reasonOf(batcher.process(1, { timeout: -1 }));
    await reasonOf(batcher.process(2));
    expect(of("drop")).toEqual([]);
  });
});

describe("idle", () => {
  it("is emitted once per busy period, after the last batch settles", async () => {
    const { batcher, of, names } = timed(10, { maxBatchSize: 2, maxQueueTime: 5 });
    const results = [1, 2, 3].map((x) => batcher.process(x));
    await advance(19);
    expect(of("idle")).toEqual([]);
    await advance(1); // t = 20: [3] waited for batch 1, ran 10..20
    expect(of("idle")).toStrictEqual([{ batcher: "ev" }]);
    expect(names()).toEqual(["batchStart", "batchEnd", "batchStart", "batchEnd", "idle"]);
    expect(await Promise.all(results)).toEqual([10, 20, 30]);
    await advance(100);
    expect(of("idle")).toHaveLength(1);
  });

  it("is emitted again after new work", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0 });
    await batcher.process(1);
    await runJobs();
    expect(of("idle")).toHaveLength(1);
    await batcher.process(2);
    await runJobs();
    expect(of("idle")).toHaveLength(2);
  });

  it("is not emitted when nothing happened", async () => {
    const { batcher, log } = timed(0, { maxQueueTime: 0 });
    await batcher.flush();
    await batcher.onIdle();
    batcher.setOptions({ maxBatchSize: 3 });
    await reasonOf(batcher.process(1, { priority: Number.NaN }));
    await runJobs();
    await advance(100);
    expect(log).toEqual([]);
    await batcher.stop();
    expect(log).toEqual([]);
  });

  it("waits for retries in their backoff", async () => {
    let tries = 0;
    const { batcher, of } = timed(
      0,
      { maxQueueTime: 0, retry: { attempts: 2, delay: 30 } },
      (items) => {
        if (++tries === 1) throw new Error("once");
        return items;
      },
    );
    const result = batcher.process(7);
    await advance(29);
    expect(of("idle")).toEqual([]);
    await advance(1);
    expect(await result).toBe(7);
    expect(of("idle")).toHaveLength(1);
  });

  it("is emitted when the last callers leave by abort, once their batch settles", async () => {
    const { batcher, calls } = manualBatcher({ name: "ev", maxQueueTime: 0 });
    const { of } = listen(batcher);
    const controller = new AbortController();
    const state = track(batcher.process(1, { signal: controller.signal }));
    await runJobs();
    controller.abort();
    await runJobs();
    expect(state.settled).toBe(true);
    expect(of("idle")).toEqual([]); // the batch function still runs
    calls[0]?.resolve([1]);
    await runJobs();
    expect(of("idle")).toHaveLength(1);
  });
});

describe("a batch whose callers all left before it started", () => {
  it("has no batchStart, no batchEnd, and its function is never called", async () => {
    const { batcher, of, calls } = timed(0, { maxBatchSize: 2 });
    const controller = new AbortController();
    // Full at once: cut inside process(), started on the next microtask.
    const states = [1, 2].map((x) => track(batcher.process(x, { signal: controller.signal })));
    controller.abort(new Error("changed my mind"));
    await runJobs();
    expect(states.map((s) => s.error)).toEqual([
      new Error("changed my mind"),
      new Error("changed my mind"),
    ]);
    expect(calls).toEqual([]);
    expect(of("batchStart")).toEqual([]);
    expect(of("batchEnd")).toEqual([]);
    expect(of("drop")).toStrictEqual([
      { batcher: "ev", reason: "abort", count: 2, error: new Error("changed my mind") },
    ]);
  });

  it("has no batchStart for a retry whose callers all left during the backoff", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0, retry: { attempts: 3, delay: 50 } }, () => {
      throw new Error("always");
    });
    const controller = new AbortController();
    const state = track(batcher.process(1, { signal: controller.signal }));
    await runJobs();
    expect(of("batchStart")).toHaveLength(1);
    expect(of("retry")).toHaveLength(1);
    await advance(20);
    controller.abort(new Error("gone"));
    await advance(100);
    expect(state.error).toEqual(new Error("gone"));
    expect(of("batchStart")).toHaveLength(1);
    expect(of("batchEnd")).toHaveLength(1);
    expect(of("idle")).toHaveLength(1);
  });
});

describe("batchEnd for every started batch", () => {
  // The spec: batchEnd is "emitted once for every started batch (not for a batch whose callers
  // all left before start)". A force stop settles the callers of a running batch: its batchEnd
  // must come, once, whether at the stop or when the batch function settles later.
  it("is emitted for a batch running when the batcher is force-stopped", async () => {
    const { batcher, calls } = manualBatcher({ name: "ev", maxBatchSize: 2 });
    const { of } = listen(batcher);
    const settled = Promise.allSettled([1, 2].map((x) => batcher.process(x)));
    await runJobs();
    expect(of("batchStart")).toHaveLength(1);
    await batcher.stop({ force: true });
    await settled;
    calls[0]?.resolve([10, 20]);
    await advance(10);
    expect(of("batchEnd").map((e) => e.batchId)).toEqual([1]);
  });
});

describe("on()", () => {
  it("rejects an unknown event name with a TypeError", () => {
    const { batcher } = timed(0);
    const on = batcher.on.bind(batcher) as (name: string, listener: () => void) => () => void;
    expect(() => on("batchstart", () => {})).toThrow(TypeError);
    expect(() => on("error", () => {})).toThrow(TypeError);
    expect(() => on("", () => {})).toThrow(TypeError);
  });

  it("rejects a listener that is not a function with a TypeError", () => {
    const { batcher } = timed(0);
    const on = batcher.on.bind(batcher) as (name: string, listener: unknown) => () => void;
    for (const listener of [undefined, null, 1, "f", {}]) {
      expect(() => on("idle", listener)).toThrow(TypeError);
    }
  });

  it("unsubscribes: no more delivery, and calling it again changes nothing", async () => {
    const batcher = createBatcher<number, number>((items) => items, { maxQueueTime: 0 });
    const gone: number[] = [];
    const kept: number[] = [];
    const off = batcher.on("batchStart", (e) => gone.push(e.batchId));
    batcher.on("batchStart", (e) => kept.push(e.batchId));
    await batcher.process(1);
    off();
    off();
    await batcher.process(2);
    off();
    await batcher.process(3);
    expect(gone).toEqual([1]);
    expect(kept).toEqual([1, 2, 3]);
  });

  it("runs the same function twice when it is subscribed twice", async () => {
    const batcher = createBatcher<number, number>((items) => items, { maxQueueTime: 0 });
    const listener = vi.fn();
    const off = batcher.on("idle", listener);
    batcher.on("idle", listener);
    await batcher.process(1);
    await runJobs();
    expect(listener).toHaveBeenCalledTimes(2);
    off();
    await batcher.process(2);
    await runJobs();
    expect(listener).toHaveBeenCalledTimes(3);
  });

  it("skips a listener that an earlier listener removed during the same emit", async () => {
    const batcher = createBatcher<number, number>((items) => items, { maxQueueTime: 0 });
    const seen: string[] = [];
    let offLater: () => void = () => {};
    batcher.on("batchStart", () => {
      seen.push("first");
      offLater();
    });
    offLater = batcher.on("batchStart", () => seen.push("later"));
    await batcher.process(1);
    await batcher.process(2);
    expect(seen).toEqual(["first", "first"]);
  });
});

describe("a listener that throws", () => {
  function loggedBatcher(answer: (items: number[]) => number[] = (items) => items) {
    const logs: BatcherLogEvent[] = [];
    const batcher = createBatcher<number, number>(answer, {
      name: "ev",
      maxQueueTime: 0,
      logger: (event) => logs.push(event),
    });
    return { batcher, logs, listenerErrors: () => logs.filter((l) => l.type === "listenerError") };
  }

  it("never breaks the batcher; the others still run; the logger gets listenerError", async () => {
    const { batcher, listenerErrors } = loggedBatcher();
    const thrown = new Error("listener bug");
    const seen: string[] = [];
    for (const name of NAMES) {
      batcher.on(name, () => {
        throw thrown;
      });
      batcher.on(name, () => seen.push(name));
    }
    expect(await Promise.all([batcher.process(1), batcher.process(2)])).toEqual([1, 2]);
    await runJobs();
    await reasonOf(batcher.process(3, { signal: AbortSignal.abort() }));
    expect(seen).toEqual(["batchStart", "batchEnd", "idle", "drop"]);
    expect(listenerErrors()).toStrictEqual(
      ["batchStart", "batchEnd", "idle", "drop"].map((event) => ({
        type: "listenerError",
        batcher: "ev",
        event,
        error: thrown,
      })),
    );
    // Still works afterwards.
    expect(await batcher.process(4)).toBe(4);
    expect(batcher.stats().resolved).toBe(3);
  });

  it("is reported for each throw, with what it threw", async () => {
    const { batcher, listenerErrors } = loggedBatcher();
    let n = 0;
    batcher.on("batchEnd", () => {
      throw `throw ${++n}`;
    });
    await batcher.process(1);
    await batcher.process(2);
    expect(listenerErrors().map((l) => (l as { error: unknown }).error)).toEqual([
      "throw 1",
      "throw 2",
    ]);
  });

  it("is harmless without a logger", async () => {
    const batcher = createBatcher<number, number>((items) => items, { maxQueueTime: 0 });
    batcher.on("batchStart", () => {
      throw new Error("no one hears");
    });
    expect(await batcher.process(1)).toBe(1);
  });
});

describe("a listener that calls back into the batcher", () => {
  it("process() from batchStart: the new item is batched and resolves", async () => {
    const { batcher, calls } = timed(0, { maxBatchSize: 2, maxQueueTime: 10 });
    const extra: Promise<number>[] = [];
    batcher.on("batchStart", (e) => {
      if (e.batchId === 1) extra.push(batcher.process(100), batcher.process(101));
    });
    const results = [batcher.process(1), batcher.process(2)];
    await runJobs();
    expect(extra).toHaveLength(2);
    expect(await Promise.all([...results, ...extra])).toEqual([10, 20, 1000, 1010]);
    expect(calls).toEqual([
      [1, 2],
      [100, 101],
    ]);
  });

  it("process() from batchStart while batches are started by a timer", async () => {
    const { batcher, calls } = timed(0, { maxQueueTime: 5 });
    const extra: Promise<number>[] = [];
    batcher.on("batchStart", (e) => {
      if (e.batchId === 1) extra.push(batcher.process(9));
    });
    const first = batcher.process(1);
    await advance(5);
    await advance(5);
    expect(await Promise.all([first, ...extra])).toEqual([10, 90]);
    expect(calls).toEqual([[1], [9]]);
  });

  it("process() from batchEnd: the new item is batched and resolves", async () => {
    const { batcher, calls } = timed(3, { maxQueueTime: 0 });
    const extra: Promise<number>[] = [];
    batcher.on("batchEnd", (e) => {
      if (e.batchId === 1) extra.push(batcher.process(5));
    });
    const first = batcher.process(1);
    await advance(3);
    await advance(3);
    expect(await Promise.all([first, ...extra])).toEqual([10, 50]);
    expect(calls).toEqual([[1], [5]]);
  });

  it("process() from idle: a new busy period, and a second idle", async () => {
    const { batcher, calls, of } = timed(0, { maxQueueTime: 0 });
    const extra: Promise<number>[] = [];
    batcher.on("idle", () => {
      if (extra.length === 0) extra.push(batcher.process(2));
    });
    expect(await batcher.process(1)).toBe(10);
    await runJobs();
    expect(extra).toHaveLength(1);
    expect(await extra[0]).toBe(20);
    await runJobs();
    expect(calls).toEqual([[1], [2]]);
    expect(of("idle")).toHaveLength(2);
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, runningBatches: 0 });
  });

  it("stop() from batchStart: the running and queued items still resolve, later calls are refused", async () => {
    const { batcher, calls } = timed(5, { maxBatchSize: 1 });
    let stopping: Promise<void> | undefined;
    batcher.on("batchStart", () => {
      stopping ??= batcher.stop();
    });
    const results = [batcher.process(1), batcher.process(2)];
    await runJobs();
    expect(stopping).toBeDefined();
    const late = reasonOf(batcher.process(3));
    await advance(10);
    await stopping;
    expect(await Promise.all(results)).toEqual([10, 20]);
    expect(await late).toBeInstanceOf(BatcherStoppedError);
    expect(calls).toEqual([[1], [2]]);
    expect(batcher.isRunning).toBe(false);
  });

  it("stop({ force: true }) from batchStart: every caller settles, stop() resolves", async () => {
    const { batcher } = timed(5, { maxBatchSize: 1, concurrency: 2 });
    let stopping: Promise<void> | undefined;
    batcher.on("batchStart", () => {
      stopping ??= batcher.stop({ force: true });
    });
    const settled = Promise.allSettled([1, 2, 3].map((x) => batcher.process(x)));
    await advance(10);
    await stopping;
    const results = await settled;
    for (const result of results) {
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(BatcherStoppedError);
    }
    const stats = batcher.stats();
    expect(stats).toMatchObject({ queued: 0, inFlight: 0, runningBatches: 0, submitted: 3 });
    expect(stats.rejected.stopped).toBe(3);
  });

  it("stop({ force: true }) from batchEnd: the queued callers reject, the batch's resolve", async () => {
    const { batcher } = timed(5, { maxBatchSize: 2 });
    let stopping: Promise<void> | undefined;
    batcher.on("batchEnd", () => {
      stopping ??= batcher.stop({ force: true });
    });
    const settled = Promise.allSettled([1, 2, 3, 4].map((x) => batcher.process(x)));
    await advance(5);
    await stopping;
    const results = await settled;
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
    ]);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(BatcherStoppedError);
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, runningBatches: 0 });
  });

  it("stop() from idle resolves, and the batcher is stopped", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0 });
    let stopping: Promise<void> | undefined;
    batcher.on("idle", () => {
      stopping ??= batcher.stop();
    });
    expect(await batcher.process(1)).toBe(10);
    await runJobs();
    await stopping;
    expect(batcher.isRunning).toBe(false);
    expect(await reasonOf(batcher.process(2))).toBeInstanceOf(BatcherStoppedError);
    expect(of("idle")).toHaveLength(1);
  });

  it("stop() from batchEnd of the last batch resolves once drained", async () => {
    const { batcher, of } = timed(4, { maxQueueTime: 0 });
    let stopping: Promise<void> | undefined;
    batcher.on("batchEnd", () => {
      stopping ??= batcher.stop();
    });
    const result = batcher.process(1);
    await advance(4);
    expect(await result).toBe(10);
    await stopping;
    expect(batcher.isRunning).toBe(false);
    expect(of("idle")).toHaveLength(1);
  });
});

describe("captureContext", () => {
  it("gives batchStart the contexts of the batch's callers, in order, skipping undefined", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 10 });
    let context: unknown;
    const capture = vi.fn(() => context);
    batcher[captureContext](capture);
    const results: Promise<number>[] = [];
    for (const [item, ctx] of [
      [1, "a"],
      [2, undefined],
      [3, { span: 3 }],
      [4, 0],
    ] as const) {
      context = ctx;
      results.push(batcher.process(item));
    }
    await advance(10);
    expect(capture).toHaveBeenCalledTimes(4);
    expect(of("batchStart").map((e) => e.contexts)).toEqual([["a", { span: 3 }, 0]]);
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40]);
  });

  it("gives one context per caller with dedupe, and the contexts of a retry's callers", async () => {
    let tries = 0;
    const { batcher, of } = timed(
      0,
      { maxQueueTime: 0, keyOf: (x) => x, dedupe: true, retry: { attempts: 2, delay: 10 } },
      (items) => {
        if (++tries === 1) throw new Error("once");
        return items.map((x) => x * 10);
      },
    );
    let context = "";
    batcher[captureContext](() => context);
    const results = ["c1", "c2", "c3"].map((ctx, i) => {
      context = ctx;
      return batcher.process(i === 2 ? 8 : 7);
    });
    await advance(10);
    expect(await Promise.all(results)).toEqual([70, 70, 80]);
    expect(of("batchStart").map((e) => [e.size, e.callers, e.contexts])).toEqual([
      [2, 3, ["c1", "c2", "c3"]],
      [2, 3, ["c1", "c2", "c3"]],
    ]);
  });

  it("does not break process() when the capture throws: that caller just has no context", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0 });
    let n = 0;
    batcher[captureContext](() => {
      n++;
      if (n === 2) throw new Error("capture failed");
      return `ctx${n}`;
    });
    const results = Promise.all([batcher.process(1), batcher.process(2), batcher.process(3)]);
    expect(await results).toEqual([10, 20, 30]);
    expect(of("batchStart").map((e) => e.contexts)).toEqual([["ctx1", "ctx3"]]);
  });

  it("is removed with undefined: contexts are undefined again, the capture is not called", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0 });
    const capture = vi.fn(() => "ctx");
    batcher[captureContext](capture);
    await batcher.process(1);
    batcher[captureContext](undefined);
    await batcher.process(2);
    expect(capture).toHaveBeenCalledTimes(1);
    expect(of("batchStart").map((e) => e.contexts)).toEqual([["ctx"], undefined]);
  });

  it("works with batchKey (the keyed fast path)", async () => {
    const { batcher, of } = timed(0, { maxQueueTime: 0, batchKey: (x) => x % 2 });
    batcher[captureContext](() => "k");
    const results = Promise.all([1, 2, 3].map((x) => batcher.process(x)));
    expect(await results).toEqual([10, 20, 30]);
    expect(of("batchStart").map((e) => [e.key, e.contexts])).toEqual([
      [1, ["k", "k"]],
      [0, ["k"]],
    ]);
  });

  it("rejects a capture that is not a function with a TypeError", () => {
    const { batcher } = timed(0);
    const install = batcher[captureContext].bind(batcher) as (capture: unknown) => void;
    expect(() => install("ctx")).toThrow(TypeError);
    expect(() => install(null)).toThrow(TypeError);
  });
});

describe("the batchScope hook", () => {
  it("wraps every batch function call with the batch's id, and is removed with undefined", async () => {
    const seen: string[] = [];
    const batcher = createBatcher(
      (items: number[]) => {
        seen.push(`run ${items.join(",")}`);
        return items.map((x) => x * 2);
      },
      { maxQueueTime: 0, maxBatchSize: 2 },
    );
    batcher[batchScope]((batchId, run) => {
      seen.push(`enter ${batchId}`);
      const result = run();
      seen.push(`leave ${batchId}`);
      return result;
    });
    expect(await Promise.all([1, 2, 3].map((x) => batcher.process(x)))).toEqual([2, 4, 6]);
    expect(seen).toEqual(["enter 1", "run 1,2", "leave 1", "enter 2", "run 3", "leave 2"]);
    batcher[batchScope](undefined);
    seen.length = 0;
    expect(await batcher.process(4)).toBe(8);
    expect(seen).toEqual(["run 4"]);
  });

  it("a scope that throws fails that batch alone; a bad scope is refused", async () => {
    const batcher = createBatcher((items: number[]) => items, { maxQueueTime: 0 });
    const boom = new Error("scope");
    batcher[batchScope](() => {
      throw boom;
    });
    await expect(batcher.process(1)).rejects.toBe(boom);
    batcher[batchScope](undefined);
    expect(await batcher.process(2)).toBe(2);
    const install = batcher[batchScope].bind(batcher) as (scope: unknown) => void;
    expect(() => install(42)).toThrow(TypeError);
  });
});
