/**
 * `batchKey`: one forming batch and one maxQueueTime clock per key, keys sharing concurrency and
 * maxQueueSize, which key goes first when a slot frees, `context.key`, flush/stop across keys,
 * bad keys, and keys forgotten once nothing of theirs is queued.
 */
import {
  type BatchContext,
  type BatcherLogEvent,
  type BatcherOptions,
  BatcherStoppedError,
  type BatchResult,
  createBatcher,
  InvalidInputError,
  QueueFullError,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

type Cut = Extract<BatcherLogEvent, { type: "batchCut" }>;

interface Call<T> {
  items: T[];
  context: BatchContext;
  startedAt: number;
  /** Settles every caller of the batch with its own item. */
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * A batcher whose batches stay in flight until the test settles them through `calls` (each caller
 * gets its own item back); the batchCut events are recorded in `cuts`.
 */
function keyed<T>(options: Omit<BatcherOptions<T, T>, "logger">) {
  const calls: Call<T>[] = [];
  const cuts: Cut[] = [];
  let running = 0;
  let maxRunning = 0;
  const batcher = createBatcher<T, T>(
    (items, context) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const copy = [...items];
      return new Promise<BatchResult<T>>((resolve, reject) => {
        calls.push({
          items: copy,
          context,
          startedAt: Date.now(),
          resolve: () => resolve(copy),
          reject,
        });
      }).finally(() => {
        running--;
      });
    },
    {
      ...options,
      logger: (event) => {
        if (event.type === "batchCut") cuts.push(event);
      },
    },
  );
  return { batcher, calls, cuts, maxRunning: () => maxRunning };
}

/** Items are strings like "A1"; their key is the first letter. */
const byLetter = (item: string) => item.slice(0, 1);

/** A keyed batcher over letter-keyed strings. */
const lettered = (options: Omit<BatcherOptions<string, string>, "logger" | "batchKey"> = {}) =>
  keyed<string>({ batchKey: byLetter, ...options });

const resolveAll = (calls: { resolve: () => void }[]) => {
  for (const call of calls) call.resolve();
};

describe("batches by key", () => {
  it("never puts items with different keys in one batch", async () => {
    const { batcher, calls, cuts } = lettered({ maxQueueTime: 10, concurrency: Infinity });
    const items = ["A1", "B1", "A2", "C1", "B2", "A3"];
    const results = Promise.all(items.map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2", "A3"], ["B1", "B2"], ["C1"]]);
    expect(calls.map((c) => c.context.key)).toEqual(["A", "B", "C"]);
    expect(cuts.map((c) => [c.key, c.reason, c.size])).toEqual([
      ["A", "time", 3],
      ["B", "time", 2],
      ["C", "time", 1],
    ]);
    resolveAll(calls);
    expect(await results).toEqual(items);
    await batcher.stop();
  });

  it("keeps one forming batch per key: counts toward maxBatchSize do not add up across keys", async () => {
    const { batcher, calls, cuts } = lettered({
      maxBatchSize: 3,
      maxQueueTime: 1000,
      concurrency: Infinity,
    });
    const results = Promise.all(["A1", "B1", "A2", "B2"].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls).toHaveLength(0); // four items, but no key has three
    const more = batcher.process("B3");
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([["B1", "B2", "B3"]]);
    expect(calls[0]?.context.key).toBe("B");
    expect(cuts).toMatchObject([{ key: "B", reason: "size", size: 3 }]);
    expect(batcher.queueSize).toBe(2);

    await vi.advanceTimersByTimeAsync(1000);
    expect(calls[1]?.items).toEqual(["A1", "A2"]);
    resolveAll(calls);
    expect(await results).toEqual(["A1", "B1", "A2", "B2"]);
    await more;
    await batcher.stop();
  });

  it("runs one maxQueueTime clock per key, from that key's oldest item", async () => {
    const { batcher, calls, cuts } = lettered({ maxQueueTime: 100, concurrency: Infinity });
    const a1 = batcher.process("A1"); // t = 0
    await vi.advanceTimersByTimeAsync(40);
    const b1 = batcher.process("B1"); // t = 40
    await vi.advanceTimersByTimeAsync(20);
    const a2 = batcher.process("A2"); // t = 60
    await vi.advanceTimersByTimeAsync(39);
    expect(calls).toHaveLength(0); // t = 99
    await vi.advanceTimersByTimeAsync(1); // t = 100: A's clock, not B's
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([[["A1", "A2"], 100]]);
    const b2 = batcher.process("B2"); // t = 100
    await vi.advanceTimersByTimeAsync(39);
    expect(calls).toHaveLength(1); // t = 139: B's clock did not restart with A's cut
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([
      [["A1", "A2"], 100],
      [["B1", "B2"], 140],
    ]);
    expect(cuts.map((c) => [c.key, c.reason, c.waitMs])).toEqual([
      ["A", "time", 100],
      ["B", "time", 100],
    ]);
    resolveAll(calls);
    expect(await Promise.all([a1, b1, a2, b2])).toEqual(["A1", "B1", "A2", "B2"]);
    await batcher.stop();
  });

  it("starts a key's clock at its first item even while other keys are busy or waiting", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 100, concurrency: 2 });
    const a1 = batcher.process("A1"); // t = 0
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.items)).toEqual([["A1"]]); // A is running
    const a2 = batcher.process("A2"); // t = 100: a new forming batch for A, with a fresh clock
    await vi.advanceTimersByTimeAsync(50);
    const b1 = batcher.process("B1"); // t = 150
    await vi.advanceTimersByTimeAsync(49);
    expect(calls).toHaveLength(1); // t = 199
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[1]?.items).toEqual(["A2"]);
    expect(calls[1]?.startedAt).toBe(200);
    calls[0]?.resolve();
    await vi.advanceTimersByTimeAsync(49);
    expect(calls).toHaveLength(2); // t = 249
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[2]?.items).toEqual(["B1"]);
    expect(calls[2]?.startedAt).toBe(250);
    resolveAll(calls);
    expect(await Promise.all([a1, a2, b1])).toEqual(["A1", "A2", "B1"]);
    await batcher.stop();
  });

  it("with maxQueueTime 0, everything submitted in one tick forms one batch per key", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 0, concurrency: Infinity });
    const results = Promise.all(["A1", "B1", "A2", "B2"].map((i) => batcher.process(i)));
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([
      ["A1", "A2"],
      ["B1", "B2"],
    ]);
    resolveAll(calls);
    await results;
    await batcher.stop();
  });
});

