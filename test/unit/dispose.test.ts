/**
 * `[Symbol.asyncDispose]()`: a graceful stop, so that `await using batcher = ...` works.
 */
import { type AsyncBatcher, BatcherStoppedError, createBatcher } from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("await using", () => {
  it("stops the batcher gracefully at the end of the block: queued items settle", async () => {
    const batches: number[][] = [];
    let results: Promise<number[]> | undefined;
    let outside: AsyncBatcher<number, number> | undefined;
    {
      await using batcher = createBatcher(
        async (items: number[]) => {
          batches.push([...items]);
          return items.map((x) => x * 10);
        },
        { maxQueueTime: 60_000 },
      );
      outside = batcher;
      results = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
      expect(batcher.isRunning).toBe(true);
    }
    // No fake time has passed: the stop dispatched the queue instead of waiting for the timer.
    expect(Date.now()).toBe(0);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(outside.isRunning).toBe(false);
    expect(outside.queueSize).toBe(0);
    expect(outside.inFlight).toBe(0);
    expect(await results).toEqual([10, 20, 30]);
    await expect(outside.process(4)).rejects.toBeInstanceOf(BatcherStoppedError);
  });

  it("stops the batcher when the block throws", async () => {
    let outside: AsyncBatcher<number, number> | undefined;
    let result: Promise<number> | undefined;
    const failure = new Error("block failed");
    const run = async () => {
      await using batcher = createBatcher((items: number[]) => items, { maxQueueTime: 60_000 });
      outside = batcher;
      result = batcher.process(5);
      throw failure;
    };
    await expect(run()).rejects.toBe(failure);
    expect(outside?.isRunning).toBe(false);
    await expect(result).resolves.toBe(5);
  });
});

describe("[Symbol.asyncDispose]", () => {
  it("exists and returns the stop promise", async () => {
    const batcher = createBatcher((items: number[]) => items);
    expect(typeof batcher[Symbol.asyncDispose]).toBe("function");
    const result = batcher.process(1);
    const disposed = batcher[Symbol.asyncDispose]();
    expect(disposed).toBeInstanceOf(Promise);
    expect(batcher.stop()).toBe(disposed);
    await disposed;
    await expect(result).resolves.toBe(1);
    expect(batcher.isRunning).toBe(false);
  });

  it("returns the promise of a stop already under way", async () => {
    const batcher = createBatcher((items: number[]) => items);
    const result = batcher.process(1);
    const stopped = batcher.stop();
    expect(batcher[Symbol.asyncDispose]()).toBe(stopped);
    await stopped;
    await expect(result).resolves.toBe(1);
  });
});
