/**
 * The one seam through which the batcher reads time and sets timers, so that tests can drive
 * exact batch boundaries with fake timers or a hand-made clock.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences are used). */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /**
   * Optional: runs `callback` on the next turn of the event loop, sooner than any timer. Used to
   * wait out the last fraction of a millisecond when a timer fired a little early, instead of a
   * whole extra timer tick. Without it, the batcher uses a 1 ms timer there.
   */
  setImmediate?(callback: () => void): unknown;
  clearImmediate?(handle: unknown): void;
}

type Immediate = (callback: () => void) => unknown;
type ClearImmediate = (handle: unknown) => void;

/**
 * The host's clock. Every call looks the functions up on `globalThis` at call time, so fake timers
 * installed after this module was loaded (`vi.useFakeTimers()`) are honoured.
 */
export const systemClock: Clock = Object.freeze({
  now: () => globalThis.performance.now(),
  setTimeout: (callback: () => void, ms: number) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle: unknown) =>
    globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
  // Node, Bun and Deno have setImmediate; where it is missing, a 0 ms timer stands in.
  setImmediate: (callback: () => void) => {
    const immediate = (globalThis as { setImmediate?: Immediate }).setImmediate;
    return typeof immediate === "function"
      ? { immediate: immediate(callback) }
      : { timeout: globalThis.setTimeout(callback, 0) };
  },
  clearImmediate: (handle: unknown) => {
    const h = handle as { immediate?: unknown; timeout?: unknown };
    if (h.timeout !== undefined) {
      globalThis.clearTimeout(h.timeout as Parameters<typeof globalThis.clearTimeout>[0]);
    } else {
      (globalThis as { clearImmediate?: ClearImmediate }).clearImmediate?.(h.immediate);
    }
  },
});

/**
 * Runs `callback` once the current tick's promise jobs have run, so that everything submitted in
 * this tick, including from chained `await`s, lands in one batch. On Node this is the first
 * `process.nextTick` after the microtask queue drains (DataLoader's scheduling); elsewhere, the
 * next macrotask.
 */
export function afterTick(callback: () => void): void {
  const nextTick = (globalThis as { process?: { nextTick?: (cb: () => void) => void } }).process
    ?.nextTick;
  if (typeof nextTick === "function") {
    resolved.then(() => nextTick(callback));
  } else {
    globalThis.setTimeout(callback, 0);
  }
}

const resolved = Promise.resolve();
