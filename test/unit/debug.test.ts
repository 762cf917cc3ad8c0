/**
 * The flow as events: the `logger` option receives every batch cut, batch done and stop with exact
 * values; `NODE_DEBUG=async-batcher` prints the same on stderr; otherwise nothing is printed.
 */
import {
  type BatcherLogEvent,
  type BatcherOptions,
  BatcherStoppedError,
  BatchResultError,
  createBatcher,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { debugEnabled, formatLogEvent } from "../../src/internal/debug.js";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

let savedNodeDebug: string | undefined;

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  savedNodeDebug = process.env.NODE_DEBUG;
  delete process.env.NODE_DEBUG;
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  if (savedNodeDebug === undefined) delete process.env.NODE_DEBUG;
  else process.env.NODE_DEBUG = savedNodeDebug;
});

/** A batcher whose batches take `ms` (0: synchronous) and whose events are collected. */
function logged<R>(
  run: (batch: number[]) => R[] | undefined,
  ms: number,
  options: BatcherOptions = {},
) {
  const events: BatcherLogEvent[] = [];
  const batcher = createBatcher<number, R>(
    ms === 0
      ? (batch) => run(batch)
      : async (batch) => {
          await sleep(ms);
          return run(batch);
        },
    { name: "dbg", ...options, logger: (event) => events.push(event) },
  );
  return { batcher, events };
}

const cut = (batchId: number, size: number, reason: string, waitMs: number) => ({
  type: "batchCut",
  batcher: "dbg",
  batchId,
  size,
  reason,
  waitMs,
});

const done = (
  batchId: number,
  size: number,
  durationMs: number,
  resolved: number,
  extra: { outcome?: "ok" | "error"; error?: unknown } = {},
) => ({
  type: "batchDone",
  batcher: "dbg",
  batchId,
  size,
  durationMs,
  outcome: "ok",
  resolved,
  rejected: size - resolved,
  ...extra,
});

