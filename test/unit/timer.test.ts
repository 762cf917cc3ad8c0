/**
 * Time: one timer per batcher and none when idle, an injected clock whose timers fire early,
 * `maxQueueTime` 0 and `Infinity`, and deadlines counted from the oldest item's arrival.
 */
import type { Clock } from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { double, manualBatcher, runJobs, syncBatcher } from "../helpers/manual.js";

/** A clock driven by hand: `time` is what `now()` says, and timers fire only when told to. */
class ManualClock implements Clock {
  time = 0;
  readonly timers = new Map<number, { callback: () => void; ms: number }>();
  #nextId = 1;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.timers.set(id, { callback, ms });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Fires every pending timer now, whatever it was set for. */
  fireAll(): void {
    const pending = [...this.timers.values()];
    this.timers.clear();
    for (const timer of pending) timer.callback();
  }
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("one timer per batcher", () => {
  it("never holds more than one timer, with items arriving at many different times", async () => {
    const { batcher, calls } = manualBatcher({
      maxBatchSize: 4,
      maxQueueTime: 50,
      concurrency: 1,
    });
    const results: Promise<number>[] = [];
    const counts: number[] = [];
    let settledCalls = 0;
    for (let i = 0; i < 40; i++) {
      results.push(batcher.process(i));
      counts.push(vi.getTimerCount());
      await vi.advanceTimersByTimeAsync(7);
      counts.push(vi.getTimerCount());
      if (i % 5 === 4 && settledCalls < calls.length) double(calls[settledCalls++]);
    }
    const idle = batcher.onIdle();
    let done = false;
    void idle.then(() => {
      done = true;
    });
    while (!done) {
      while (settledCalls < calls.length) double(calls[settledCalls++]);
      await vi.advanceTimersByTimeAsync(50);
      counts.push(vi.getTimerCount());
    }

    expect(Math.max(...counts)).toBe(1);
    expect(counts).toContain(1); // the scenario did need a timer
    expect(vi.getTimerCount()).toBe(0);
    expect(calls.flatMap((c) => c.items)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    for (const call of calls) expect(call.items.length).toBeLessThanOrEqual(4);
    expect(await Promise.all(results)).toEqual(Array.from({ length: 40 }, (_, i) => i * 2));
    await batcher.stop();
  });

  it("holds no timer when idle: never used, after a size cut, a time cut, a flush, a stop", async () => {
    const { batcher, reasons } = syncBatcher({ maxBatchSize: 2, maxQueueTime: 60_000 });
    expect(vi.getTimerCount()).toBe(0);

    // The first item arms the timer; reaching maxBatchSize cuts before it fires.
    const bySize = Promise.all([batcher.process(1), batcher.process(2)]);
    expect(await bySize).toEqual([2, 4]);
    await runJobs();
    expect(vi.getTimerCount()).toBe(0);

    const byTime = batcher.process(3);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(byTime).resolves.toBe(6);
    expect(vi.getTimerCount()).toBe(0);

    const flushed = batcher.process(4);
    await batcher.flush();
    await expect(flushed).resolves.toBe(8);
    expect(vi.getTimerCount()).toBe(0);

    const stopped = batcher.process(5);
    await batcher.stop();
    await expect(stopped).resolves.toBe(10);
    expect(vi.getTimerCount()).toBe(0);
    expect(reasons).toEqual(["size", "time", "flush", "stop"]);
  });

  it("holds no timer after a force stop", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 60_000 });
    const item = batcher.process(1).catch((error: unknown) => error);
    expect(vi.getTimerCount()).toBe(1);
    await batcher.stop({ force: true });
    expect(vi.getTimerCount()).toBe(0);
    await item;
  });
});