describe("context.key", () => {
  it("is the batch's string key", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 5, concurrency: Infinity });
    const results = Promise.all(["X1", "Y1"].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(5);
    expect(calls.map((c) => c.context.key)).toEqual(["X", "Y"]);
    resolveAll(calls);
    await results;
    await batcher.stop();
  });

  it("is the batch's number key, 0 included", async () => {
    const { batcher, calls, cuts } = keyed<number>({
      batchKey: (n) => n % 3,
      maxQueueTime: 5,
      concurrency: Infinity,
    });
    const results = Promise.all([0, 1, 2, 3, 4, 6].map((n) => batcher.process(n)));
    await vi.advanceTimersByTimeAsync(5);
    expect(calls.map((c) => [c.context.key, c.items])).toEqual([
      [0, [0, 3, 6]],
      [1, [1, 4]],
      [2, [2]],
    ]);
    expect(cuts.map((c) => c.key)).toEqual([0, 1, 2]);
    resolveAll(calls);
    expect(await results).toEqual([0, 1, 2, 3, 4, 6]);
    await batcher.stop();
  });

  it("tells 1 and '1' apart: they are different keys", async () => {
    const { batcher, calls } = keyed<{ key: string | number }>({
      batchKey: (i) => i.key,
      maxQueueTime: 5,
      concurrency: Infinity,
    });
    const results = Promise.all(
      [{ key: 1 }, { key: "1" }, { key: 1 }].map((i) => batcher.process(i)),
    );
    await vi.advanceTimersByTimeAsync(5);
    expect(calls.map((c) => [c.context.key, c.items.length])).toEqual([
      [1, 2],
      ["1", 1],
    ]);
    expect(calls.map((c) => typeof c.context.key)).toEqual(["number", "string"]);
    resolveAll(calls);
    await results;
    await batcher.stop();
  });

  it("is undefined without batchKey, and batchCut events carry no key", async () => {
    const { batcher, calls, cuts } = keyed<string>({ maxQueueTime: 5 });
    const results = Promise.all(["A1", "B1"].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(5);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.items).toEqual(["A1", "B1"]);
    expect(calls[0]?.context.key).toBeUndefined();
    expect(cuts).toHaveLength(1);
    expect(cuts[0]?.key).toBeUndefined();
    resolveAll(calls);
    await results;
    await batcher.stop();
  });
});