describe("the logger option", () => {
  it("receives a time cut and its batch done, with exact wait and duration", async () => {
    const bad = new Error("item 2");
    const { batcher, events } = logged((batch) => batch.map((x) => (x === 2 ? bad : x)), 30, {
      maxBatchSize: 3,
      maxQueueTime: 10,
    });
    const first = batcher.process(1);
    await advance(4);
    const second = batcher.process(2);
    const settled = Promise.allSettled([first, second]);
    await advance(5);
    expect(events).toEqual([]);
    await advance(1); // t=10: the oldest item has waited 10 ms
    expect(events).toStrictEqual([cut(1, 2, "time", 10)]);
    await advance(29);
    expect(events).toHaveLength(1);
    await advance(1); // t=40
    expect(events).toStrictEqual([cut(1, 2, "time", 10), done(1, 2, 30, 1)]);
    expect((await settled).map((result) => result.status)).toEqual(["fulfilled", "rejected"]);
    await batcher.stop();
  });

  it("receives size cuts, with the wait of each batch's oldest item", async () => {
    const { batcher, events } = logged((batch) => batch, 20, {
      maxBatchSize: 2,
      maxQueueTime: 100,
      concurrency: 2,
    });
    const results: Promise<number>[] = [];
    results.push(batcher.process(0));
    await advance(3);
    results.push(batcher.process(1)); // t=3: [0, 1] is full, 0 waited 3 ms
    await advance(0);
    results.push(batcher.process(2), batcher.process(3)); // t=3: [2, 3] full at once
    await advance(20);
    await advance(100);
    expect(await Promise.all(results)).toEqual(range(0, 4));
    expect(events).toStrictEqual([
      cut(1, 2, "size", 3),
      cut(2, 2, "size", 0),
      done(1, 2, 20, 2),
      done(2, 2, 20, 2),
    ]);
    await batcher.stop();
  });

  it("receives flush cuts", async () => {
    const { batcher, events } = logged((batch) => batch, 0, { maxQueueTime: 100 });
    const results = [batcher.process(1)];
    await advance(4);
    results.push(batcher.process(2));
    await batcher.flush();
    expect(await Promise.all(results)).toEqual([1, 2]);
    expect(events).toStrictEqual([cut(1, 2, "flush", 4), done(1, 2, 0, 2)]);
    await batcher.stop();
  });

  it("receives a graceful stop, then the stop cut", async () => {
    const { batcher, events } = logged((batch) => batch, 5, { maxQueueTime: 100 });
    const result = batcher.process(1);
    await advance(2);
    const stopping = batcher.stop();
    expect(events).toStrictEqual([
      { type: "stop", batcher: "dbg", force: false, queued: 1, inFlight: 0 },
      cut(1, 1, "stop", 2),
    ]);
    await advance(5);
    await stopping;
    expect(await result).toBe(1);
    expect(events.slice(2)).toStrictEqual([done(1, 1, 5, 1)]);
  });

  it("receives a force stop with what was queued and in flight", async () => {
    const { batcher, events } = logged((batch) => batch, 100, { maxBatchSize: 2 });
    const settled = Promise.allSettled(range(0, 5).map((i) => batcher.process(i)));
    await advance(10); // [0, 1] runs, [2, 3] and [4] wait for the one slot
    events.length = 0;
    await batcher.stop({ force: true });
    expect(events).toStrictEqual([
      { type: "stop", batcher: "dbg", force: true, queued: 3, inFlight: 2 },
      // The running batch ends with the stop: its callers were rejected.
      {
        type: "batchDone",
        batcher: "dbg",
        batchId: 1,
        size: 2,
        durationMs: 10,
        outcome: "error",
        resolved: 0,
        rejected: 2,
        error: expect.any(BatcherStoppedError),
      },
    ]);
    expect((await settled).every((result) => result.status === "rejected")).toBe(true);
    await advance(100); // the abandoned batch function finishes
  });

  it("receives the escalation when a graceful stop times out", async () => {
    const { batcher, events } = logged((batch) => batch, 1000, { maxBatchSize: 2 });
    const settled = Promise.allSettled(range(0, 3).map((i) => batcher.process(i)));
    await advance(0);
    events.length = 0;
    const stopping = batcher.stop({ timeout: 50 });
    await advance(50);
    await stopping;
    expect(events).toStrictEqual([
      { type: "stop", batcher: "dbg", force: false, queued: 1, inFlight: 2 },
      { type: "stop", batcher: "dbg", force: true, queued: 1, inFlight: 2 },
      {
        type: "batchDone",
        batcher: "dbg",
        batchId: 1,
        size: 2,
        durationMs: 50,
        outcome: "error",
        resolved: 0,
        rejected: 2,
        error: expect.any(BatcherStoppedError),
      },
    ]);
    expect((await settled).every((result) => result.status === "rejected")).toBe(true);
    await advance(1000);
  });

  describe("batchDone outcome", () => {
    const boom = new Error("boom");

    it("is error, with the error, when the batch function throws", async () => {
      const events: BatcherLogEvent[] = [];
      const batcher = createBatcher<number, number>(
        () => {
          throw boom;
        },
        { name: "dbg", logger: (event) => events.push(event) },
      );
      const settled = Promise.allSettled([batcher.process(1), batcher.process(2)]);
      await advance(10);
      await settled;
      expect(events.at(-1)).toStrictEqual(done(1, 2, 0, 0, { outcome: "error", error: boom }));
      await batcher.stop();
    });

    it("is error, with the error, when the batch function rejects", async () => {
      const events: BatcherLogEvent[] = [];
      const batcher = createBatcher<number, number>(
        async () => {
          await sleep(7);
          throw boom;
        },
        { name: "dbg", logger: (event) => events.push(event) },
      );
      const settled = Promise.allSettled([batcher.process(1), batcher.process(2)]);
      await advance(17);
      await settled;
      expect(events.at(-1)).toStrictEqual(done(1, 2, 7, 0, { outcome: "error", error: boom }));
      await batcher.stop();
    });

    it("is error when the batch function rejects with undefined", async () => {
      const events: BatcherLogEvent[] = [];
      const batcher = createBatcher<number, number>(() => Promise.reject(undefined), {
        name: "dbg",
        logger: (event) => events.push(event),
      });
      const settled = Promise.allSettled([batcher.process(1), batcher.process(2)]);
      await advance(10);
      expect((await settled).map((result) => result.status)).toEqual(["rejected", "rejected"]);
      expect(events.at(-1)).toMatchObject({
        type: "batchDone",
        outcome: "error",
        resolved: 0,
        rejected: 2,
      });
      await batcher.stop();
    });

    it("is error, with a BatchResultError, when the result does not fit", async () => {
      const { batcher, events } = logged(() => [1], 0);
      const settled = Promise.allSettled([batcher.process(1), batcher.process(2)]);
      await advance(10);
      await settled;
      const last = events.at(-1);
      expect(last).toMatchObject(done(1, 2, 0, 0, { outcome: "error" }));
      expect(last?.type === "batchDone" && last.error).toBeInstanceOf(BatchResultError);
      await batcher.stop();
    });

    it("is ok, without an error, when every item gets its own Error", async () => {
      const { batcher, events } = logged((batch) => batch.map(() => boom), 0);
      const settled = Promise.allSettled([batcher.process(1), batcher.process(2)]);
      await advance(10);
      await settled;
      expect(events.at(-1)).toStrictEqual(done(1, 2, 0, 0));
      await batcher.stop();
    });

    it("is ok when the batch function returns undefined", async () => {
      const { batcher, events } = logged(() => undefined, 0);
      const results = Promise.all([batcher.process(1), batcher.process(2)]);
      await advance(10);
      expect(await results).toEqual([undefined, undefined]);
      expect(events.at(-1)).toStrictEqual(done(1, 2, 0, 2));
      await batcher.stop();
    });
  });

  it("a throwing logger does not break the batcher", async () => {
    const logger = vi.fn(() => {
      throw new Error("logger failed");
    });
    const batcher = createBatcher((batch: number[]) => batch.map((x) => x + 1), {
      logger,
      maxBatchSize: 2,
    });
    const results = Promise.all(range(0, 5).map((i) => batcher.process(i)));
    await advance(10);
    expect(await results).toEqual(range(1, 6));
    await expect(batcher.stop()).resolves.toBeUndefined();
    // 3 cuts, 3 done, 1 stop: it kept being called after it threw
    expect(logger).toHaveBeenCalledTimes(7);
    expect(batcher.isRunning).toBe(false);
  });
});

