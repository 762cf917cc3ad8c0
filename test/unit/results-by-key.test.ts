/**
 * Results by key (`keyOf`): a batch function may return a `Map` from each item's key to its result
 * (or `Error`), in any order. A caller whose key is absent rejects with `MissingResultError`
 * (`onMissingResult: "reject"`) or resolves `undefined`; arrays still go by position; a `Map`
 * without `keyOf` is a `BatchResultError`; `keyOf` is called once per item, in `process()`, and
 * what it throws rejects that caller alone.
 */
import {
  AsyncBatcher,
  type BatchContext,
  BatcherError,
  type BatcherOptions,
  type BatchFunction,
  type BatchResult,
  BatchResultError,
  createBatcher,
  type Executor,
  ItemTimeoutError,
  MissingResultError,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { manualBatcher, runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** A row as a database would return it. */
interface Row {
  id: number;
  name: string;
}

/** A function batcher that records a copy of every batch it is given. */
function recording<T, R>(fn: BatchFunction<T, R>, options?: BatcherOptions<T, R>) {
  const batches: T[][] = [];
  const batcher = createBatcher<T, R>((batch, context) => {
    batches.push([...batch]);
    return fn(batch, context);
  }, options);
  return { batcher, batches };
}

/** The rows of `ids`, by id, newest id first: not the batch's order. */
const rowsByIdDescending = (ids: number[]) =>
  new Map<number, Row>(
    [...ids].sort((a, b) => b - a).map((id) => [id, { id, name: `user ${id}` }]),
  );

/** The reason of a settled promise that must have rejected. */
function reasonOf(result: PromiseSettledResult<unknown> | undefined): unknown {
  expect(result?.status).toBe("rejected");
  return (result as PromiseRejectedResult).reason;
}

/** Checks that `error` is the `MissingResultError` of `key` (compared with `Object.is`). */
function expectMissing(error: unknown, key: unknown): void {
  expect(error).toBeInstanceOf(MissingResultError);
  expect(error).toBeInstanceOf(BatcherError);
  const missing = error as MissingResultError;
  expect(missing.code).toBe("ERR_MISSING_RESULT");
  expect(missing.name).toBe("MissingResultError");
  expect(missing.key).toBe(key);
}

/** Submits `items`, advances the fake clock by `ms`, and returns how each settled. */
async function settleAfter<T>(
  batcher: AsyncBatcher<T, unknown>,
  items: T[],
  ms: number,
): Promise<PromiseSettledResult<unknown>[]> {
  const settled = Promise.allSettled(items.map((item) => batcher.process(item)));
  await vi.advanceTimersByTimeAsync(ms);
  return settled;
}

describe("a Map result", () => {
  it("gives each caller the row of its key, whatever the Map's order", async () => {
    const { batcher, batches } = recording((ids: number[]) => rowsByIdDescending(ids), {
      keyOf: (id) => id,
      maxBatchSize: 3,
    });
    const results = Promise.all([2, 5, 1, 4].map((id) => batcher.process(id)));
    await vi.advanceTimersByTimeAsync(10);
    expect(batches).toEqual([[2, 5, 1], [4]]);
    expect(await results).toEqual([
      { id: 2, name: "user 2" },
      { id: 5, name: "user 5" },
      { id: 1, name: "user 1" },
      { id: 4, name: "user 4" },
    ]);
    await batcher.stop();
  });

  it("looks results up by keyOf's key, not by the item", async () => {
    const { batcher, batches } = recording(
      (rows: Row[]) => new Map(rows.map((row) => [row.id, row.name.toUpperCase()])),
      { keyOf: (row) => row.id },
    );
    const rows = [
      { id: 7, name: "ann" },
      { id: 3, name: "bob" },
    ];
    const results = Promise.all(rows.map((row) => batcher.process(row)));
    await vi.advanceTimersByTimeAsync(10);
    expect(await results).toEqual(["ANN", "BOB"]);
    expect(batches).toEqual([rows]);
    await batcher.stop();
  });

  it("without dedupe, items sharing a key all reach the batch function and share its entry", async () => {
    const { batcher, batches } = recording(
      (rows: Row[]) => new Map(rows.map((row) => [row.id, `${row.name}#${row.id}`])),
      { keyOf: (row) => row.id },
    );
    const rows = [
      { id: 1, name: "first" },
      { id: 2, name: "other" },
      { id: 1, name: "second" },
    ];
    const results = Promise.all(rows.map((row) => batcher.process(row)));
    await vi.advanceTimersByTimeAsync(10);
    expect(batches).toEqual([rows]);
    // The Map holds one entry per key: the last one set wins, for both callers of id 1.
    expect(await results).toEqual(["second#1", "other#2", "second#1"]);
    await batcher.stop();
  });

  it("resolves with undefined or null values that are present, under the default policy", async () => {
    const batcher = createBatcher(
      (_ids: string[]) =>
        new Map<string, string | null | undefined>([
          ["u", undefined],
          ["n", null],
          ["s", "value"],
        ]),
      { keyOf: (id) => id },
    );
    const settled = await settleAfter(batcher, ["u", "n", "s"], 10);
    expect(settled).toEqual([
      { status: "fulfilled", value: undefined },
      { status: "fulfilled", value: null },
      { status: "fulfilled", value: "value" },
    ]);
    expect(batcher.stats().rejected.missing).toBe(0);
    await batcher.stop();
  });

  it("ignores entries for keys no caller has", async () => {
    const batcher = createBatcher(
      (ids: number[]) => {
        const rows = rowsByIdDescending([...ids, 100, 200]);
        rows.set(Number.NaN, { id: -1, name: "nobody" });
        return rows;
      },
      { keyOf: (id) => id },
    );
    const settled = await settleAfter(batcher, [1, 2], 10);
    expect(settled).toEqual([
      { status: "fulfilled", value: { id: 1, name: "user 1" } },
      { status: "fulfilled", value: { id: 2, name: "user 2" } },
    ]);
    const stats = batcher.stats();
    expect(stats.resolved).toBe(2);
    expect(stats.rejected.total).toBe(0);
    await batcher.stop();
  });

  it("an empty Map leaves every caller without a result", async () => {
    const batcher = createBatcher((_ids: number[]) => new Map<number, string>(), {
      keyOf: (id) => id,
    });
    const settled = await settleAfter(batcher, [1, 2, 3], 10);
    expectMissing(reasonOf(settled[0]), 1);
    expectMissing(reasonOf(settled[1]), 2);
    expectMissing(reasonOf(settled[2]), 3);
    expect(batcher.stats().rejected.missing).toBe(3);
    await batcher.stop();
  });

  it("returning nothing still resolves every caller with undefined, none of them missing", async () => {
    const batcher = createBatcher(async (_ids: number[]) => {}, { keyOf: (id) => id });
    const settled = await settleAfter(batcher, [1, 2], 10);
    expect(settled).toEqual([
      { status: "fulfilled", value: undefined },
      { status: "fulfilled", value: undefined },
    ]);
    expect(batcher.stats().rejected.missing).toBe(0);
    await batcher.stop();
  });
});

describe("an absent key", () => {
  it('rejects that caller alone with MissingResultError by default ("reject")', async () => {
    const { batcher } = recording(
      (ids: number[]) => rowsByIdDescending(ids.filter((id) => id !== 2)),
      {
        keyOf: (id) => id,
      },
    );
    const settled = await settleAfter(batcher, [1, 2, 3], 10);
    expect(settled[0]).toEqual({ status: "fulfilled", value: { id: 1, name: "user 1" } });
    expectMissing(reasonOf(settled[1]), 2);
    expect(settled[2]).toEqual({ status: "fulfilled", value: { id: 3, name: "user 3" } });
    await batcher.stop();
  });

  it('onMissingResult "reject" said outright behaves as the default', async () => {
    const batcher = createBatcher((_ids: number[]) => new Map([[1, "one"]]), {
      keyOf: (id) => id,
      onMissingResult: "reject",
    });
    const settled = await settleAfter(batcher, [1, 2], 10);
    expect(settled[0]).toEqual({ status: "fulfilled", value: "one" });
    expectMissing(reasonOf(settled[1]), 2);
    await batcher.stop();
  });

  it('onMissingResult "undefined" resolves that caller with undefined', async () => {
    const batcher = createBatcher((_ids: number[]) => new Map([[1, "one"]]), {
      keyOf: (id) => id,
      onMissingResult: "undefined",
    });
    const settled = await settleAfter(batcher, [1, 2, 3], 10);
    expect(settled).toEqual([
      { status: "fulfilled", value: "one" },
      { status: "fulfilled", value: undefined },
      { status: "fulfilled", value: undefined },
    ]);
    const stats = batcher.stats();
    expect(stats.resolved).toBe(3);
    expect(stats.rejected.missing).toBe(0);
    expect(stats.rejected.total).toBe(0);
    await batcher.stop();
  });

  it("gives each caller its own MissingResultError, naming its own key", async () => {
    const batcher = createBatcher((_ids: string[]) => new Map<string, string>(), {
      keyOf: (id) => id,
    });
    const settled = await settleAfter(batcher, ["a", "b", "a"], 10);
    const [a1, b, a2] = settled.map(reasonOf);
    expectMissing(a1, "a");
    expectMissing(b, "b");
    expectMissing(a2, "a");
    expect(a2).not.toBe(a1);
    await batcher.stop();
  });
});

describe("keys of any type, compared as Map keys (SameValueZero)", () => {
  const shared = { id: 1 };
  const symbol = Symbol("key");

  it.each<{ what: string; key: unknown; entry: unknown }>([
    { what: "a number", key: 7, entry: 7 },
    { what: "a float", key: 0.5, entry: 0.5 },
    { what: "-0, found under 0", key: -0, entry: 0 },
    { what: "a bigint", key: 10n ** 20n, entry: 100000000000000000000n },
    { what: "NaN", key: Number.NaN, entry: Number.NaN },
    { what: "an object, by identity", key: shared, entry: shared },
    { what: "a symbol", key: symbol, entry: symbol },
    { what: "undefined", key: undefined, entry: undefined },
    { what: "null", key: null, entry: null },
    { what: "a boolean", key: false, entry: false },
  ])("finds the entry of $what", async ({ key, entry }) => {
    const batcher = createBatcher(
      (_items: { key: unknown }[]) =>
        new Map<unknown, string>([
          ["control", "control result"],
          [entry, "found"],
        ]),
      { keyOf: (item) => item.key },
    );
    const settled = await settleAfter(batcher, [{ key }, { key: "control" }], 10);
    expect(settled).toEqual([
      { status: "fulfilled", value: "found" },
      { status: "fulfilled", value: "control result" },
    ]);
    await batcher.stop();
  });

  it.each<{ what: string; key: unknown; decoy: unknown }>([
    { what: "a number (the Map has its string)", key: 7, decoy: "7" },
    { what: "a string (the Map has its number)", key: "7", decoy: 7 },
    { what: "a bigint (the Map has the equal number)", key: 7n, decoy: 7 },
    { what: "a number (the Map has the equal bigint)", key: 7, decoy: 7n },
    { what: "an object (the Map has an equal copy)", key: { id: 1 }, decoy: { id: 1 } },
    { what: "NaN (the Map has its string)", key: Number.NaN, decoy: "NaN" },
    {
      what: "a symbol (the Map has one with the same description)",
      key: symbol,
      decoy: Symbol("key"),
    },
    { what: "null (the Map has undefined)", key: null, decoy: undefined },
  ])(
    "rejects $what with MissingResultError whose key is the caller's key",
    async ({ key, decoy }) => {
      const batcher = createBatcher(
        (_items: { key: unknown }[]) =>
          new Map<unknown, string>([
            ["control", "control result"],
            [decoy, "decoy"],
          ]),
        { keyOf: (item) => item.key },
      );
      const settled = await settleAfter(batcher, [{ key }, { key: "control" }], 10);
      expectMissing(reasonOf(settled[0]), key);
      expect(settled[1]).toEqual({ status: "fulfilled", value: "control result" });
      expect(batcher.stats().rejected.missing).toBe(1);
      await batcher.stop();
    },
  );

  it("a missing object key is the caller's very object", async () => {
    const wanted = { table: "users", id: 9 };
    const batcher = createBatcher((_items: { key: object }[]) => new Map<object, string>(), {
      keyOf: (item) => item.key,
    });
    const settled = await settleAfter(batcher, [{ key: wanted }], 10);
    const error = reasonOf(settled[0]) as MissingResultError;
    expectMissing(error, wanted);
    expect(error.key).toBe(wanted);
    await batcher.stop();
  });
});

describe("Error values", () => {
  it("an Error for one key rejects that caller alone, with that very error", async () => {
    const notFound = new RangeError("no such user");
    const batcher = createBatcher(
      (ids: number[]) =>
        new Map<number, string | Error>(ids.map((id) => [id, id === 2 ? notFound : `user ${id}`])),
      { keyOf: (id) => id },
    );
    const settled = await settleAfter(batcher, [1, 2, 3], 10);
    expect(settled[0]).toEqual({ status: "fulfilled", value: "user 1" });
    expect(reasonOf(settled[1])).toBe(notFound);
    expect(settled[2]).toEqual({ status: "fulfilled", value: "user 3" });
    const stats = batcher.stats();
    expect(stats.rejected.error).toBe(1);
    expect(stats.rejected.missing).toBe(0);
    expect(stats.resolved).toBe(2);
    await batcher.stop();
  });

  it("an Error entry rejects every caller of that key; a value that only looks like one resolves", async () => {
    const failed = new Error("row failed");
    const lookalike = { name: "Error", message: "not an error" };
    const batcher = createBatcher(
      (_ids: string[]) =>
        new Map<string, unknown>([
          ["bad", failed],
          ["odd", lookalike],
        ]),
      { keyOf: (id) => id },
    );
    const settled = await settleAfter(batcher, ["bad", "odd", "bad"], 10);
    expect(reasonOf(settled[0])).toBe(failed);
    expect(settled[1]).toEqual({ status: "fulfilled", value: lookalike });
    expect(reasonOf(settled[2])).toBe(failed);
    expect(batcher.stats().rejected.error).toBe(2);
    await batcher.stop();
  });
});

describe("arrays with keyOf", () => {
  it("still give result i to item i, whatever the keys", async () => {
    const { batcher, batches } = recording((ids: number[]) => ids.map((id) => id * 10), {
      keyOf: (id) => `key of ${id}`,
    });
    const settled = await settleAfter(batcher, [3, 1, 2], 10);
    expect(batches).toEqual([[3, 1, 2]]);
    expect(settled).toEqual([
      { status: "fulfilled", value: 30 },
      { status: "fulfilled", value: 10 },
      { status: "fulfilled", value: 20 },
    ]);
    await batcher.stop();
  });

  it("by position even for items sharing a key (no dedupe)", async () => {
    const batcher = createBatcher((ids: number[]) => ids.map((_, i) => `#${i}`), {
      keyOf: () => "same",
    });
    const settled = await settleAfter(batcher, [1, 2, 3], 10);
    expect(settled.map((s) => (s as PromiseFulfilledResult<string>).value)).toEqual([
      "#0",
      "#1",
      "#2",
    ]);
    await batcher.stop();
  });

  it("an Error at position i rejects item i alone; a wrong length is a BatchResultError", async () => {
    const bad = new Error("item 1");
    const batcher = createBatcher(
      (ids: number[], { batchId }) =>
        batchId === 1 ? ids.map((id) => (id === 1 ? bad : id)) : [0],
      { keyOf: (id) => id, maxBatchSize: 2 },
    );
    const settled = await settleAfter(batcher, [0, 1, 2, 3], 10);
    expect(settled[0]).toEqual({ status: "fulfilled", value: 0 });
    expect(reasonOf(settled[1])).toBe(bad);
    for (const result of settled.slice(2)) {
      const error = reasonOf(result) as BatchResultError;
      expect(error).toBeInstanceOf(BatchResultError);
      expect(error.code).toBe("ERR_BATCH_RESULT");
      expect(error.expected).toBe(2);
      expect(error.received).toBe(1);
    }
    await batcher.stop();
  });
});

describe("a Map without keyOf", () => {
  it("rejects every caller of the batch with one BatchResultError; later batches are served", async () => {
    const batcher = createBatcher(
      (ids: number[], { batchId }) =>
        batchId === 1 ? (new Map(ids.map((id) => [id, id])) as never) : ids.map((id) => -id),
      { maxBatchSize: 3 },
    );
    const settled = await settleAfter(batcher, [1, 2, 3, 4], 10);
    const first = reasonOf(settled[0]) as BatchResultError;
    expect(first).toBeInstanceOf(BatchResultError);
    expect(first).toBeInstanceOf(BatcherError);
    expect(first.code).toBe("ERR_BATCH_RESULT");
    expect(first.expected).toBe(3);
    expect(first.received).toBe("a Map");
    expect(reasonOf(settled[1])).toBe(first);
    expect(reasonOf(settled[2])).toBe(first);
    expect(settled[3]).toEqual({ status: "fulfilled", value: -4 });
    const stats = batcher.stats();
    expect(stats.rejected.error).toBe(3);
    expect(stats.rejected.missing).toBe(0);
    expect(stats.resolved).toBe(1);
    await batcher.stop();
  });

  it("also from a subclass's processBatch", async () => {
    class ByMap extends AsyncBatcher<number, number> {
      processBatch(batch: number[]): BatchResult<number> {
        return new Map(batch.map((x) => [x, x]));
      }
    }
    const batcher = new ByMap();
    const settled = await settleAfter(batcher, [1, 2], 10);
    for (const result of settled) {
      expect(reasonOf(result)).toBeInstanceOf(BatchResultError);
      expect((reasonOf(result) as BatchResultError).code).toBe("ERR_BATCH_RESULT");
    }
    await batcher.stop();
  });
});

describe("keyOf", () => {
  it("is called exactly once per item, inside process(), in submission order", async () => {
    const keyOf = vi.fn((id: number) => id);
    const batcher = createBatcher((ids: number[]) => rowsByIdDescending(ids), {
      keyOf,
      maxBatchSize: 2,
    });
    const first = batcher.process(1);
    expect(keyOf).toHaveBeenCalledTimes(1);
    const rest = [2, 3].map((id) => batcher.process(id));
    expect(keyOf.mock.calls).toEqual([[1], [2], [3]]);
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all([first, ...rest]);
    expect(keyOf.mock.calls).toEqual([[1], [2], [3]]);
    await batcher.stop();
  });

  it('is not called again when a caller waiting for room (onQueueFull "wait") is admitted', async () => {
    const keyOf = vi.fn((id: number) => id);
    const { batcher, calls } = manualBatcher({
      keyOf,
      maxQueueSize: 1,
      onQueueFull: "wait",
      maxBatchSize: 1,
    });
    const results = [1, 2, 3].map((id) => batcher.process(id));
    expect(keyOf).toHaveBeenCalledTimes(3);
    expect(batcher.waiting).toBe(1);
    for (let i = 0; i < 3; i++) {
      await runJobs();
      calls[i]?.resolve(new Map([[i + 1, (i + 1) * 100]]));
    }
    expect(await Promise.all(results)).toEqual([100, 200, 300]);
    expect(keyOf).toHaveBeenCalledTimes(3);
    await batcher.stop();
  });

  it("throwing rejects that caller with what it threw; the others batch without its item", async () => {
    const thrown = new TypeError("no id");
    const { batcher, batches } = recording(
      (rows: Partial<Row>[]) => rowsByIdDescending(rows.map((r) => r.id as number)),
      {
        keyOf: (row) => {
          if (row.id === undefined) throw thrown;
          return row.id;
        },
      },
    );
    const good1 = batcher.process({ id: 1 });
    const bad = track(batcher.process({ name: "no id" }));
    const good2 = batcher.process({ id: 2 });
    expect(batcher.queueSize).toBe(2);
    await runJobs();
    expect(bad.error).toBe(thrown);
    await vi.advanceTimersByTimeAsync(10);
    expect(batches).toEqual([[{ id: 1 }, { id: 2 }]]);
    expect(await Promise.all([good1, good2])).toEqual([
      { id: 1, name: "user 1" },
      { id: 2, name: "user 2" },
    ]);
    const stats = batcher.stats();
    expect(stats.submitted).toBe(3);
    expect(stats.rejected.invalid).toBe(1);
    expect(stats.rejected.total).toBe(1);
    expect(stats.resolved).toBe(2);
    expect(stats.batchSize.sum).toBe(2);
    await batcher.stop();
  });

  it("throwing a non-Error value rejects with that value, and emits no drop event", async () => {
    const drops: unknown[] = [];
    const batcher = createBatcher((ids: number[]) => ids, {
      keyOf: (id) => {
        if (id < 0) throw "negative id";
        return id;
      },
    });
    batcher.on("drop", (event) => drops.push(event));
    const settled = await settleAfter(batcher, [1, -1, 2], 10);
    expect(settled).toEqual([
      { status: "fulfilled", value: 1 },
      { status: "rejected", reason: "negative id" },
      { status: "fulfilled", value: 2 },
    ]);
    expect(drops).toEqual([]);
    await batcher.stop();
  });
});

describe("option checks", () => {
  const fn = (ids: number[]) => ids;
  const id = (item: number) => item;

  it.each<{ what: string; options: BatcherOptions<number, number> }>([
    { what: "keyOf a string", options: { keyOf: "id" as never } },
    { what: "keyOf a number", options: { keyOf: 1 as never } },
    { what: "keyOf null", options: { keyOf: null as never } },
    { what: "keyOf an object", options: { keyOf: {} as never } },
    { what: "onMissingResult unknown", options: { keyOf: id, onMissingResult: "ignore" as never } },
    { what: "onMissingResult null", options: { keyOf: id, onMissingResult: null as never } },
    { what: "onMissingResult true", options: { keyOf: id, onMissingResult: true as never } },
    {
      what: 'onMissingResult "undefined" without keyOf',
      options: { onMissingResult: "undefined" },
    },
    { what: 'onMissingResult "reject" without keyOf', options: { onMissingResult: "reject" } },
    { what: "dedupe without keyOf", options: { dedupe: true } },
    { what: "dedupe not a boolean", options: { keyOf: id, dedupe: "yes" as never } },
  ])("$what is a TypeError, from createBatcher and from a subclass", ({ options }) => {
    expect(() => createBatcher(fn, options)).toThrow(TypeError);
    class Sub extends AsyncBatcher<number, number> {
      processBatch(batch: number[]): number[] {
        return batch;
      }
    }
    expect(() => new Sub(options)).toThrow(TypeError);
  });

  it.each<{ what: string; options: BatcherOptions<number, number> }>([
    { what: "keyOf alone", options: { keyOf: id } },
    { what: "keyOf undefined", options: { keyOf: undefined } },
    {
      what: 'onMissingResult "undefined" with keyOf',
      options: { keyOf: id, onMissingResult: "undefined" },
    },
    { what: "onMissingResult undefined without keyOf", options: { onMissingResult: undefined } },
    { what: "dedupe false without keyOf", options: { dedupe: false } },
    { what: "dedupe with keyOf", options: { keyOf: id, dedupe: true } },
  ])("$what is accepted", async ({ options }) => {
    const batcher = createBatcher(fn, options);
    const result = batcher.process(4);
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toBe(4);
    await batcher.stop();
  });
});

describe("with batchKey", () => {
  it("each key's batch gets its own Map; the same id under two keys stays apart", async () => {
    interface Ref {
      table: string;
      id: number;
    }
    const contexts: (string | number | undefined)[] = [];
    const { batcher, batches } = recording(
      (refs: Ref[], context: BatchContext) => {
        contexts.push(context.key);
        // Rows come back in reverse; "posts" has no row 2.
        return new Map(
          [...refs]
            .reverse()
            .filter((ref) => !(ref.table === "posts" && ref.id === 2))
            .map((ref) => [ref.id, `${context.key}/${ref.id}`]),
        );
      },
      {
        batchKey: (ref) => ref.table,
        keyOf: (ref) => ref.id,
        concurrency: Number.POSITIVE_INFINITY,
      },
    );
    const refs: Ref[] = [
      { table: "users", id: 1 },
      { table: "posts", id: 1 },
      { table: "users", id: 2 },
      { table: "posts", id: 2 },
    ];
    const settled = await settleAfter(batcher, refs, 10);
    expect(batches).toEqual([
      [refs[0], refs[2]],
      [refs[1], refs[3]],
    ]);
    expect(contexts).toEqual(["users", "posts"]);
    expect(settled[0]).toEqual({ status: "fulfilled", value: "users/1" });
    expect(settled[1]).toEqual({ status: "fulfilled", value: "posts/1" });
    expect(settled[2]).toEqual({ status: "fulfilled", value: "users/2" });
    expectMissing(reasonOf(settled[3]), 2);
    await batcher.stop();
  });
});

describe("every kind of batcher", () => {
  const rows = (ids: number[]) => new Map(ids.map((id) => [id, `row ${id}`]));

  it("createBatcher with a plain batch function (no executor)", async () => {
    const batcher = createBatcher((ids: number[]) => rows(ids.filter((id) => id !== 3)), {
      keyOf: (id) => id,
    });
    const settled = await settleAfter(batcher, [3, 1], 10);
    expectMissing(reasonOf(settled[0]), 3);
    expect(settled[1]).toEqual({ status: "fulfilled", value: "row 1" });
    await batcher.stop();
  });

  it("a subclass of AsyncBatcher, sync or async, with its options passed to super()", async () => {
    class Users extends AsyncBatcher<number, string> {
      constructor(readonly slow: boolean) {
        super({ keyOf: (id) => id, onMissingResult: "undefined" });
      }

      processBatch(batch: number[]): BatchResult<string> | Promise<BatchResult<string>> {
        const found = rows(batch.filter((id) => id !== 3));
        return this.slow ? new Promise((resolve) => setTimeout(() => resolve(found), 5)) : found;
      }
    }
    for (const slow of [false, true]) {
      const batcher = new Users(slow);
      const settled = await settleAfter(batcher, [3, 1], 15);
      expect(settled).toEqual([
        { status: "fulfilled", value: undefined },
        { status: "fulfilled", value: "row 1" },
      ]);
      expect(batcher.name).toBe("Users");
      await batcher.stop();
    }
  });

  it("an executor that resolves with a Map", async () => {
    const run = vi.fn(async (ids: number[]) => rows(ids.filter((id) => id !== 2)));
    const executor: Executor<number, string> = { run, close: async () => {} };
    const processBatch = vi.fn((ids: number[]) => ids.map(String));
    const batcher = createBatcher(processBatch, { keyOf: (id) => id, executor });
    const settled = await settleAfter(batcher, [1, 2], 10);
    expect(settled[0]).toEqual({ status: "fulfilled", value: "row 1" });
    expectMissing(reasonOf(settled[1]), 2);
    expect(run).toHaveBeenCalledTimes(1);
    expect(processBatch).not.toHaveBeenCalled();
    await batcher.stop();
  });
});

describe("callers who leave", () => {
  it("an aborted caller whose key is in the Map is not resolved with it", async () => {
    const { batcher, calls } = manualBatcher({ keyOf: (id) => id, maxQueueTime: 10 });
    const controller = new AbortController();
    const one = batcher.process(1);
    const two = track(batcher.process(2, { signal: controller.signal }));
    const three = batcher.process(3);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([[1, 2, 3]]);
    controller.abort("gone");
    await runJobs();
    expect(two.error).toBe("gone");
    calls[0]?.resolve(
      new Map([
        [3, 30],
        [2, 20],
        [1, 10],
      ]),
    );
    expect(await Promise.all([one, three])).toEqual([10, 30]);
    await runJobs();
    expect(two.error).toBe("gone");
    const stats = batcher.stats();
    expect(stats.resolved).toBe(2);
    expect(stats.rejected.abort).toBe(1);
    expect(stats.rejected.missing).toBe(0);
    expect(stats.rejected.total).toBe(1);
    await batcher.stop();
  });

  it("a caller aborted while queued is neither handed over nor counted missing", async () => {
    const { batcher, calls } = manualBatcher({ keyOf: (id) => id, maxQueueTime: 10 });
    const controller = new AbortController();
    const one = batcher.process(1);
    const two = track(batcher.process(2, { signal: controller.signal }));
    const three = batcher.process(3);
    controller.abort("gone");
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([[1, 3]]);
    calls[0]?.resolve(
      new Map([
        [3, 30],
        [1, 10],
      ]),
    );
    expect(await Promise.all([one, three])).toEqual([10, 30]);
    expect(two.error).toBe("gone");
    const stats = batcher.stats();
    expect(stats.rejected.missing).toBe(0);
    expect(stats.rejected.abort).toBe(1);
    await batcher.stop();
  });

  it("a caller timed out while its batch runs is not resolved with its entry", async () => {
    const { batcher, calls } = manualBatcher({ keyOf: (id) => id, maxQueueTime: 10 });
    const one = batcher.process(1, { timeout: 15 });
    const two = batcher.process(2);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.items)).toEqual([[1, 2]]);
    const timedOut = track(one);
    await vi.advanceTimersByTimeAsync(5);
    expect(timedOut.error).toBeInstanceOf(ItemTimeoutError);
    expect((timedOut.error as ItemTimeoutError).code).toBe("ERR_ITEM_TIMEOUT");
    calls[0]?.resolve(
      new Map([
        [1, 10],
        [2, 20],
      ]),
    );
    expect(await two).toBe(20);
    const stats = batcher.stats();
    expect(stats.resolved).toBe(1);
    expect(stats.rejected.timeout).toBe(1);
    expect(stats.rejected.missing).toBe(0);
    await batcher.stop();
  });
});