describe("keys share the batcher's limits", () => {
  it("share concurrency: with one slot, three due keys run one at a time", async () => {
    const { batcher, calls, maxRunning } = lettered({ maxQueueTime: 10, concurrency: 1 });
    const results = Promise.all(["A1", "B1", "C1", "A2"].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2"]]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1); // B and C are due, but the slot is taken
    expect(batcher.queueSize).toBe(2);

    calls[0]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2"], ["B1"]]);
    calls[1]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2"], ["B1"], ["C1"]]);
    calls[2]?.resolve();
    expect(await results).toEqual(["A1", "B1", "C1", "A2"]);
    expect(maxRunning()).toBe(1);
    await batcher.stop();
  });

  it("share concurrency: with two slots, at most two keys' batches run at once", async () => {
    const { batcher, calls, maxRunning } = lettered({ maxQueueTime: 10, concurrency: 2 });
    const results = Promise.all(["A1", "B1", "C1", "D1"].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.context.key)).toEqual(["A", "B"]);
    calls[1]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["A", "B", "C"]);
    calls[0]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["A", "B", "C", "D"]);
    resolveAll(calls);
    await results;
    expect(maxRunning()).toBe(2);
    await batcher.stop();
  });

  it("share maxQueueSize: the queue is full whatever the new item's key", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 100, maxQueueSize: 3 });
    const queued = ["A1", "B1", "C1"].map((i) => batcher.process(i));
    expect(batcher.queueSize).toBe(3);
    for (const next of ["A2", "B2", "D1"]) {
      const refused = batcher.process(next);
      await expect(refused).rejects.toBeInstanceOf(QueueFullError);
      await expect(refused).rejects.toMatchObject({ code: "ERR_QUEUE_FULL", maxQueueSize: 3 });
    }
    expect(batcher.queueSize).toBe(3);

    await vi.advanceTimersByTimeAsync(100); // A is cut (one slot): room for one more
    expect(calls.map((c) => c.items)).toEqual([["A1"]]);
    expect(batcher.queueSize).toBe(2);
    const admitted = batcher.process("D1");
    expect(batcher.queueSize).toBe(3);
    await expect(batcher.process("B2")).rejects.toBeInstanceOf(QueueFullError);

    for (let i = 0; i < 4; i++) {
      resolveAll(calls);
      await vi.advanceTimersByTimeAsync(100);
    }
    resolveAll(calls);
    expect(await Promise.all(queued)).toEqual(["A1", "B1", "C1"]);
    await expect(admitted).resolves.toBe("D1");
    expect(calls.map((c) => c.items)).toEqual([["A1"], ["B1"], ["C1"], ["D1"]]);
    await batcher.stop();
  });
  it("share maxQueueSize with dropOldest: the oldest item of any key is dropped", async () => {
    const { batcher, calls } = lettered({
      maxQueueTime: 100,
      maxQueueSize: 3,
      onQueueFull: "dropOldest",
      concurrency: Infinity,
    });
    const b1 = batcher.process("B1"); // t = 0: the oldest
    await vi.advanceTimersByTimeAsync(1);
    const a1 = batcher.process("A1");
    const a2 = batcher.process("A2");
    const c1 = batcher.process("C1"); // the queue is full: B1 goes
    await expect(b1).rejects.toBeInstanceOf(QueueFullError);
    expect(batcher.queueSize).toBe(3);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => [c.context.key, c.items])).toEqual([
      ["A", ["A1", "A2"]],
      ["C", ["C1"]],
    ]);
    resolveAll(calls);
    expect(await Promise.all([a1, a2, c1])).toEqual(["A1", "A2", "C1"]);
    await batcher.stop();
  });
});