describe("NODE_DEBUG", () => {
  let stderr: MockInstance<typeof console.error>;

  beforeEach(() => {
    stderr = vi.spyOn(console, "error").mockImplementation(() => {});
  });

  /** Runs two items through one timed batch and a graceful stop. */
  async function run(options: BatcherOptions = {}): Promise<string[]> {
    const batcher = createBatcher(
      async (batch: number[]) => {
        await sleep(30);
        return batch;
      },
      { name: "debugged", ...options },
    );
    const results = Promise.all([batcher.process(1), batcher.process(2)]);
    await advance(40);
    expect(await results).toEqual([1, 2]);
    await batcher.stop();
    for (const call of stderr.mock.calls) {
      expect(call).toHaveLength(1);
      expect(typeof call[0]).toBe("string");
    }
    return stderr.mock.calls.map((call) => String(call[0]));
  }

  it("=async-batcher prints each cut, each batch done and the stop on stderr", async () => {
    process.env.NODE_DEBUG = "async-batcher";
    const lines = await run();
    expect(lines).toHaveLength(3);
    const [cutLine, doneLine, stopLine] = lines;
    for (const line of lines) {
      expect(line).toMatch(/^ASYNC-BATCHER\b/);
      expect(line).toContain(String(process.pid));
      expect(line).toContain("debugged");
      expect(line).not.toContain("\n");
    }
    expect(cutLine).toMatch(/cut/);
    expect(cutLine).toMatch(/size=2\b/);
    expect(cutLine).toMatch(/reason=time\b/);
    expect(doneLine).toMatch(/done/);
    expect(doneLine).toMatch(/duration=30(\.0)?ms/);
    expect(doneLine).toMatch(/outcome=ok\b/);
    expect(stopLine).toMatch(/stop/);
    expect(stopLine).toMatch(/graceful/);
  });

  it("prints the failed outcome of a batch", async () => {
    process.env.NODE_DEBUG = "async-batcher";
    const batcher = createBatcher<number, number>(() => {
      throw new Error("boom");
    });
    const failed = batcher.process(1);
    const settled = Promise.allSettled([failed]);
    await advance(10);
    await settled;
    await expect(failed).rejects.toThrow("boom");
    await batcher.stop();
    expect(stderr.mock.calls.map((call) => String(call[0])).join("\n")).toMatch(/outcome=error\b/);
  });

  it.each(["async-*", "*", "ASYNC-BATCHER", "http,async-batcher", "net async-batcher fs"])(
    "=%s prints too",
    async (value) => {
      process.env.NODE_DEBUG = value;
      expect(await run()).toHaveLength(3);
    },
  );

  it.each([undefined, "", "http", "async", "batcher", "async-batcher-extra", "xasync-batcher"])(
    "=%s prints nothing",
    async (value) => {
      if (value !== undefined) process.env.NODE_DEBUG = value;
      const console_ = ["log", "info", "warn", "debug"] as const;
      const others = console_.map((method) =>
        vi.spyOn(console, method).mockImplementation(() => {}),
      );
      expect(await run()).toEqual([]);
      for (const spy of others) expect(spy).not.toHaveBeenCalled();
    },
  );

  it("prints and calls the logger when both are set", async () => {
    process.env.NODE_DEBUG = "async-batcher";
    const events: BatcherLogEvent[] = [];
    const lines = await run({ logger: (event) => events.push(event) });
    expect(events.map((event) => event.type)).toEqual(["batchCut", "batchDone", "stop"]);
    expect(lines).toEqual(events.map(formatLogEvent));
  });
});

