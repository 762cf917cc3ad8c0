/**
 * `weigh` + `maxBatchWeight`: validation, where batches are cut, the "weight" cut reason, how
 * weights combine with maxBatchSize, priorities, concurrency and aborts, and what happens to items
 * whose weight is too large or unusable.
 */
import {
  type BatchContext,
  type BatcherLogEvent,
  type BatcherOptions,
  type BatchResult,
  createBatcher,
  InvalidInputError,
  ItemTooLargeError,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** An item with a name (to read batch contents) and its weight. */
interface Item {
  id: string;
  w: number;
}

const item = (id: string, w: number): Item => ({ id, w });

type Cut = Extract<BatcherLogEvent, { type: "batchCut" }>;

interface Call {
  ids: string[];
  context: BatchContext;
  /** Settles every caller of the batch with its own item. */
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * A batcher over `Item`s weighed by their `w`, whose batches stay in flight until the test settles
 * them through `calls`; the batchCut events are recorded in `cuts`.
 */
function weighted(options: Omit<BatcherOptions<Item, Item>, "logger">) {
  const calls: Call[] = [];
  const cuts: Cut[] = [];
  let running = 0;
  let maxRunning = 0;
  const batcher = createBatcher<Item, Item>(
    (items, context) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const copy = [...items];
      return new Promise<BatchResult<Item>>((resolve, reject) => {
        calls.push({
          ids: copy.map((i) => i.id),
          context,
          resolve: () => resolve(copy),
          reject,
        });
      }).finally(() => {
        running--;
      });
    },
    {
      weigh: (i) => i.w,
      ...options,
      logger: (event) => {
        if (event.type === "batchCut") cuts.push(event);
      },
    },
  );
  return { batcher, calls, cuts, maxRunning: () => maxRunning };
}

const noop = () => {};

describe("validation", () => {
  const weigh = (x: number) => x;

  it.each([1, 0.5, 1e-9, 1000, Number.MAX_VALUE, Infinity])(
    "accepts maxBatchWeight %s with weigh",
    async (maxBatchWeight) => {
      const batcher = createBatcher(noop, { weigh, maxBatchWeight });
      await batcher.stop();
    },
  );

  it.each([0, -0, -1, -0.5, -Infinity, Number.NaN])(
    "RangeError for maxBatchWeight %s",
    (maxBatchWeight) => {
      expect(() => createBatcher(noop, { weigh, maxBatchWeight })).toThrow(RangeError);
    },
  );

  it.each(["10", null, true, {}, [10], 10n, () => 10])(
    "TypeError for maxBatchWeight %s",
    (maxBatchWeight) => {
      expect(() =>
        createBatcher(noop, { weigh, maxBatchWeight: maxBatchWeight as unknown as number }),
      ).toThrow(TypeError);
    },
  );

  it("TypeError for maxBatchWeight without weigh, even a valid one", () => {
    for (const maxBatchWeight of [10, 0.5, Infinity]) {
      const construct = () => createBatcher<number>(noop, { maxBatchWeight });
      expect(construct).toThrow(TypeError);
      expect(construct).not.toThrow(RangeError);
    }
  });

  it.each(["x", 5, null, {}, [() => 1], true])(
    "TypeError when weigh is %s, not a function",
    (bad) => {
      expect(() =>
        createBatcher(noop, { weigh: bad as unknown as (item: number) => number }),
      ).toThrow(TypeError);
      expect(() =>
        createBatcher(noop, {
          weigh: bad as unknown as (item: number) => number,
          maxBatchWeight: 10,
        }),
      ).toThrow(TypeError);
    },
  );

  it("accepts weigh without maxBatchWeight: no cut by weight, but cuts log their weight", async () => {
    const { batcher, calls, cuts } = weighted({ maxQueueTime: 100 });
    const results = Promise.all([item("a", 1e6), item("b", 1e9)].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.ids)).toEqual([["a", "b"]]);
    expect(cuts).toMatchObject([{ reason: "time", size: 2, weight: 1e6 + 1e9 }]);
    calls[0]?.resolve();
    expect((await results).map((i) => i.id)).toEqual(["a", "b"]);
    await batcher.stop();
  });

  it("logs no weight without weigh", async () => {
    const cuts: Cut[] = [];
    const batcher = createBatcher((xs: number[]) => xs, {
      maxQueueTime: 5,
      logger: (event) => {
        if (event.type === "batchCut") cuts.push(event);
      },
    });
    const result = batcher.process(1);
    await vi.advanceTimersByTimeAsync(5);
    await expect(result).resolves.toBe(1);
    expect(cuts).toHaveLength(1);
    expect(cuts[0]?.weight).toBeUndefined();
    await batcher.stop();
  });
});