describe("which key goes first when a slot frees", () => {
  it("the due key whose oldest item has waited longest, not the first key seen nor the largest", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 10, concurrency: 1 });
    const x = batcher.process("X1"); // t = 0; cut at t = 10 and kept running
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([["X1"]]);

    const controller = new AbortController();
    const a1 = batcher.process("A1", { signal: controller.signal }); // t = 11: A is seen first
    await vi.advanceTimersByTimeAsync(1);
    const b1 = batcher.process("B1"); // t = 12
    await vi.advanceTimersByTimeAsync(1);
    const cs = ["C1", "C2", "C3"].map((i) => batcher.process(i)); // t = 13: C is the largest
    await vi.advanceTimersByTimeAsync(1);
    const a2 = batcher.process("A2"); // t = 14
    controller.abort(); // A's oldest waiting item is now A2, the youngest of all
    await expect(a1).rejects.toMatchObject({ name: "AbortError" });

    await vi.advanceTimersByTimeAsync(16); // t = 30: A, B and C are all due
    expect(calls).toHaveLength(1);
    expect(batcher.queueSize).toBe(5);

    // Oldest waiting item first: B (12), C (13), A (14).
    calls[0]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "B"]);
    calls[1]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "B", "C"]);
    expect(calls[2]?.items).toEqual(["C1", "C2", "C3"]);
    calls[2]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "B", "C", "A"]);
    expect(calls[3]?.items).toEqual(["A2"]);
    calls[3]?.resolve();

    await expect(x).resolves.toBe("X1");
    await expect(b1).resolves.toBe("B1");
    expect(await Promise.all(cs)).toEqual(["C1", "C2", "C3"]);
    await expect(a2).resolves.toBe("A2");
    await batcher.stop();
  });

  it("a key that came back after being emptied queues behind keys waiting longer", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 10, maxBatchSize: 2, concurrency: 1 });
    const a = ["A1", "A2"].map((i) => batcher.process(i)); // t = 0: full, cut at once
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2"]]);
    await vi.advanceTimersByTimeAsync(1);
    const b1 = batcher.process("B1"); // t = 1
    await vi.advanceTimersByTimeAsync(1);
    const a3 = batcher.process("A3"); // t = 2: A again, with a new oldest item
    await vi.advanceTimersByTimeAsync(1);
    const c1 = batcher.process("C1"); // t = 3
    await vi.advanceTimersByTimeAsync(50);

    for (const key of ["B", "A", "C"]) {
      calls.at(-1)?.resolve();
      await runJobs();
      expect(calls.at(-1)?.context.key).toBe(key);
    }
    calls.at(-1)?.resolve();
    await Promise.all([...a, b1, a3, c1]);
    await batcher.stop();
  });

  it("after a partial cut, a key's turn follows its oldest item left, not its first one", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 10, maxBatchSize: 2, concurrency: 1 });
    const x = batcher.process("X1"); // t = 0; cut at t = 10 and kept running
    await vi.advanceTimersByTimeAsync(10);
    const a = ["A1", "A2"].map((i) => batcher.process(i)); // t = 10: full
    await vi.advanceTimersByTimeAsync(1);
    const b1 = batcher.process("B1"); // t = 11
    await vi.advanceTimersByTimeAsync(1);
    const more = ["A3", "A4"].map((i) => batcher.process(i)); // t = 12
    await vi.advanceTimersByTimeAsync(50);
    expect(batcher.queueSize).toBe(5);

    const order: [string | number | undefined, string[]][] = [];
    for (let i = 0; i < 3; i++) {
      calls.at(-1)?.resolve();
      await runJobs();
      const call = calls.at(-1);
      order.push([call?.context.key, call?.items ?? []]);
    }
    expect(order).toEqual([
      ["A", ["A1", "A2"]],
      ["B", ["B1"]], // B1 (t = 11) waited longer than A3 (t = 12)
      ["A", ["A3", "A4"]],
    ]);
    calls.at(-1)?.resolve();
    await Promise.all([x, ...a, b1, ...more]);
    await batcher.stop();
  });

  it("a key full by size is cut at once while an older key is not yet due", async () => {
    const { batcher, calls, cuts } = lettered({
      maxQueueTime: 100,
      maxBatchSize: 3,
      concurrency: 1,
    });
    const a1 = batcher.process("A1"); // t = 0
    await vi.advanceTimersByTimeAsync(10);
    const bs = ["B1", "B2", "B3"].map((i) => batcher.process(i)); // t = 10
    await runJobs();
    expect(calls.map((c) => c.items)).toEqual([["B1", "B2", "B3"]]);
    expect(cuts).toMatchObject([{ key: "B", reason: "size" }]);
    expect(Date.now()).toBe(10);
    resolveAll(calls);
    expect(await Promise.all(bs)).toEqual(["B1", "B2", "B3"]);
    await vi.advanceTimersByTimeAsync(90);
    expect(calls[1]?.items).toEqual(["A1"]);
    expect(calls[1]?.startedAt).toBe(100);
    calls[1]?.resolve();
    await a1;
    await batcher.stop();
  });

  it("when a slot frees, a full key goes before an older key that is not due", async () => {
    const { batcher, calls, cuts } = lettered({
      maxQueueTime: 100,
      maxBatchSize: 3,
      concurrency: 1,
    });
    const x = ["X1", "X2", "X3"].map((i) => batcher.process(i)); // t = 0: takes the slot
    await runJobs();
    const a1 = batcher.process("A1"); // t = 0: older, not due before t = 100
    await vi.advanceTimersByTimeAsync(10);
    const bs = ["B1", "B2", "B3"].map((i) => batcher.process(i)); // t = 10: full
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);

    calls[0]?.resolve(); // t = 20
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "B"]);
    expect(cuts[1]).toMatchObject({ key: "B", reason: "size" });
    calls[1]?.resolve();
    await runJobs();
    expect(calls).toHaveLength(2); // A is still not due
    await vi.advanceTimersByTimeAsync(80);
    expect(calls[2]?.items).toEqual(["A1"]);
    expect(cuts[2]).toMatchObject({ key: "A", reason: "time" });
    calls[2]?.resolve();
    await Promise.all([...x, a1, ...bs]);
    await batcher.stop();
  });

  it("of two full keys, the one whose oldest item waited longest goes first, not the first full", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 1000, maxBatchSize: 3, concurrency: 1 });
    const x = ["X1", "X2", "X3"].map((i) => batcher.process(i)); // t = 0: takes the slot
    await runJobs();
    const c1 = batcher.process("C1"); // t = 0: C is the oldest, but neither full nor due
    await vi.advanceTimersByTimeAsync(1);
    const a1 = batcher.process("A1"); // t = 1: A is older than B
    await vi.advanceTimersByTimeAsync(1);
    const bs = ["B1", "B2", "B3"].map((i) => batcher.process(i)); // t = 2: B is full first
    await vi.advanceTimersByTimeAsync(1);
    const as = ["A2", "A3"].map((i) => batcher.process(i)); // t = 3: A is full too
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);

    calls[0]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "A"]);
    calls[1]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "A", "B"]);
    calls[2]?.resolve();
    await runJobs();
    expect(calls).toHaveLength(3); // C waits for its time
    await Promise.all([...x, a1, ...bs, ...as]);
    expect(Date.now()).toBe(4);
    await vi.advanceTimersByTimeAsync(996);
    expect(calls[3]?.items).toEqual(["C1"]);
    calls[3]?.resolve();
    await c1;
    await batcher.stop();
  });

  it("an older key that is due goes before a younger full one", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 100, maxBatchSize: 3, concurrency: 1 });
    const x = ["X1", "X2", "X3"].map((i) => batcher.process(i)); // t = 0: takes the slot
    await runJobs();
    const a1 = batcher.process("A1"); // t = 0
    await vi.advanceTimersByTimeAsync(10);
    const bs = ["B1", "B2", "B3"].map((i) => batcher.process(i)); // t = 10: full
    await vi.advanceTimersByTimeAsync(100); // t = 110: A is due too, and waited longer
    calls[0]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "A"]);
    calls[1]?.resolve();
    await runJobs();
    expect(calls.map((c) => c.context.key)).toEqual(["X", "A", "B"]);
    calls[2]?.resolve();
    await Promise.all([...x, a1, ...bs]);
    await batcher.stop();
  });
});

