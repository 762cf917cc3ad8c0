/**
 * Shared by the property tests (property.test.ts, property-flow.test.ts, property-retry.test.ts):
 * the arbitraries, errors and runners their scenario generators use.
 */
import fc from "fast-check";
import { vi } from "vitest";

/** How a scenario ends: `stop()`, `stop({ timeout })`, or `stop({ force: true })`. */
export type StopMode = "graceful" | "timeout" | "force";

/** A count option: a positive integer up to `max`, or (one time in five) `Infinity`. */
export const count = (max: number): fc.Arbitrary<number> =>
  fc.oneof(
    { arbitrary: fc.integer({ min: 1, max }), weight: 4 },
    { arbitrary: fc.constant(Number.POSITIVE_INFINITY), weight: 1 },
  );

/** What a failing batch function throws or rejects with. */
export class BatchFailure extends Error {
  override name = "BatchFailure";
}

/** The per-item error an `itemErrors` batch returns for the items `itemFails` picks. */
export class ItemFailure extends Error {
  override name = "ItemFailure";
  readonly id: number;
  constructor(id: number) {
    super(`item ${id} failed`);
    this.id = id;
  }
}

/** Items of `itemErrors` batches fail on their own: the ones this picks. */
export const itemFails = (id: number): boolean => id % 3 === 1;

/** One thing a scenario does at `at` ms; steps at the same ms run by `order`, then as listed. */
/** How one caller's promise settled, as a property test saw it. */
export interface Settlement {
  readonly ok: boolean;
  readonly value: unknown;
  readonly reason: unknown;
  /** Order in which it was seen. */
  readonly seq: number;
  /** ms on the fake clock when it was seen. */
  readonly time: number;
}

export interface Step {
  readonly at: number;
  readonly order: number;
  readonly run: () => unknown;
}

/**
 * Runs `steps` in time order on the fake clock, moving it between them and calling `check` after
 * each move. `awaitSteps`: wait for what each step returns before the next (steps at one ms then
 * run in successive jobs, not in one synchronous run).
 */
export async function runTimeline(
  steps: Step[],
  check: (label: string) => void,
  awaitSteps: boolean,
): Promise<void> {
  steps.sort((a, b) => a.at - b.at || a.order - b.order);
  let clock = 0;
  for (const step of steps) {
    if (step.at > clock) {
      await vi.advanceTimersByTimeAsync(step.at - clock);
      clock = step.at;
      check(`at ${clock} ms`);
    }
    if (awaitSteps) await step.run();
    else step.run();
  }
}

/** How a generated batch function behaves (its outcome is the caller's business). */
export interface Timing {
  /** Returns (or throws) during the call, without a timer. */
  readonly sync: boolean;
  /** ms before an asynchronous batch settles. */
  readonly duration: number;
  /** An asynchronous batch rejects with `signal.reason` as soon as its signal aborts. */
  readonly honoursAbort: boolean;
}

/**
 * Runs a generated batch: `produce()` gives (or throws) its outcome, at once when `timing.sync`,
 * else after `timing.duration` ms, or as soon as `signal` aborts when it honours that. `end()` is
 * called when the batch function is over, before it settles.
 */
export function perform<R = number[]>(
  timing: Timing,
  signal: () => AbortSignal,
  produce: () => R,
  end: (sync: boolean) => void,
): R | Promise<R> {
  if (timing.sync) {
    try {
      return produce();
    } finally {
      end(true);
    }
  }
  return new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      end(false);
      if (timing.honoursAbort) signal().removeEventListener("abort", onAbort);
      try {
        resolve(produce());
      } catch (thrown) {
        reject(thrown);
      }
    }, timing.duration);
    const onAbort = () => {
      clearTimeout(timer);
      end(false);
      reject(signal().reason);
    };
    // Only some read the signal: the batcher creates it lazily.
    if (timing.honoursAbort) signal().addEventListener("abort", onAbort, { once: true });
  });
}