describe("where batches are cut", () => {
  it("cuts before the item that would push the batch over, as items arrive", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: Infinity,
    });
    const items = [
      item("a", 3),
      item("b", 4),
      item("c", 2),
      item("d", 5),
      item("e", 6),
      item("f", 1),
    ];
    const results = Promise.all(items.map((i) => batcher.process(i)));
    await runJobs();
    // a+b+c = 9, d would make 14; d+e would make 11; e+f = 7 is not full and waits.
    expect(calls.map((c) => c.ids)).toEqual([["a", "b", "c"], ["d"]]);
    expect(cuts.map((c) => [c.reason, c.weight])).toEqual([
      ["weight", 9],
      ["weight", 5],
    ]);
    expect(batcher.queueSize).toBe(2);
    expect(Date.now()).toBe(0);

    const flushed = batcher.flush();
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["a", "b", "c"], ["d"], ["e", "f"]]);
    expect(cuts[2]).toMatchObject({ reason: "flush", weight: 7, size: 2 });
    for (const call of calls) call.resolve();
    await flushed;
    expect((await results).map((i) => i.id)).toEqual(["a", "b", "c", "d", "e", "f"]);
    await batcher.stop();
  });

  it("cuts a queue waiting for a slot into batches in order; a lighter later item does not jump ahead", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    // The only slot is busy: everything below queues up.
    const busy = batcher.process(item("x", 10));
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["x"]]);

    const items = [
      item("a", 3),
      item("b", 4),
      item("c", 2),
      item("d", 5),
      item("e", 6),
      item("f", 1),
    ];
    const results = Promise.all(items.map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(6);

    calls[0]?.resolve();
    await runJobs();
    expect(calls[1]?.ids).toEqual(["a", "b", "c"]);
    calls[1]?.resolve();
    await runJobs();
    // d + e = 11 does not fit, and f (which would) does not jump over e.
    expect(calls[2]?.ids).toEqual(["d"]);
    calls[2]?.resolve();
    await runJobs();
    // e + f = 7: not full, so it waits for its time.
    expect(calls).toHaveLength(3);
    expect(batcher.queueSize).toBe(2);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[3]?.ids).toEqual(["e", "f"]);
    expect(cuts.map((c) => [c.reason, c.weight])).toEqual([
      ["weight", 10],
      ["weight", 9],
      ["weight", 5],
      ["time", 7],
    ]);
    calls[3]?.resolve();
    await expect(busy).resolves.toEqual(item("x", 10));
    expect((await results).map((i) => i.id)).toEqual(["a", "b", "c", "d", "e", "f"]);
    await batcher.stop();
  });

  it("cuts a lane at once when its weight reaches maxBatchWeight exactly, and logs the weight", async () => {
    const { batcher, calls, cuts } = weighted({ maxBatchWeight: 10, maxQueueTime: 1000 });
    const a = batcher.process(item("a", 4));
    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toHaveLength(0);
    const b = batcher.process(item("b", 6));
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["a", "b"]]);
    expect(calls[0]?.context.batchId).toBe(1);
    expect(cuts).toHaveLength(1);
    expect(cuts[0]).toMatchObject({ type: "batchCut", reason: "weight", weight: 10, size: 2 });
    expect(cuts[0]?.waitMs).toBe(50);
    expect(Date.now()).toBe(50);
    calls[0]?.resolve();
    await expect(a).resolves.toEqual(item("a", 4));
    await expect(b).resolves.toEqual(item("b", 6));
    await batcher.stop();
  });

  it("does not cut a lane whose weight stays below maxBatchWeight before its time", async () => {
    const { batcher, calls, cuts } = weighted({ maxBatchWeight: 10, maxQueueTime: 1000 });
    const results = Promise.all(
      [item("a", 4), item("b", 5.5), item("c", 0.25)].map((i) => batcher.process(i)),
    );
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.ids)).toEqual([["a", "b", "c"]]);
    expect(cuts).toMatchObject([{ reason: "time", weight: 9.75 }]);
    calls[0]?.resolve();
    await results;
    await batcher.stop();
  });

  it("still applies maxBatchSize: a batch full by count is cut by size", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 100,
      maxBatchSize: 3,
      maxQueueTime: 1000,
      concurrency: Infinity,
    });
    const results = Promise.all(
      [item("a", 40), item("b", 40), item("c", 10), item("d", 10), item("e", 10)].map((i) =>
        batcher.process(i),
      ),
    );
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["a", "b", "c"]]);
    expect(cuts).toMatchObject([{ reason: "size", size: 3, weight: 90 }]);
    expect(batcher.queueSize).toBe(2);

    const more = batcher.process(item("f", 10));
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([
      ["a", "b", "c"],
      ["d", "e", "f"],
    ]);
    expect(cuts[1]).toMatchObject({ reason: "size", size: 3, weight: 30 });
    for (const call of calls) call.resolve();
    await results;
    await more;
    await batcher.stop();
  });

  it("still applies maxBatchSize when a slot frees: a batch holds at most maxBatchSize items", async () => {
    const { batcher, calls } = weighted({
      maxBatchWeight: 100,
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 100));
    await runJobs();
    const results = Promise.all(
      ["a", "b", "c", "d", "e"].map((id) => batcher.process(item(id, 1))),
    );
    await runJobs();
    expect(calls).toHaveLength(1);
    for (const expected of [
      ["a", "b"],
      ["c", "d"],
    ]) {
      calls.at(-1)?.resolve();
      await runJobs();
      expect(calls.at(-1)?.ids).toEqual(expected);
    }
    calls.at(-1)?.resolve();
    await runJobs();
    expect(calls).toHaveLength(3); // e alone is not due yet
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.at(-1)?.ids).toEqual(["e"]);
    calls.at(-1)?.resolve();
    await busy;
    await results;
    await batcher.stop();
  });
});