describe("flush and stop across keys", () => {
  it("flush() cuts every key", async () => {
    const { batcher, calls, cuts } = lettered({ maxQueueTime: 1000, concurrency: Infinity });
    const results = Promise.all(["A1", "B1", "C1", "B2"].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(0);
    const flushed = track(batcher.flush());
    await runJobs();
    expect(calls.map((c) => [c.context.key, c.items])).toEqual([
      ["A", ["A1"]],
      ["B", ["B1", "B2"]],
      ["C", ["C1"]],
    ]);
    expect(cuts.map((c) => c.reason)).toEqual(["flush", "flush", "flush"]);
    calls[0]?.resolve();
    calls[2]?.resolve();
    await runJobs();
    expect(flushed.settled).toBe(false);
    calls[1]?.resolve();
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(await results).toEqual(["A1", "B1", "C1", "B2"]);
    await batcher.stop();
  });

  it("flush() cuts every key one batch at a time with one slot", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 1000, concurrency: 1 });
    const results = Promise.all(["A1", "B1", "C1"].map((i) => batcher.process(i)));
    const flushed = track(batcher.flush());
    for (const key of ["A", "B", "C"]) {
      await runJobs();
      expect(calls.at(-1)?.context.key).toBe(key);
      expect(flushed.settled).toBe(false);
      calls.at(-1)?.resolve();
    }
    await runJobs();
    expect(flushed.settled).toBe(true);
    expect(Date.now()).toBe(0);
    await results;
    await batcher.stop();
  });

  it("a graceful stop drains every key", async () => {
    const { batcher, calls, cuts, maxRunning } = lettered({
      maxQueueTime: 1000,
      concurrency: 1,
    });
    const results = Promise.all(["A1", "B1", "A2", "C1"].map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    const stopped = track(batcher.stop());
    for (const key of ["A", "B", "C"]) {
      await runJobs();
      expect(calls.at(-1)?.context.key).toBe(key);
      expect(stopped.settled).toBe(false);
      calls.at(-1)?.resolve();
    }
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(Date.now()).toBe(10);
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2"], ["B1"], ["C1"]]);
    expect(cuts.map((c) => c.reason)).toEqual(["stop", "stop", "stop"]);
    expect(maxRunning()).toBe(1);
    expect(await results).toEqual(["A1", "B1", "A2", "C1"]);
  });

  it("a force stop rejects every key's items, queued and running", async () => {
    const { batcher, calls } = lettered({ maxQueueTime: 10, concurrency: 1 });
    const items = ["A1", "B1", "C1", "A2"].map((i) =>
      batcher.process(i).catch((error: unknown) => error),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2"]]);
    const late = ["B2", "D1"].map((i) => batcher.process(i).catch((error: unknown) => error));
    await batcher.stop({ force: true });
    for (const error of await Promise.all([...items, ...late])) {
      expect(error).toBeInstanceOf(BatcherStoppedError);
    }
    expect(calls[0]?.context.signal.aborted).toBe(true);
    expect(batcher.queueSize).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
  });
});