describe("debugEnabled", () => {
  it.each([
    "async-batcher",
    "ASYNC-BATCHER",
    "Async-Batcher",
    "async-*",
    "*",
    "*-batcher",
    "async*batcher",
    "http,async-batcher",
    "http, async-batcher",
    "http async-batcher net",
  ])("is true for %j", (value) => {
    expect(debugEnabled(value)).toBe(true);
  });

  it.each([
    "",
    " ",
    ",",
    "http",
    "async",
    "batcher",
    "async-batcherx",
    "async-batcher-extra",
    "xasync-batcher",
    "async-batcher.",
    "async.batcher",
    "async?batcher",
    "async-batche[r]",
  ])("is false for %j", (value) => {
    expect(debugEnabled(value)).toBe(false);
  });

  it("reads process.env.NODE_DEBUG by default", () => {
    process.env.NODE_DEBUG = "async-batcher";
    expect(debugEnabled()).toBe(true);
    process.env.NODE_DEBUG = "http";
    expect(debugEnabled()).toBe(false);
    delete process.env.NODE_DEBUG;
    expect(debugEnabled()).toBe(false);
  });
});

describe("formatLogEvent", () => {
  const prefix = `ASYNC-BATCHER ${process.pid}: users`;

  it("formats a batch cut on one line with its size, reason and wait", () => {
    const line = formatLogEvent({
      type: "batchCut",
      batcher: "users",
      batchId: 7,
      size: 5,
      reason: "flush",
      waitMs: 2.5,
    });
    expect(line.startsWith(prefix)).toBe(true);
    expect(line).toMatch(/\bbatch 7\b/);
    expect(line).toMatch(/size=5\b/);
    expect(line).toMatch(/reason=flush\b/);
    expect(line).toMatch(/2\.5ms/);
    expect(line).not.toContain("\n");
    expect(line).not.toMatch(/key=|weight=/);
  });

  it("shows a keyed, weighted batch's key and weight", () => {
    const line = formatLogEvent({
      type: "batchCut",
      batcher: "writes",
      batchId: 3,
      size: 2,
      key: "orders",
      weight: 1500,
      reason: "weight",
      waitMs: 1,
    });
    expect(line).toMatch(/key="orders"/);
    expect(line).toMatch(/weight=1500\b/);
    expect(line).toMatch(/reason=weight\b/);
    const numbered = formatLogEvent({
      type: "batchCut",
      batcher: "writes",
      batchId: 4,
      size: 1,
      key: 7,
      reason: "size",
      waitMs: 0,
    });
    expect(numbered).toMatch(/key=7\b/);
  });

  it("formats a batch done with its duration, outcome and counts", () => {
    const line = formatLogEvent({
      type: "batchDone",
      batcher: "users",
      batchId: 3,
      size: 4,
      durationMs: 12,
      outcome: "error",
      resolved: 0,
      rejected: 4,
      error: new Error("boom\nwith a second line"),
    });
    expect(line.startsWith(prefix)).toBe(true);
    expect(line).toMatch(/\bbatch 3\b/);
    expect(line).toMatch(/size=4\b/);
    expect(line).toMatch(/12(\.0)?ms/);
    expect(line).toMatch(/outcome=error\b/);
    expect(line).toMatch(/resolved=0\b/);
    expect(line).toMatch(/rejected=4\b/);
    expect(line).not.toContain("\n");
  });

  it.each([
    { force: false, word: "graceful" },
    { force: true, word: "force" },
  ])("formats a $word stop with what was queued and in flight", ({ force, word }) => {
    const line = formatLogEvent({ type: "stop", batcher: "users", force, queued: 9, inFlight: 2 });
    expect(line.startsWith(prefix)).toBe(true);
    expect(line).toContain(word);
    expect(line).toMatch(/queued=9\b/);
    expect(line).toMatch(/inFlight=2\b/);
  });
});