describe("weights with flush and stop", () => {
  it("flush() cuts everything queued into batches that each fit maxBatchWeight", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();
    const results = Promise.all(
      [item("a", 6), item("b", 6), item("c", 3), item("d", 2)].map((i) => batcher.process(i)),
    );
    const flushed = track(batcher.flush());
    await runJobs();
    for (const expected of [["a"], ["b", "c"], ["d"]]) {
      calls.at(-1)?.resolve();
      await runJobs();
      expect(calls.at(-1)?.ids).toEqual(expected);
      expect(flushed.settled).toBe(false);
    }
    calls.at(-1)?.resolve();
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(Date.now()).toBe(0);
    // a + b = 12: a is cut by weight; b + c + d = 11, b + c = 9 is cut by weight; d by the flush.
    expect(cuts.map((c) => [c.reason, c.weight])).toEqual([
      ["weight", 10],
      ["weight", 6],
      ["weight", 9],
      ["flush", 2],
    ]);
    await busy;
    await results;
    await batcher.stop();
  });

  it("a graceful stop drains the queue in batches that each fit maxBatchWeight", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();
    const results = Promise.all(
      [item("a", 7), item("b", 7), item("c", 1)].map((i) => batcher.process(i)),
    );
    const stopped = track(batcher.stop());
    for (const expected of [["a"], ["b", "c"]]) {
      calls.at(-1)?.resolve();
      await runJobs();
      expect(calls.at(-1)?.ids).toEqual(expected);
      expect(stopped.settled).toBe(false);
    }
    calls.at(-1)?.resolve();
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(cuts.map((c) => [c.reason, c.weight])).toEqual([
      ["weight", 10],
      ["weight", 7],
      ["stop", 8],
    ]);
    await busy;
    expect((await results).map((i) => i.id)).toEqual(["a", "b", "c"]);
  });
});

