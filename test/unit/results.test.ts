/**
 * Results and errors: result `i` goes to item `i`; an `Error` entry rejects its item alone; a
 * throw or a rejection rejects the whole batch; `undefined` resolves everything with `undefined`;
 * anything else that does not fit rejects the batch with `BatchResultError`.
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
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A function batcher that records a copy of every batch it is given. */
function recording<T, R>(fn: BatchFunction<T, R>, options?: BatcherOptions) {
  const batches: T[][] = [];
  const batcher = createBatcher<T, R>((batch, context) => {
    batches.push([...batch]);
    return fn(batch, context);
  }, options);
  return { batcher, batches };
}

/** A synchronous subclass: doubles its items and counts its calls. */
class Sync extends AsyncBatcher<number, number> {
  calls = 0;

  processBatch(batch: number[]): number[] {
    this.calls++;
    return batch.map((x) => x * 2);
  }
}

/** The reason of a settled promise that must have rejected. */
function reasonOf(result: PromiseSettledResult<unknown> | undefined): unknown {
  expect(result?.status).toBe("rejected");
  return (result as PromiseRejectedResult).reason;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("results by position", () => {
  it("gives result i to item i, batch after batch", async () => {
    const { batcher, batches } = recording((batch: string[]) => batch.map((x, i) => `${x}:${i}`), {
      maxBatchSize: 3,
    });
    const results = Promise.all(["a", "b", "c", "d", "e"].map((x) => batcher.process(x)));
    await vi.advanceTimersByTimeAsync(10);
    expect(await results).toEqual(["a:0", "b:1", "c:2", "d:0", "e:1"]);
    expect(batches).toEqual([
      ["a", "b", "c"],
      ["d", "e"],
    ]);
    await batcher.stop();
  });

  it("keeps submission order inside and across batches, even when later batches finish first", async () => {
    const { batcher, batches } = recording(
      async (batch: number[], { batchId }) => {
        await sleep(100 / batchId); // batch 1 is the slowest
        return batch.map((x) => x * 10);
      },
      { maxBatchSize: 4, concurrency: Number.POSITIVE_INFINITY },
    );
    const finished: number[] = [];
    const results = Promise.all(
      range(0, 10).map((i) =>
        batcher.process(i).then((value) => {
          finished.push(i);
          return value;
        }),
      ),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(await results).toEqual(range(0, 10).map((i) => i * 10));
    expect(batches).toEqual([range(0, 4), range(4, 8), range(8, 10)]);
    // batch 3 (25 ms) settled before batch 2 (50 ms), before batch 1 (100 ms)
    expect(finished).toEqual([...range(8, 10), ...range(4, 8), ...range(0, 4)]);
    await batcher.stop();
  });

  it("rejects only the item whose result is an Error", async () => {
    const bad = new Error("item 1 failed");
    const { batcher } = recording((batch: number[]) => batch.map((x) => (x === 1 ? bad : x * 2)));
    const settled = Promise.allSettled(range(0, 3).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(10);
    const [first, second, third] = await settled;
    expect(first).toEqual({ status: "fulfilled", value: 0 });
    expect(reasonOf(second)).toBe(bad);
    expect(third).toEqual({ status: "fulfilled", value: 4 });
    await batcher.stop();
  });

  it("rejects on Error subclasses, and resolves with values that only look like errors", async () => {
    const typeError = new TypeError("not a number");
    const batchError = new BatcherError("ERR_BATCH_RESULT", "custom");
    const lookalike = { name: "Error", message: "not really an error" };
    const { batcher } = recording<number, unknown>(() => [
      typeError,
      "an error message",
      lookalike,
      null,
      batchError,
    ]);
    const settled = await settleAfter(batcher, range(0, 5), 10);
    expect(reasonOf(settled[0])).toBe(typeError);
    expect(settled[1]).toEqual({ status: "fulfilled", value: "an error message" });
    expect(settled[2]).toEqual({ status: "fulfilled", value: lookalike });
    expect(settled[3]).toEqual({ status: "fulfilled", value: null });
    expect(reasonOf(settled[4])).toBe(batchError);
    await batcher.stop();
  });
});

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

describe("a batch that throws or rejects", () => {
  const boom = new Error("boom");

  it.each([
    { how: "throws synchronously", fail: (): never => throw_(boom) },
    { how: "rejects asynchronously", fail: async () => sleep(5).then(() => throw_(boom)) },
    { how: "returns a rejected promise", fail: () => Promise.reject(boom) },
  ])(
    "$how: every item rejects with that same error, later batches are served",
    async ({ fail }) => {
      const { batcher, batches } = recording(
        (batch: number[], { batchId }) => (batchId === 1 ? fail() : batch.map((x) => x + 1)),
        { maxBatchSize: 2 },
      );
      // [1, 2] fails; [3, 4], queued behind it, and [5], submitted after, are served.
      const failed = Promise.allSettled([batcher.process(1), batcher.process(2)]);
      const queued = Promise.all([batcher.process(3), batcher.process(4)]);
      await vi.advanceTimersByTimeAsync(5);
      const [first, second] = await failed;
      expect(reasonOf(first)).toBe(boom);
      expect(reasonOf(second)).toBe(boom);
      expect(await queued).toEqual([4, 5]);
      const later = batcher.process(5);
      await vi.advanceTimersByTimeAsync(10);
      expect(await later).toBe(6);
      expect(batches).toEqual([[1, 2], [3, 4], [5]]);
      await batcher.stop();
    },
  );

  it.each([
    { what: "a string", value: "just a string" },
    { what: "undefined", value: undefined },
    { what: "null", value: null },
  ])("rejects every item with what was thrown, even $what", async ({ value }) => {
    const { batcher } = recording<number, number>(() => {
      throw value;
    });
    const settled = await settleAfter(batcher, [1, 2], 10);
    expect(settled).toEqual([
      { status: "rejected", reason: value },
      { status: "rejected", reason: value },
    ]);
    await batcher.stop();
  });

  it("rejects every item when a subclass's processBatch throws", async () => {
    class Throwing extends AsyncBatcher<number, number> {
      processBatch(): number[] {
        throw boom;
      }
    }
    const batcher = new Throwing();
    const settled = await settleAfter(batcher, [1, 2, 3], 10);
    for (const result of settled) expect(reasonOf(result)).toBe(boom);
    await batcher.stop();
  });
});

function throw_(error: unknown): never {
  throw error;
}

describe("a batch function that returns nothing", () => {
  it.each([
    { how: "returns undefined", fn: () => undefined },
    { how: "is async and returns nothing", fn: async () => {} },
    { how: "returns a promise of undefined", fn: () => Promise.resolve(undefined) },
  ])("$how: every item resolves with undefined", async ({ fn }) => {
    const calls = vi.fn(fn);
    const batcher = createBatcher((_batch: number[]) => calls(), { maxBatchSize: 3 });
    const settled = await settleAfter(batcher, [1, 2, 3, 4], 10);
    expect(settled).toEqual([1, 2, 3, 4].map(() => ({ status: "fulfilled", value: undefined })));
    expect(calls).toHaveBeenCalledTimes(2);
    await batcher.stop();
  });

  it("a subclass with a void processBatch resolves every item with undefined", async () => {
    const seen: string[][] = [];
    class Sink extends AsyncBatcher<string, void> {
      async processBatch(batch: string[]): Promise<void> {
        seen.push(batch);
      }
    }
    const batcher = new Sink();
    const results = Promise.all([batcher.process("a"), batcher.process("b")]);
    await vi.advanceTimersByTimeAsync(10);
    expect(await results).toEqual([undefined, undefined]);
    expect(seen).toEqual([["a", "b"]]);
    await batcher.stop();
  });
});

describe("a result that does not fit the batch", () => {
  /** Checks that every item of a batch of `size` rejected with one `BatchResultError`. */
  function expectBatchResultErrors(
    settled: PromiseSettledResult<unknown>[],
    size: number,
    received: (value: number | string) => void,
  ): void {
    expect(settled).toHaveLength(size);
    const first = reasonOf(settled[0]);
    for (const result of settled) {
      const error = reasonOf(result) as BatchResultError;
      expect(error).toBeInstanceOf(BatchResultError);
      expect(error).toBeInstanceOf(BatcherError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe("ERR_BATCH_RESULT");
      expect(error.name).toBe("BatchResultError");
      expect(error.expected).toBe(size);
      received(error.received);
      expect(error).toBe(first);
    }
  }

  const notArrays = [
    { what: "null", value: null, describes: /null/ },
    { what: "a plain object", value: { 0: 1, 1: 2 }, describes: /object/ },
    { what: "an array-like object", value: { length: 2, 0: 1, 1: 2 }, describes: /object/ },
    { what: "a number", value: 42, describes: /number/ },
    { what: "a string", value: "ab", describes: /string/ },
    { what: "a boolean", value: true, describes: /boolean/ },
    { what: "a Map", value: new Map([[0, 1]]), describes: /Map/ },
    { what: "a Set", value: new Set([1, 2]), describes: /Set/ },
  ];

  describe.each([
    { mode: "synchronous", wrap: (value: unknown) => value },
    { mode: "async", wrap: async (value: unknown) => value },
  ])("$mode", ({ wrap }) => {
    it.each(notArrays)(
      "$what rejects every item with BatchResultError",
      async ({ value, describes }) => {
        const batcher = createBatcher<number, number>(() => wrap(value) as never);
        const settled = await settleAfter(batcher, [1, 2], 10);
        expectBatchResultErrors(settled, 2, (received) => {
          expect(typeof received).toBe("string");
          expect(received).toMatch(describes);
        });
        await batcher.stop();
      },
    );

    it.each([
      { what: "an empty array", value: [] },
      { what: "too few results", value: [10, 20] },
      { what: "too many results", value: [10, 20, 30, 40] },
    ])("$what rejects every item with BatchResultError", async ({ value }) => {
      const batcher = createBatcher<number, number>(() => wrap(value) as never);
      const settled = await settleAfter(batcher, [1, 2, 3], 10);
      expectBatchResultErrors(settled, 3, (received) => expect(received).toBe(value.length));
      await batcher.stop();
    });
  });

  it("keeps serving later batches after a BatchResultError", async () => {
    const batcher = createBatcher(
      (batch: number[], { batchId }) => (batchId === 1 ? [0] : batch.map((x) => -x)),
      { maxBatchSize: 2 },
    );
    const bad = Promise.allSettled([batcher.process(1), batcher.process(2)]);
    const good = Promise.all([batcher.process(3), batcher.process(4)]);
    await vi.advanceTimersByTimeAsync(0);
    expectBatchResultErrors(await bad, 2, (received) => expect(received).toBe(1));
    expect(await good).toEqual([-3, -4]);
    await batcher.stop();
  });
});

describe("synchronous processBatch", () => {
  it("works, with the default options and with maxQueueTime 0", async () => {
    for (const options of [undefined, { maxQueueTime: 0 }, { maxBatchSize: 2 }]) {
      const batcher = new Sync(options);
      const results = Promise.all(range(0, 5).map((i) => batcher.process(i)));
      await vi.advanceTimersByTimeAsync(10);
      expect(await results).toEqual([0, 2, 4, 6, 8]);
      await batcher.stop();
    }
  });

  it("calls batch functions in cut order, one after the other", async () => {
    const order: number[] = [];
    const batcher = createBatcher(
      (batch: number[], { batchId }) => {
        order.push(batchId);
        return batch;
      },
      { maxBatchSize: 1, concurrency: 2 },
    );
    const results = Promise.all(range(0, 6).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(0);
    expect(await results).toEqual(range(0, 6));
    expect(order).toEqual(range(1, 7));
    await batcher.stop();
  });
});

describe("process() never calls processBatch synchronously", () => {
  it.each([
    { options: { maxBatchSize: 1 }, why: "the batch is full" },
    { options: { maxBatchSize: 1, concurrency: Number.POSITIVE_INFINITY }, why: "slots are free" },
    { options: { maxQueueTime: 0 }, why: "maxQueueTime is 0" },
  ])("not even when $why", async ({ options }) => {
    const fn = vi.fn((batch: number[]) => batch.map((x) => x + 1));
    const batcher = createBatcher(fn, options);
    const first = batcher.process(1);
    expect(fn).not.toHaveBeenCalled();
    const second = batcher.process(2);
    expect(fn).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(0);
    expect(await Promise.all([first, second])).toEqual([2, 3]);
    expect(fn).toHaveBeenCalled();
    await batcher.stop();
  });

  it("not for a synchronous subclass either, nor while its previous batch is settling", async () => {
    const batcher = new Sync({ maxBatchSize: 1 });
    const first = batcher.process(1);
    expect(batcher.calls).toBe(0);
    await expect(first).resolves.toBe(2);
    expect(batcher.calls).toBe(1);
    const second = batcher.process(2);
    expect(batcher.calls).toBe(1);
    await expect(second).resolves.toBe(4);
    expect(batcher.calls).toBe(2);
    await batcher.stop();
  });

  it("not when called from inside processBatch: the batch function is never re-entered", async () => {
    let depth = 0;
    let deepest = 0;
    const inner: Promise<number>[] = [];
    const batcher: AsyncBatcher<number, number> = createBatcher(
      (batch: number[]) => {
        depth++;
        deepest = Math.max(deepest, depth);
        const first = batch[0] as number;
        if (first < 3) inner.push(batcher.process(first + 1));
        depth--;
        return batch;
      },
      { maxBatchSize: 1, concurrency: 2 },
    );
    const outer = batcher.process(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(await outer).toBe(0);
    expect(await Promise.all(inner)).toEqual([1, 2, 3]);
    expect(deepest).toBe(1);
    await batcher.stop();
  });
});

describe("thenables", () => {
  it("accepts a batch function that returns a thenable, not a Promise", async () => {
    const { batcher, batches } = recording(
      (batch: number[]): PromiseLike<BatchResult<number>> => ({
        // biome-ignore lint/suspicious/noThenProperty: the point is a thenable that is not a Promise
        then(onFulfilled) {
          setTimeout(() => onFulfilled?.(batch.map((x) => x * 3)), 5);
          return Promise.resolve() as never;
        },
      }),
      { maxBatchSize: 2 },
    );
    const results = Promise.all(range(1, 6).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(30);
    expect(await results).toEqual([3, 6, 9, 12, 15]);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    await batcher.stop();
  });

  it("rejects the batch when the thenable rejects", async () => {
    const boom = new Error("thenable rejected");
    const batcher = createBatcher(
      (_batch: number[]): PromiseLike<number[]> => ({
        // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable
        then(_onFulfilled, onRejected) {
          setTimeout(() => onRejected?.(boom), 1);
          return Promise.resolve() as never;
        },
      }),
    );
    const settled = await settleAfter(batcher, [1, 2], 20);
    expect(settled.map(reasonOf)).toEqual([boom, boom]);
    await batcher.stop();
  });

  it("rejects the batch when the thenable's then() throws, and serves the next batch", async () => {
    const boom = new Error("then() threw");
    const batcher = createBatcher(
      (batch: number[], { batchId }): PromiseLike<number[]> | number[] =>
        batchId === 1
          ? {
              // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable
              then() {
                throw boom;
              },
            }
          : batch,
      { maxBatchSize: 2 },
    );
    const failed = Promise.allSettled([batcher.process(1), batcher.process(2)]);
    const next = Promise.all([batcher.process(3), batcher.process(4)]);
    await vi.advanceTimersByTimeAsync(0);
    const [first, second] = await failed;
    expect(reasonOf(first)).toBe(boom);
    expect(reasonOf(second)).toBe(boom);
    expect(await next).toEqual([3, 4]);
    await batcher.stop();
  });

  it("settles each item once when a thenable calls back more than once", async () => {
    const batcher = createBatcher(
      (batch: number[]): PromiseLike<number[]> => ({
        // biome-ignore lint/suspicious/noThenProperty: a misbehaving thenable
        then(onFulfilled, onRejected) {
          onFulfilled?.(batch);
          onFulfilled?.(batch.map(() => -1));
          onRejected?.(new Error("late"));
          return Promise.resolve() as never;
        },
      }),
    );
    const settled = await settleAfter(batcher, [1, 2], 10);
    expect(settled).toEqual([
      { status: "fulfilled", value: 1 },
      { status: "fulfilled", value: 2 },
    ]);
    // the batcher is still consistent: the slot was freed once, nothing is in flight
    expect(batcher.inFlight).toBe(0);
    const later = batcher.process(3);
    await vi.advanceTimersByTimeAsync(10);
    expect(await later).toBe(3);
    await batcher.stop();
  });
});

describe("unhandled rejections", () => {
  it("rejected items never surface as unhandled rejections", async () => {
    vi.useRealTimers(); // Node reports unhandled rejections on its own ticks
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => {
      unhandled.push(reason);
    };
    process.on("unhandledRejection", onUnhandled);
    try {
      const perItem = new Error("per item");
      const thrown = new Error("thrown");
      const rejected = new Error("rejected");
      const batcher = createBatcher<number, number>(
        async (batch, { batchId }: BatchContext) => {
          switch (batchId) {
            case 1:
              return batch.map((x) => (x % 2 === 0 ? perItem : x));
            case 2:
              throw thrown;
            case 3:
              return Promise.reject(rejected);
            case 4:
              return null as never; // BatchResultError
            default:
              return [1]; // wrong length
          }
        },
        { maxBatchSize: 2, maxQueueTime: 0 },
      );
      const settled = await Promise.allSettled(range(0, 10).map((i) => batcher.process(i)));
      expect(settled.map((result) => result.status)).toEqual([
        "rejected",
        "fulfilled",
        ...Array.from({ length: 8 }, () => "rejected"),
      ]);
      expect(reasonOf(settled[2])).toBe(thrown);
      expect(reasonOf(settled[4])).toBe(rejected);
      expect(reasonOf(settled[6])).toBeInstanceOf(BatchResultError);
      expect(reasonOf(settled[8])).toBeInstanceOf(BatchResultError);
      await batcher.stop();
      // Node checks for unhandled rejections once the microtask queue has drained.
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