describe("bad keys", () => {
  it("rejects with what batchKey threw, the same object; nothing else is affected", async () => {
    const thrown = new Error("no key");
    const { batcher, calls } = keyed<string>({
      batchKey: (item) => {
        if (item === "bad") throw thrown;
        return byLetter(item);
      },
      maxQueueTime: 10,
    });
    const a1 = batcher.process("A1");
    const bad = batcher.process("bad");
    const a2 = batcher.process("A2");
    await expect(bad).rejects.toBe(thrown);
    expect(batcher.queueSize).toBe(2);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([["A1", "A2"]]);
    resolveAll(calls);
    expect(await Promise.all([a1, a2])).toEqual(["A1", "A2"]);
    await batcher.stop();
  });

  it("rejects with a thrown non-Error value as is", async () => {
    const { batcher } = keyed<string>({
      batchKey: () => {
        throw 42;
      },
    });
    await expect(batcher.process("x")).rejects.toBe(42);
    expect(batcher.queueSize).toBe(0);
    await batcher.stop();
  });

  it.each([
    { label: "an object", value: { key: "A" } },
    { label: "an array", value: ["A"] },
    { label: "NaN", value: Number.NaN },
    { label: "Infinity", value: Infinity },
    { label: "-Infinity", value: -Infinity },
    { label: "undefined", value: undefined },
    { label: "null", value: null },
    { label: "true", value: true },
    { label: "1n", value: 1n },
    { label: "a symbol", value: Symbol("A") },
    { label: "a function", value: () => "A" },
  ])(
    "rejects with InvalidInputError (reason key) when batchKey returns $label",
    async ({ value }) => {
      const { batcher, calls } = keyed<string>({
        batchKey: (item) => (item === "bad" ? (value as unknown as string) : byLetter(item)),
        maxQueueTime: 10,
      });
      const a1 = batcher.process("A1");
      const bad = batcher.process("bad");
      const a2 = batcher.process("A2");
      await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
      await expect(bad).rejects.toMatchObject({ code: "ERR_INVALID_INPUT", reason: "key" });
      expect(batcher.queueSize).toBe(2);
      await vi.advanceTimersByTimeAsync(10);
      expect(calls.map((c) => c.items)).toEqual([["A1", "A2"]]);
      resolveAll(calls);
      expect(await Promise.all([a1, a2])).toEqual(["A1", "A2"]);
      await batcher.stop();
    },
  );

  it("accepts the empty string, negative and fractional numbers as keys", async () => {
    const { batcher, calls } = keyed<{ key: string | number }>({
      batchKey: (i) => i.key,
      maxQueueTime: 10,
      concurrency: Infinity,
    });
    const results = Promise.all(
      [{ key: "" }, { key: -1 }, { key: 0.5 }, { key: "" }].map((i) => batcher.process(i)),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => [c.context.key, c.items.length])).toEqual([
      ["", 2],
      [-1, 1],
      [0.5, 1],
    ]);
    resolveAll(calls);
    await results;
    await batcher.stop();
  });

  it("TypeError at construction when batchKey is not a function", () => {
    for (const bad of ["A", 1, {}, null, true]) {
      expect(() =>
        createBatcher((xs: string[]) => xs, {
          batchKey: bad as unknown as (item: string) => string,
        }),
      ).toThrow(TypeError);
    }
  });
});