describe("zero and fractional weights", () => {
  it("zero-weight items never fill a lane by weight", async () => {
    const { batcher, calls, cuts } = weighted({ maxBatchWeight: 1, maxQueueTime: 100 });
    const ids = Array.from({ length: 50 }, (_, i) => `z${i}`);
    const results = Promise.all(ids.map((id) => batcher.process(item(id, 0))));
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.ids)).toEqual([ids]);
    expect(cuts).toMatchObject([{ reason: "time", weight: 0, size: 50 }]);
    calls[0]?.resolve();
    expect(await results).toHaveLength(50);
    await batcher.stop();
  });

  it("zero-weight items ride along with a full batch: they never push it over", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();
    const results = Promise.all(
      [item("h", 10), item("z1", 0), item("z2", 0), item("a", 1), item("z3", 0)].map((i) =>
        batcher.process(i),
      ),
    );
    await runJobs();
    calls[0]?.resolve();
    await runJobs();
    expect(calls[1]?.ids).toEqual(["h", "z1", "z2"]);
    expect(cuts[1]).toMatchObject({ reason: "weight", weight: 10, size: 3 });
    calls[1]?.resolve();
    await runJobs();
    expect(calls).toHaveLength(2); // a + z3 weigh 1: not due
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[2]?.ids).toEqual(["a", "z3"]);
    calls[2]?.resolve();
    await busy;
    await results;
    await batcher.stop();
  });

  it("zero-weight items before a heavy one go in its batch", async () => {
    const { batcher, calls, cuts } = weighted({ maxBatchWeight: 10, maxQueueTime: 1000 });
    const results = Promise.all(
      [item("z1", 0), item("z2", 0), item("h", 10)].map((i) => batcher.process(i)),
    );
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["z1", "z2", "h"]]);
    expect(cuts).toMatchObject([{ reason: "weight", weight: 10, size: 3 }]);
    calls[0]?.resolve();
    await results;
    await batcher.stop();
  });

  it("handles fractional weights and a fractional maxBatchWeight", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 1.5,
      maxQueueTime: 1000,
      concurrency: Infinity,
    });
    const results = Promise.all(
      [
        item("a", 0.5),
        item("b", 0.25),
        item("c", 0.75), // reaches 1.5 exactly
        item("d", 1.25),
        item("e", 0.5), // 1.75 would be over: d alone
        item("f", 0.125),
      ].map((i) => batcher.process(i)),
    );
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["a", "b", "c"], ["d"]]);
    expect(cuts.map((c) => [c.reason, c.weight])).toEqual([
      ["weight", 1.5],
      ["weight", 1.25],
    ]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[2]?.ids).toEqual(["e", "f"]);
    expect(cuts[2]).toMatchObject({ reason: "time", weight: 0.625 });
    for (const call of calls) call.resolve();
    await results;
    await batcher.stop();
  });

  it("handles decimal fractions that binary floats cannot hold exactly", async () => {
    const { batcher, calls, cuts } = weighted({ maxBatchWeight: 1, maxQueueTime: 1000 });
    const results = Promise.all(["a", "b", "c", "d"].map((id) => batcher.process(item(id, 0.3))));
    await runJobs();
    // 0.3 * 3 fits under 1; the fourth would push it over.
    expect(calls.map((c) => c.ids)).toEqual([["a", "b", "c"]]);
    expect(cuts[0]?.reason).toBe("weight");
    expect(cuts[0]?.weight).toBeCloseTo(0.9, 9);
    calls[0]?.resolve();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[1]?.ids).toEqual(["d"]);
    expect(cuts[1]?.weight).toBeCloseTo(0.3, 9);
    calls[1]?.resolve();
    await results;
    await batcher.stop();
  });
});