describe("an injected clock", () => {
  it("re-arms when its timer fires before maxQueueTime has passed on clock.now()", async () => {
    const clock = new ManualClock();
    const { batcher, calls } = syncBatcher({ maxQueueTime: 100, clock });
    const result = batcher.process(1);
    await runJobs();
    expect(clock.timers.size).toBe(1);

    clock.time = 40;
    clock.fireAll(); // 60 ms early
    await runJobs();
    expect(calls).toEqual([]);
    expect(clock.timers.size).toBe(1);
    const rearmed = [...clock.timers.values()][0];
    expect(rearmed?.ms).toBeGreaterThan(0);
    expect(rearmed?.ms).toBeLessThanOrEqual(60);

    clock.time = 99.5;
    clock.fireAll(); // half a millisecond early
    await runJobs();
    expect(calls).toEqual([]);
    expect(clock.timers.size).toBe(1);

    clock.time = 100;
    clock.fireAll();
    await runJobs();
    expect(calls).toEqual([[1]]);
    await expect(result).resolves.toBe(2);
    expect(clock.timers.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0); // the host's timers were never used
    await batcher.stop();
  });
});

/** A `ManualClock` that also has `setImmediate`, fired by hand like its timers. */
class ManualClockWithImmediate extends ManualClock {
  readonly immediates = new Map<number, () => void>();
  #nextId = 1;

  setImmediate(callback: () => void): unknown {
    const id = this.#nextId++;
    this.immediates.set(id, callback);
    return id;
  }

  clearImmediate(handle: unknown): void {
    this.immediates.delete(handle as number);
  }

  fireImmediates(): void {
    const pending = [...this.immediates.values()];
    this.immediates.clear();
    for (const callback of pending) callback();
  }
}

describe("the last fraction of a millisecond", () => {
  it("is waited out on the next turns of the event loop, not with another timer", async () => {
    const clock = new ManualClockWithImmediate();
    const { batcher, calls } = syncBatcher({ maxQueueTime: 10, clock });
    const result = batcher.process(1);
    await runJobs();
    expect([...clock.timers.values()].map((timer) => timer.ms)).toEqual([10]);

    clock.time = 9.4; // the host timer fired 0.6 ms early
    clock.fireAll();
    await runJobs();
    expect(calls).toEqual([]);
    expect(clock.timers.size).toBe(0);
    expect(clock.immediates.size).toBe(1);

    clock.time = 9.9;
    clock.fireImmediates(); // still early: another turn
    await runJobs();
    expect(calls).toEqual([]);
    expect(clock.immediates.size).toBe(1);

    clock.time = 10;
    clock.fireImmediates();
    await runJobs();
    expect(calls).toEqual([[1]]);
    await expect(result).resolves.toBe(2);
    expect(clock.immediates.size + clock.timers.size).toBe(0);
    await batcher.stop();
  });

  it("falls back to a timer when the clock does not move", async () => {
    const clock = new ManualClockWithImmediate();
    const { batcher, calls } = syncBatcher({ maxQueueTime: 10, clock });
    const result = batcher.process(1);
    await runJobs();
    clock.time = 9.5;
    clock.fireAll();
    let turns = 0;
    while (clock.immediates.size > 0) {
      clock.fireImmediates();
      turns++;
    }
    await runJobs();
    expect(turns).toBe(1000);
    expect(calls).toEqual([]);
    expect([...clock.timers.values()].map((timer) => timer.ms)).toEqual([1]);
    clock.time = 10.5;
    clock.fireAll();
    await runJobs();
    expect(calls).toEqual([[1]]);
    await expect(result).resolves.toBe(2);
    await batcher.stop();
  });

  it("leaves no immediate behind when the batcher stops", async () => {
    const clock = new ManualClockWithImmediate();
    const { batcher } = syncBatcher({ maxQueueTime: 10, clock });
    const result = batcher.process(1);
    await runJobs();
    clock.time = 9.5;
    clock.fireAll();
    await runJobs();
    expect(clock.immediates.size).toBe(1);
    await batcher.stop({ force: true });
    expect(clock.immediates.size).toBe(0);
    await expect(result).rejects.toMatchObject({ code: "ERR_BATCHER_STOPPED" });
  });
});

