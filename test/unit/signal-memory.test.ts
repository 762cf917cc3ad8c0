/**
 * The memory test of issue 3: 1,000,000 `process()` calls sharing one long-lived `AbortSignal`
 * leave no listener behind. The batcher holds one `abort` listener per distinct signal while
 * items using it are pending, and none once they have all settled; with a timeout on every item,
 * one timer serves them all and none is left. Real timers, a synchronous batch function, calls
 * submitted in chunks.
 */
import { getEventListeners } from "node:events";
import { type Clock, createBatcher } from "async-batcher";
import { describe, expect, it } from "vitest";

const TOTAL = 1_000_000;
const CHUNK = 10_000;
const CHUNKS = TOTAL / CHUNK;

const abortListeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

/** Wraps `signal.addEventListener` to count the `abort` listeners added and the most held at once. */
function watchListeners(signal: AbortSignal) {
  const stats = { added: 0, most: 0 };
  const original = signal.addEventListener;
  signal.addEventListener = function (
    this: AbortSignal,
    ...args: Parameters<AbortSignal["addEventListener"]>
  ) {
    original.apply(this, args);
    if (args[0] === "abort") {
      stats.added++;
      stats.most = Math.max(stats.most, abortListeners(signal));
    }
  } as AbortSignal["addEventListener"];
  return stats;
}

/** The host's clock, counting the timers (and immediates) it holds. */
function countingClock() {
  const live = new Set<unknown>();
  const stats = { armed: 0, most: 0, live: () => live.size };
  const hold = (handle: unknown) => {
    live.add(handle);
    stats.armed++;
    stats.most = Math.max(stats.most, live.size);
  };
  const clock: Clock = {
    now: () => performance.now(),
    setTimeout(callback, ms) {
      const handle: NodeJS.Timeout = setTimeout(() => {
        live.delete(handle);
        callback();
      }, ms);
      hold(handle);
      return handle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      clearTimeout(handle as NodeJS.Timeout);
    },
    setImmediate(callback) {
      const handle: NodeJS.Immediate = setImmediate(() => {
        live.delete(handle);
        callback();
      });
      hold(handle);
      return handle;
    },
    clearImmediate(handle) {
      live.delete(handle);
      clearImmediate(handle as NodeJS.Immediate);
    },
  };
  return { clock, stats };
}

describe("one long-lived signal shared by 1,000,000 calls", () => {
  it("holds exactly one listener while items are pending and none once they settled", async () => {
    const controller = new AbortController();
    const signal = controller.signal;
    const watched = watchListeners(signal);
    let batches = 0;
    let items = 0;
    const batcher = createBatcher(
      (batch: number[]) => {
        batches++;
        items += batch.length;
        return batch;
      },
      { maxQueueTime: 0 },
    );

    let pendingChecks = 0;
    for (let c = 0; c < CHUNKS; c++) {
      const chunk: Promise<number>[] = new Array(CHUNK);
      for (let i = 0; i < CHUNK; i++) chunk[i] = batcher.process(i, { signal });
      // Checked on every chunk, but counted with plain arithmetic to keep the loop cheap.
      if (abortListeners(signal) === 1) pendingChecks++;
      const results = await Promise.all(chunk);
      if (results[CHUNK - 1] !== CHUNK - 1) throw new Error(`chunk ${c}: wrong results`);
      if (abortListeners(signal) !== 0) {
        throw new Error(`chunk ${c}: ${abortListeners(signal)} listeners after it settled`);
      }
    }

    expect(items).toBe(TOTAL);
    expect(batches).toBe(CHUNKS); // one batch per chunk: all of a tick's calls go together
    expect(pendingChecks).toBe(CHUNKS);
    expect(abortListeners(signal)).toBe(0);
    expect(watched.most).toBe(1);
    expect(watched.added).toBeLessThanOrEqual(CHUNKS); // one per chunk at most, never one per call

    // Aborting the long-lived signal now touches no caller and nothing in the batcher.
    controller.abort("late");
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    await expect(batcher.process(1, { signal: new AbortController().signal })).resolves.toBe(1);
    await batcher.stop();
  }, 60_000);

  it("with a timeout on every item: one timer at most, none left, and no listener left", async () => {
    const controller = new AbortController();
    const signal = controller.signal;
    const watched = watchListeners(signal);
    const { clock, stats } = countingClock();
    let items = 0;
    const batcher = createBatcher(
      (batch: number[]) => {
        items += batch.length;
        return batch;
      },
      { maxQueueTime: Number.POSITIVE_INFINITY, maxBatchSize: CHUNK, clock },
    );

    let pendingOk = 0;
    for (let c = 0; c < CHUNKS; c++) {
      const chunk: Promise<number>[] = new Array(CHUNK);
      for (let i = 0; i < CHUNK; i++) chunk[i] = batcher.process(i, { signal, timeout: 60_000 });
      if (abortListeners(signal) === 1 && stats.live() === 1) pendingOk++;
      await Promise.all(chunk);
      if (abortListeners(signal) !== 0 || stats.live() !== 0) {
        throw new Error(
          `chunk ${c}: ${abortListeners(signal)} listeners and ${stats.live()} timers after it settled`,
        );
      }
    }

    expect(items).toBe(TOTAL);
    expect(pendingOk).toBe(CHUNKS);
    expect(stats.live()).toBe(0);
    expect(stats.most).toBe(1);
    expect(stats.armed).toBeLessThanOrEqual(CHUNKS); // one per chunk at most, never one per call
    expect(abortListeners(signal)).toBe(0);
    expect(watched.most).toBe(1);
    expect(watched.added).toBeLessThanOrEqual(CHUNKS);
    controller.abort("late");
    await batcher.stop();
    expect(stats.live()).toBe(0);
  }, 60_000);
});