describe("items that cannot be weighed or batched", () => {
  it("rejects an item heavier than maxBatchWeight with ItemTooLargeError, and queues nothing", async () => {
    const { batcher, calls } = weighted({ maxBatchWeight: 10, maxQueueTime: 100 });
    const heavy = batcher.process(item("heavy", 10.5));
    expect(batcher.queueSize).toBe(0);
    await expect(heavy).rejects.toBeInstanceOf(ItemTooLargeError);
    await expect(heavy).rejects.toMatchObject({
      code: "ERR_ITEM_TOO_LARGE",
      weight: 10.5,
      maxBatchWeight: 10,
    });
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(true);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(0);
    await batcher.stop();
  });

  it("accepts an item that weighs exactly maxBatchWeight, in a batch of its own", async () => {
    const { batcher, calls, cuts } = weighted({ maxBatchWeight: 10, maxQueueTime: 100 });
    const before = batcher.process(item("a", 1));
    const exact = batcher.process(item("exact", 10));
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["a"]]);
    expect(cuts[0]).toMatchObject({ reason: "weight", weight: 1 });
    calls[0]?.resolve();
    await runJobs();
    expect(calls[1]?.ids).toEqual(["exact"]);
    expect(cuts[1]).toMatchObject({ reason: "weight", weight: 10 });
    calls[1]?.resolve();
    await expect(before).resolves.toEqual(item("a", 1));
    await expect(exact).resolves.toEqual(item("exact", 10));
    await batcher.stop();
  });

  it("rejects only the heavy item: the others around it are batched as usual", async () => {
    const { batcher, calls, cuts } = weighted({ maxBatchWeight: 10, maxQueueTime: 100 });
    const a = batcher.process(item("a", 2));
    const heavy = batcher.process(item("heavy", 11));
    const b = batcher.process(item("b", 3));
    await expect(heavy).rejects.toMatchObject({ weight: 11, maxBatchWeight: 10 });
    expect(batcher.queueSize).toBe(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.ids)).toEqual([["a", "b"]]);
    expect(cuts[0]).toMatchObject({ reason: "time", weight: 5, size: 2 });
    calls[0]?.resolve();
    await expect(a).resolves.toEqual(item("a", 2));
    await expect(b).resolves.toEqual(item("b", 3));
    await batcher.stop();
  });

  it("rejects with what weigh threw, the same object; nothing else is affected", async () => {
    const thrown = new Error("cannot weigh");
    const { batcher, calls } = weighted({
      weigh: (i) => {
        if (i.id === "bad") throw thrown;
        return i.w;
      },
      maxBatchWeight: 10,
      maxQueueTime: 100,
    });
    const a = batcher.process(item("a", 4));
    const bad = batcher.process(item("bad", 1));
    const b = batcher.process(item("b", 5));
    await expect(bad).rejects.toBe(thrown);
    expect(batcher.queueSize).toBe(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.ids)).toEqual([["a", "b"]]);
    calls[0]?.resolve();
    await expect(a).resolves.toEqual(item("a", 4));
    await expect(b).resolves.toEqual(item("b", 5));
    await batcher.stop();
  });

  it("rejects with a thrown non-Error value as is", async () => {
    const { batcher, calls } = weighted({
      weigh: (i) => {
        if (i.id === "bad") throw "a string";
        return i.w;
      },
      maxQueueTime: 100,
    });
    const bad = batcher.process(item("bad", 1));
    const ok = batcher.process(item("ok", 1));
    await expect(bad).rejects.toBe("a string");
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.ids)).toEqual([["ok"]]);
    calls[0]?.resolve();
    await expect(ok).resolves.toEqual(item("ok", 1));
    await batcher.stop();
  });

  it.each([
    { label: "NaN", value: Number.NaN },
    { label: "-1", value: -1 },
    { label: "-0.001", value: -0.001 },
    { label: "Infinity", value: Infinity },
    { label: "-Infinity", value: -Infinity },
    { label: '"3"', value: "3" },
    { label: "null", value: null },
    { label: "undefined", value: undefined },
    { label: "3n", value: 3n },
    { label: "an object", value: { valueOf: () => 3 } },
    { label: "true", value: true },
  ])(
    "rejects with InvalidInputError (reason weight) when weigh returns $label",
    async ({ value }) => {
      const { batcher, calls } = weighted({
        weigh: (i) => (i.id === "bad" ? (value as number) : i.w),
        maxBatchWeight: 10,
        maxQueueTime: 100,
      });
      const a = batcher.process(item("a", 4));
      const bad = batcher.process(item("bad", 1));
      const b = batcher.process(item("b", 5));
      await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
      await expect(bad).rejects.toMatchObject({ code: "ERR_INVALID_INPUT", reason: "weight" });
      expect(batcher.queueSize).toBe(2);
      await vi.advanceTimersByTimeAsync(100);
      expect(calls.map((c) => c.ids)).toEqual([["a", "b"]]);
      calls[0]?.resolve();
      await expect(a).resolves.toEqual(item("a", 4));
      await expect(b).resolves.toEqual(item("b", 5));
      await batcher.stop();
    },
  );

  it("rejects unusable weights without maxBatchWeight too", async () => {
    const { batcher, calls } = weighted({
      weigh: (i) => (i.id === "bad" ? Number.NaN : i.w),
      maxQueueTime: 100,
    });
    const bad = batcher.process(item("bad", 1));
    const ok = batcher.process(item("ok", 1));
    await expect(bad).rejects.toMatchObject({ code: "ERR_INVALID_INPUT", reason: "weight" });
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.ids)).toEqual([["ok"]]);
    calls[0]?.resolve();
    await ok;
    await batcher.stop();
  });

  it("accepts -0 as a weight of zero", async () => {
    const { batcher, calls } = weighted({ maxBatchWeight: 10, maxQueueTime: 100 });
    const zero = batcher.process(item("z", -0));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.ids)).toEqual([["z"]]);
    calls[0]?.resolve();
    await expect(zero).resolves.toMatchObject({ id: "z" });
    await batcher.stop();
  });
});

