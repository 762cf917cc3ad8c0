/**
 * `createBatcher(fn, options)`: the same batcher as a subclass, from a plain function; the
 * `context` every batch function receives; the batcher's `name`.
 */
import {
  AsyncBatcher,
  type BatchContext,
  type BatcherOptions,
  BatcherStoppedError,
  type BatchFunction,
  createBatcher,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Squares its items after 20 ms and records each batch with the time it started. */
const squares =
  (log: Array<[start: number, batch: number[]]>): BatchFunction<number, number> =>
  async (batch) => {
    log.push([Date.now(), [...batch]]);
    await sleep(20);
    return batch.map((x) => x * x);
  };

class Squares extends AsyncBatcher<number, number> {
  constructor(
    readonly log: Array<[start: number, batch: number[]]>,
    options?: BatcherOptions<number, number>,
  ) {
    super(options);
  }

  processBatch(batch: number[], context: BatchContext) {
    return squares(this.log)(batch, context);
  }
}

describe("createBatcher works like a subclass", () => {
  it("returns an AsyncBatcher with the whole public API", async () => {
    const batcher = createBatcher((batch: number[]) => batch);
    expect(batcher).toBeInstanceOf(AsyncBatcher);
    expect(batcher.isRunning).toBe(false);
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    for (const method of ["process", "flush", "onIdle", "stop"] as const) {
      expect(typeof batcher[method]).toBe("function");
    }
    expect(typeof batcher[Symbol.asyncDispose]).toBe("function");
    await batcher.stop();
  });

  it("produces the same batches, at the same times, with the same results", async () => {
    const options = { maxBatchSize: 3, maxQueueTime: 50, concurrency: 2 };
    const fromFunction: Array<[number, number[]]> = [];
    const fromClass: Array<[number, number[]]> = [];
    const batchers = [
      createBatcher(squares(fromFunction), options),
      new Squares(fromClass, options),
    ];
    const results = batchers.map(async (batcher) => {
      const early = range(0, 7).map((i) => batcher.process(i));
      await sleep(30);
      return Promise.all([...early, batcher.process(7)]);
    });
    await vi.advanceTimersByTimeAsync(200);
    const [a, b] = await Promise.all(results);
    expect(a).toEqual(range(0, 8).map((i) => i * i));
    expect(b).toEqual(a);
    // 0-2 and 3-5 by size at once; 6 waits (slots free at 20), 7 joins it, both go at 50 by time
    expect(fromFunction).toEqual([
      [0, [0, 1, 2]],
      [0, [3, 4, 5]],
      [50, [6, 7]],
    ]);
    expect(fromClass).toEqual(fromFunction);
    for (const batcher of batchers) await batcher.stop();
  });

  it("applies its options: maxQueueSize rejects what does not fit", async () => {
    const batcher = createBatcher((batch: number[]) => batch, { maxQueueSize: 2 });
    const accepted = [batcher.process(1), batcher.process(2)];
    await expect(batcher.process(3)).rejects.toMatchObject({ code: "ERR_QUEUE_FULL" });
    await vi.advanceTimersByTimeAsync(10);
    expect(await Promise.all(accepted)).toEqual([1, 2]);
    await batcher.stop();
  });

  it("gives each call its own batcher, even from the same function", async () => {
    const fn = vi.fn((batch: number[]) => batch);
    const one = createBatcher(fn, { maxQueueTime: 0 });
    const two = createBatcher(fn, { maxQueueTime: 0 });
    await one.stop();
    expect(one.isRunning).toBe(false);
    await expect(one.process(1)).rejects.toBeInstanceOf(BatcherStoppedError);
    await expect(two.process(2)).resolves.toBe(2);
    expect(fn.mock.calls.map(([batch]) => batch)).toEqual([[2]]);
    await two.stop();
  });
});

describe("the batch context", () => {
  it("numbers batches 1, 2, 3... in the order they are cut", async () => {
    const seen: Array<[id: number, batch: number[]]> = [];
    const batcher = createBatcher(
      async (batch: number[], { batchId }: BatchContext) => {
        seen.push([batchId, [...batch]]);
        await sleep(batchId === 1 ? 50 : 5); // batch 1 finishes last
        return batch;
      },
      { maxBatchSize: 2, maxQueueTime: 10, concurrency: Infinity },
    );
    const first = Promise.all(range(0, 5).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(100);
    expect(await first).toEqual(range(0, 5));
    const later = batcher.process(5);
    await vi.advanceTimersByTimeAsync(15);
    expect(await later).toBe(5);
    expect(seen).toEqual([
      [1, [0, 1]],
      [2, [2, 3]],
      [3, [4]], // cut by time, after the two size cuts
      [4, [5]], // numbering goes on after the batcher went idle
    ]);
    await batcher.stop();
  });

  it("numbers each batcher's batches from 1", async () => {
    const ids: Array<[string, number]> = [];
    const make = (label: string) =>
      createBatcher(
        (batch: number[], { batchId }: BatchContext) => {
          ids.push([label, batchId]);
          return batch;
        },
        { maxBatchSize: 1 },
      );
    const a = make("a");
    const b = make("b");
    await Promise.all([a.process(1), a.process(2), b.process(3)]);
    expect(ids).toEqual([
      ["a", 1],
      ["a", 2],
      ["b", 1],
    ]);
    await Promise.all([a.stop(), b.stop()]);
  });

  it("has an AbortSignal that stays unaborted for a batch that completes", async () => {
    const signals: AbortSignal[] = [];
    const abortedInside: boolean[] = [];
    const batcher = createBatcher(
      async (batch: number[], context: BatchContext) => {
        signals.push(context.signal);
        await sleep(5);
        abortedInside.push(context.signal.aborted);
        return batch;
      },
      { maxBatchSize: 2 },
    );
    const results = Promise.all(range(0, 4).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(20);
    expect(await results).toEqual(range(0, 4));
    await batcher.stop();
    expect(signals).toHaveLength(2);
    expect(signals[0]).not.toBe(signals[1]);
    for (const signal of signals) {
      expect(signal).toBeInstanceOf(AbortSignal);
      expect(signal.aborted).toBe(false);
    }
    expect(abortedInside).toEqual([false, false]);
  });

  it("aborts the signal of a running batch on force stop, with the callers' error", async () => {
    let signal: AbortSignal | undefined;
    const batcher = createBatcher(
      async (batch: number[], context: BatchContext) => {
        signal = context.signal;
        await sleep(1000);
        return batch;
      },
      { maxQueueTime: 0 },
    );
    const pending = batcher.process(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(signal?.aborted).toBe(false);
    await batcher.stop({ force: true });
    const error = await pending.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(BatcherStoppedError);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
    await vi.advanceTimersByTimeAsync(1000); // let the abandoned batch function finish
  });
});

describe("name", () => {
  it('is "AsyncBatcher" by default for createBatcher', async () => {
    const batcher = createBatcher((batch: number[]) => batch);
    expect(batcher.name).toBe("AsyncBatcher");
    await batcher.stop();
  });

  it('is "AsyncBatcher" for createBatcher when the name option is undefined', async () => {
    const batcher = createBatcher((batch: number[]) => batch, { name: undefined });
    expect(batcher.name).toBe("AsyncBatcher");
    await batcher.stop();
  });

  it("is the name option when given", async () => {
    const fromFunction = createBatcher((batch: number[]) => batch, { name: "users" });
    const fromClass = new Squares([], { name: "squares" });
    expect(fromFunction.name).toBe("users");
    expect(fromClass.name).toBe("squares");
    await Promise.all([fromFunction.stop(), fromClass.stop()]);
  });

  it("defaults to the subclass's own name, down the class chain", async () => {
    class Child extends Squares {}
    const Named = class extends AsyncBatcher<string, string> {
      processBatch(batch: string[]) {
        return batch;
      }
    };
    const squares = new Squares([]);
    const child = new Child([]);
    const named = new Named();
    expect(squares.name).toBe("Squares");
    expect(child.name).toBe("Child");
    expect(named.name).toBe("Named");
    await Promise.all([squares.stop(), child.stop(), named.stop()]);
  });

  it('falls back to "AsyncBatcher" for an anonymous subclass', async () => {
    const anonymous = new (class extends AsyncBatcher<number, number> {
      processBatch(batch: number[]) {
        return batch;
      }
    })();
    expect(anonymous.name).toBe("AsyncBatcher");
    await anonymous.stop();
  });
});