describe("maxQueueTime: 0", () => {
  it("puts everything submitted in the same tick into one batch, across chained awaits", async () => {
    const { batcher, calls } = syncBatcher({ maxQueueTime: 0 });
    const results = [batcher.process(1)];
    await Promise.resolve();
    results.push(batcher.process(2));
    await null;
    await Promise.resolve();
    results.push(batcher.process(3));
    await (async () => {
      await Promise.resolve();
      await Promise.resolve(4);
      results.push(batcher.process(4));
    })();
    expect(calls).toEqual([]);

    await runJobs();
    expect(calls).toEqual([[1, 2, 3, 4]]);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8]);

    // A later tick makes a new batch.
    const later = [batcher.process(5), batcher.process(6)];
    await runJobs();
    expect(calls).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
    expect(await Promise.all(later)).toEqual([10, 12]);
    expect(Date.now()).toBe(0);
    await batcher.stop();
  });

  it("still splits by maxBatchSize", async () => {
    const { batcher, calls } = syncBatcher({ maxQueueTime: 0, maxBatchSize: 2 });
    const results = [1, 2, 3, 4, 5].map((i) => batcher.process(i));
    await runJobs();
    expect(calls).toEqual([[1, 2], [3, 4], [5]]);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8, 10]);
    await batcher.stop();
  });
});

describe("maxQueueTime: Infinity", () => {
  it("cuts only by size, flush and stop", async () => {
    const { batcher, calls, reasons } = syncBatcher({
      maxBatchSize: 3,
      maxQueueTime: Number.POSITIVE_INFINITY,
    });
    const first = [batcher.process(1), batcher.process(2)];
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000_000);
    expect(calls).toEqual([]);

    first.push(batcher.process(3));
    await runJobs();
    expect(calls).toEqual([[1, 2, 3]]);
    expect(await Promise.all(first)).toEqual([2, 4, 6]);

    const flushed = batcher.process(4);
    await vi.advanceTimersByTimeAsync(10_000_000);
    expect(calls).toHaveLength(1);
    await batcher.flush();
    await expect(flushed).resolves.toBe(8);

    const stopped = batcher.process(5);
    await vi.advanceTimersByTimeAsync(10_000_000);
    expect(calls).toHaveLength(2);
    await batcher.stop();
    await expect(stopped).resolves.toBe(10);

    expect(calls).toEqual([[1, 2, 3], [4], [5]]);
    expect(reasons).toEqual(["size", "flush", "stop"]);
  });
});

describe("the deadline counts from the oldest item's arrival", () => {
  it("dispatches at once when a slot frees after the oldest item has waited maxQueueTime", async () => {
    const { batcher, calls, reasons } = manualBatcher({ maxQueueTime: 100, concurrency: 1 });
    const a = batcher.process(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.startedAt)).toEqual([100]);

    await vi.advanceTimersByTimeAsync(50);
    const b = batcher.process(2); // arrives at 150: due at 250, but the slot is busy
    await vi.advanceTimersByTimeAsync(150);
    expect(calls).toHaveLength(1);

    double(calls[0]); // the slot frees at 300
    await runJobs();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.items).toEqual([2]);
    expect(calls[1]?.startedAt).toBe(300);

    await vi.advanceTimersByTimeAsync(50);
    const c = batcher.process(3); // arrives at 350: due at 450
    await vi.advanceTimersByTimeAsync(50);
    double(calls[1]); // the slot frees at 400: item 3 has waited 50 ms only
    await runJobs();
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(49);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(3);
    expect(calls[2]?.startedAt).toBe(450); // not 500, a full maxQueueTime after the slot freed

    double(calls[2]);
    expect(await Promise.all([a, b, c])).toEqual([2, 4, 6]);
    expect(reasons).toEqual(["time", "time", "time"]);
    await batcher.stop();
  });
});