describe("weigh is called exactly once per item", () => {
  it("whatever cuts the batches: weight, size, time, flush, stop", async () => {
    const weigh = vi.fn((i: Item) => i.w);
    const { batcher, calls, cuts } = weighted({
      weigh,
      maxBatchWeight: 10,
      maxBatchSize: 3,
      maxQueueTime: 100,
      concurrency: 1,
    });
    const items = [item("a", 6), item("b", 6), item("c", 1), item("d", 1), item("e", 1)];
    const results = Promise.all(items.map((i) => batcher.process(i)));
    expect(weigh).toHaveBeenCalledTimes(5);
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["a"]]); // a + b = 12
    calls[0]?.resolve();
    await runJobs();
    expect(calls[1]?.ids).toEqual(["b", "c", "d"]); // full by size
    calls[1]?.resolve();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[2]?.ids).toEqual(["e"]);
    calls[2]?.resolve();
    await runJobs();

    const late = batcher.process(item("f", 3));
    const flushed = batcher.flush();
    await runJobs();
    expect(calls[3]?.ids).toEqual(["f"]);
    calls[3]?.resolve();
    await flushed;

    const last = batcher.process(item("g", 3));
    const stopped = batcher.stop();
    await runJobs();
    expect(calls[4]?.ids).toEqual(["g"]);
    calls[4]?.resolve();
    await stopped;

    expect(cuts.map((c) => c.reason)).toEqual(["weight", "size", "time", "flush", "stop"]);
    expect((await results).map((i) => i.id)).toEqual(["a", "b", "c", "d", "e"]);
    await late;
    await last;
    expect(weigh.mock.calls.map(([i]) => i.id)).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
  });

  it("once for an item that waited for room with onQueueFull wait", async () => {
    const weigh = vi.fn((i: Item) => i.w);
    const { batcher, calls } = weighted({
      weigh,
      maxBatchWeight: 10,
      maxQueueTime: 100,
      maxQueueSize: 1,
      onQueueFull: "wait",
    });
    const a = batcher.process(item("a", 3));
    const b = batcher.process(item("b", 3));
    expect(batcher.waiting).toBe(1);
    expect(weigh).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(100); // a is cut; b is admitted
    expect(batcher.waiting).toBe(0);
    calls[0]?.resolve();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.ids)).toEqual([["a"], ["b"]]);
    calls[1]?.resolve();
    await a;
    await b;
    expect(weigh.mock.calls.map(([i]) => i.id)).toEqual(["a", "b"]);
    await batcher.stop();
  });
});