describe("batchKey is called exactly once per item", () => {
  it("whatever happens to the item after", async () => {
    const batchKey = vi.fn(byLetter);
    const { batcher, calls } = keyed<string>({
      batchKey,
      maxQueueTime: 10,
      maxBatchSize: 2,
      maxQueueSize: 4,
      onQueueFull: "wait",
      concurrency: 1,
    });
    const items = ["A1", "A2", "B1", "C1", "B2", "C2", "A3"];
    // A1, A2: cut at once by size; B1, C1, B2, C2 fill the queue (B full); A3 waits for room.
    const results = Promise.all(items.map((i) => batcher.process(i)));
    expect(batchKey).toHaveBeenCalledTimes(7);
    await runJobs();
    expect(batcher.waiting).toBe(1);
    for (let round = 0; round < 10 && batcher.inFlight + batcher.queueSize > 0; round++) {
      resolveAll(calls);
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(await results).toEqual(items);
    expect(calls.flatMap((c) => c.items).sort()).toEqual([...items].sort());
    expect(batchKey.mock.calls.map(([item]) => item)).toEqual(items);
    const d1 = batcher.process("D1");
    const flushed = batcher.flush();
    await runJobs();
    resolveAll(calls);
    await flushed;
    await expect(d1).resolves.toBe("D1");
    expect(batchKey.mock.calls.map(([item]) => item)).toEqual([...items, "D1"]);
    await batcher.stop();
  });
});

describe("keys with nothing queued are forgotten", () => {
  it("10,000 distinct keys, processed then idle, leave the batcher idle with no timer", async () => {
    const batchKey = vi.fn((n: number) => `key-${n}`);
    const cuts: Cut[] = [];
    const batcher = createBatcher(
      (items: number[], context: BatchContext) => {
        expect(context.key).toBe(`key-${items[0]}`);
        return items.map((n) => n * 2);
      },
      {
        batchKey,
        maxQueueTime: 10,
        concurrency: 4,
        logger: (event) => {
          if (event.type === "batchCut") cuts.push(event);
        },
      },
    );
    const n = 10_000;
    const results = Promise.all(Array.from({ length: n }, (_, i) => batcher.process(i)));
    expect(batcher.queueSize).toBe(n);
    await vi.advanceTimersByTimeAsync(10);
    const values = await results;
    expect(values).toHaveLength(n);
    expect(values[1234]).toBe(2468);
    expect(cuts).toHaveLength(n);

    const idle = track(batcher.onIdle());
    await runJobs();
    expect(idle.settled).toBe(true);
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);

    // A key that comes back much later starts a fresh clock: not cut at once on its old one.
    await vi.advanceTimersByTimeAsync(5000);
    const again = batcher.process(42);
    await vi.advanceTimersByTimeAsync(9);
    expect(cuts).toHaveLength(n);
    await vi.advanceTimersByTimeAsync(1);
    await expect(again).resolves.toBe(84);
    expect(cuts.at(-1)).toMatchObject({ key: "key-42", reason: "time", waitMs: 10, size: 1 });
    expect(vi.getTimerCount()).toBe(0);
    await batcher.stop();
  });

  it("a key emptied by a cut starts a fresh clock with its next item", async () => {
    const { batcher, calls, cuts } = lettered({ maxQueueTime: 100, concurrency: Infinity });
    const a1 = batcher.process("A1"); // t = 0
    await vi.advanceTimersByTimeAsync(100);
    calls[0]?.resolve();
    await expect(a1).resolves.toBe("A1");
    await vi.advanceTimersByTimeAsync(250);
    const a2 = batcher.process("A2"); // t = 350
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[1]?.startedAt).toBe(450);
    expect(cuts[1]).toMatchObject({ key: "A", reason: "time", waitMs: 100 });
    calls[1]?.resolve();
    await a2;
    await batcher.stop();
  });

  it("a key emptied by aborts starts a fresh clock with its next item", async () => {
    const { batcher, calls, cuts } = lettered({ maxQueueTime: 100, concurrency: Infinity });
    const controller = new AbortController();
    const a1 = batcher.process("A1", { signal: controller.signal }); // t = 0
    await vi.advanceTimersByTimeAsync(60);
    controller.abort();
    await expect(a1).rejects.toMatchObject({ name: "AbortError" });
    expect(batcher.queueSize).toBe(0);
    await expect(batcher.onIdle()).resolves.toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);

    const a2 = batcher.process("A2"); // t = 60: not due at t = 100 on A1's clock
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => [c.items, c.startedAt])).toEqual([[["A2"], 160]]);
    expect(cuts[0]).toMatchObject({ key: "A", waitMs: 100 });
    calls[0]?.resolve();
    await a2;
    await batcher.stop();
  });
});