describe("stats()", () => {
  it("counts each caller without a result in rejected.missing, and the books balance", async () => {
    const failed = new Error("failed row");
    const batcher = createBatcher(
      (_ids: number[]) =>
        new Map<number, number | Error>([
          [1, 10],
          [4, failed],
        ]),
      { keyOf: (id) => id, maxBatchSize: 3 },
    );
    const settled = await settleAfter(batcher, [1, 2, 3, 4, 2], 10);
    expect(settled.map((s) => s.status)).toEqual([
      "fulfilled",
      "rejected",
      "rejected",
      "rejected",
      "rejected",
    ]);
    expectMissing(reasonOf(settled[1]), 2);
    expectMissing(reasonOf(settled[2]), 3);
    expect(reasonOf(settled[3])).toBe(failed);
    expectMissing(reasonOf(settled[4]), 2);
    const stats = batcher.stats();
    expect(stats.submitted).toBe(5);
    expect(stats.resolved).toBe(1);
    expect(stats.rejected).toEqual({
      error: 1,
      missing: 3,
      abort: 0,
      timeout: 0,
      queueFull: 0,
      stopped: 0,
      tooLarge: 0,
      invalid: 0,
      total: 4,
    });
    expect(stats.batches.total).toBe(2);
    expect(stats.submitted).toBe(stats.resolved + stats.rejected.total);
    await batcher.stop();
  });

  it("batchEnd counts missing callers as rejected", async () => {
    const batcher = createBatcher((_ids: number[]) => new Map([[1, 1]]), { keyOf: (id) => id });
    const ends: unknown[] = [];
    batcher.on("batchEnd", (event) => ends.push(event));
    await settleAfter(batcher, [1, 2, 3], 10);
    expect(ends).toMatchObject([
      {
        batchId: 1,
        size: 3,
        resolved: 1,
        rejected: 2,
        retried: 0,
        failed: false,
        error: undefined,
      },
    ]);
    await batcher.stop();
  });
});