describe("weights with priorities", () => {
  it("a lighter low-priority item does not jump over a heavier high-priority one", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();
    expect(calls).toHaveLength(1);

    const low = batcher.process(item("low", 2), { priority: 0 });
    const high1 = batcher.process(item("high1", 5), { priority: 1 });
    const high2 = batcher.process(item("high2", 6), { priority: 1 });
    await runJobs();
    expect(batcher.queueSize).toBe(3);

    calls[0]?.resolve();
    await runJobs();
    // high1 + high2 = 11: the batch stops before high2; low (which would fit) stays behind it.
    expect(calls[1]?.ids).toEqual(["high1"]);
    expect(cuts[1]).toMatchObject({ reason: "weight", weight: 5, size: 1 });
    calls[1]?.resolve();
    await runJobs();
    expect(calls).toHaveLength(2); // high2 + low = 8: not full

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[2]?.ids).toEqual(["high2", "low"]);
    expect(cuts[2]).toMatchObject({ reason: "time", weight: 8 });
    calls[2]?.resolve();
    await busy;
    await expect(low).resolves.toMatchObject({ id: "low" });
    await expect(high1).resolves.toMatchObject({ id: "high1" });
    await expect(high2).resolves.toMatchObject({ id: "high2" });
    await batcher.stop();
  });

  it("a heavier high-priority item goes first even when it arrived after lighter ones", async () => {
    const { batcher, calls } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();
    const results = Promise.all([
      batcher.process(item("l1", 3)),
      batcher.process(item("l2", 3)),
      batcher.process(item("h", 8), { priority: 5 }),
    ]);
    await runJobs();
    calls[0]?.resolve();
    await runJobs();
    expect(calls[1]?.ids).toEqual(["h"]); // h + l1 = 11
    calls[1]?.resolve();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[2]?.ids).toEqual(["l1", "l2"]);
    calls[2]?.resolve();
    await busy;
    await results;
    await batcher.stop();
  });
});