describe("logger", () => {
  it("batchCut events carry the key, with size and reason", async () => {
    const { batcher, calls, cuts } = keyed<{ k: string | number; v: number }>({
      batchKey: (i) => i.k,
      maxBatchSize: 2,
      maxQueueTime: 50,
      concurrency: Infinity,
    });
    const results = Promise.all(
      [
        { k: "s", v: 1 },
        { k: 7, v: 2 },
        { k: "s", v: 3 },
      ].map((i) => batcher.process(i)),
    );
    await runJobs();
    await vi.advanceTimersByTimeAsync(50);
    expect(cuts).toMatchObject([
      { type: "batchCut", key: "s", size: 2, reason: "size", batchId: 1 },
      { type: "batchCut", key: 7, size: 1, reason: "time", batchId: 2 },
    ]);
    expect(calls.map((c) => c.context.batchId)).toEqual([1, 2]);
    resolveAll(calls);
    await results;
    await batcher.stop();
  });
});

describe("keys with weights", () => {
  it("weigh each key's lane on its own", async () => {
    const { batcher, calls, cuts } = keyed<{ k: string; w: number }>({
      batchKey: (i) => i.k,
      weigh: (i) => i.w,
      maxBatchWeight: 10,
      maxQueueTime: 100,
      concurrency: Infinity,
    });
    const results = Promise.all(
      [
        { k: "A", w: 6 },
        { k: "B", w: 6 },
        { k: "A", w: 4 },
      ].map((i) => batcher.process(i)),
    );
    await runJobs();
    // 16 queued in all, but only A reached 10.
    expect(calls.map((c) => [c.context.key, c.items.map((i) => i.w)])).toEqual([["A", [6, 4]]]);
    expect(cuts).toMatchObject([{ key: "A", reason: "weight", weight: 10 }]);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[1]?.context.key).toBe("B");
    expect(cuts[1]).toMatchObject({ key: "B", reason: "time", weight: 6 });
    resolveAll(calls);
    await results;
    await batcher.stop();
  });
});