describe("weights with concurrency", () => {
  it("queued weight beyond one batch forms several batches, in order, up to the free slots", async () => {
    const { batcher, calls, cuts, maxRunning } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 2,
    });
    // Two slots, both taken by full batches.
    const busy = Promise.all([item("x", 10), item("y", 10)].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls.map((c) => c.ids)).toEqual([["x"], ["y"]]);

    const items = [
      item("a", 4),
      item("b", 4),
      item("c", 4),
      item("d", 3),
      item("e", 3),
      item("f", 5),
      item("g", 6),
      item("h", 1),
    ];
    const results = Promise.all(items.map((i) => batcher.process(i)));
    await runJobs();
    expect(batcher.queueSize).toBe(8);

    // One slot frees: one batch; the other slot frees: the next batch.
    calls[0]?.resolve();
    await runJobs();
    expect(calls[2]?.ids).toEqual(["a", "b"]);
    expect(calls).toHaveLength(3);
    calls[1]?.resolve();
    await runJobs();
    expect(calls[3]?.ids).toEqual(["c", "d", "e"]);
    expect(calls).toHaveLength(4);
    calls[2]?.resolve();
    await runJobs();
    expect(calls[4]?.ids).toEqual(["f"]); // f + g = 11
    calls[3]?.resolve();
    await runJobs();
    // g + h = 7 is not full: it waits for its time although a slot is free.
    expect(calls).toHaveLength(5);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[5]?.ids).toEqual(["g", "h"]);
    expect(cuts.map((c) => [c.reason, c.weight])).toEqual([
      ["weight", 10],
      ["weight", 10],
      ["weight", 8],
      ["weight", 10],
      ["weight", 5],
      ["time", 7],
    ]);
    expect(maxRunning()).toBe(2);
    for (const call of calls) call.resolve();
    await busy;
    expect((await results).map((i) => i.id)).toEqual(items.map((i) => i.id));
    await batcher.stop();
  });

  it("with free slots, cuts several full batches at once", async () => {
    const { batcher, calls, maxRunning } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 3,
    });
    const results = Promise.all(
      ["a", "b", "c", "d", "e", "f", "g"].map((id) => batcher.process(item(id, 5))),
    );
    await runJobs();
    // a+b, c+d, e+f: three full batches for three slots; g waits.
    expect(calls.map((c) => c.ids)).toEqual([
      ["a", "b"],
      ["c", "d"],
      ["e", "f"],
    ]);
    expect(batcher.queueSize).toBe(1);
    expect(maxRunning()).toBe(3);
    for (const call of calls) call.resolve();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[3]?.ids).toEqual(["g"]);
    calls[3]?.resolve();
    await results;
    await batcher.stop();
  });
});

describe("weights with aborts", () => {
  it("an aborted item's weight no longer counts: a lane full by weight is no longer due", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();
    expect(calls).toHaveLength(1);

    const controller = new AbortController();
    const a = batcher.process(item("a", 6), { signal: controller.signal });
    const b = batcher.process(item("b", 5)); // 11: full by weight, waiting for the slot
    await vi.advanceTimersByTimeAsync(100);
    expect(batcher.queueSize).toBe(2);

    const reason = new Error("no longer wanted");
    controller.abort(reason);
    await expect(a).rejects.toBe(reason);
    expect(batcher.queueSize).toBe(1);

    calls[0]?.resolve();
    await runJobs();
    // b alone weighs 5: the slot is free but the lane is not due.
    expect(calls).toHaveLength(1);
    expect(Date.now()).toBe(100);

    await vi.advanceTimersByTimeAsync(899);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[1]?.ids).toEqual(["b"]);
    expect(cuts[1]).toMatchObject({ reason: "time", weight: 5, size: 1 });
    calls[1]?.resolve();
    await busy;
    await expect(b).resolves.toMatchObject({ id: "b" });
    await batcher.stop();
  });

  it("after an abort, the lane fills by weight again from what is left", async () => {
    const { batcher, calls, cuts } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();

    const controller = new AbortController();
    const a = batcher.process(item("a", 6), { signal: controller.signal });
    const b = batcher.process(item("b", 5));
    controller.abort();
    await expect(a).rejects.toMatchObject({ name: "AbortError" });
    calls[0]?.resolve();
    await runJobs();
    expect(calls).toHaveLength(1);

    const c = batcher.process(item("c", 5)); // b + c = 10: full again
    await runJobs();
    expect(calls[1]?.ids).toEqual(["b", "c"]);
    expect(cuts[1]).toMatchObject({ reason: "weight", weight: 10 });
    calls[1]?.resolve();
    await busy;
    await b;
    await c;
    await batcher.stop();
  });

  it("an item that timed out leaves its weight behind too", async () => {
    const { batcher, calls } = weighted({
      maxBatchWeight: 10,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const busy = batcher.process(item("x", 10));
    await runJobs();
    const a = batcher.process(item("a", 6), { timeout: 50 });
    const b = batcher.process(item("b", 5));
    const aError = a.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(50);
    expect(await aError).toMatchObject({ code: "ERR_ITEM_TIMEOUT" });
    calls[0]?.resolve();
    await runJobs();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(950);
    expect(calls[1]?.ids).toEqual(["b"]);
    calls[1]?.resolve();
    await busy;
    await b;
    await batcher.stop();
  });
});
