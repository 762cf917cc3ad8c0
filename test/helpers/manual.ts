/**
 * Batchers driven by hand, for the fake-timer unit tests: batches stay in flight until the test
 * settles them, and every cut's reason is recorded.
 */
import {
  type BatchContext,
  type BatcherOptions,
  type BatchResult,
  type CutReason,
  createBatcher,
} from "async-batcher";
import { vi } from "vitest";

/** One call of the batch function, waiting for the test to settle it. */
export interface Call {
  items: number[];
  context: BatchContext;
  /** `Date.now()` (the fake clock) when the batch function was called. */
  startedAt: number;
  resolve: (results: BatchResult<number>) => void;
  reject: (error: unknown) => void;
}

/** Options with a logger that records each cut's reason. */
function recordingReasons(options: BatcherOptions, reasons: CutReason[]): BatcherOptions {
  return {
    ...options,
    logger: (event) => {
      if (event.type === "batchCut") reasons.push(event.reason);
    },
  };
}

/** A batcher whose batches stay in flight until the test settles them through `calls`. */
export function manualBatcher(options: BatcherOptions) {
  const calls: Call[] = [];
  const reasons: CutReason[] = [];
  let running = 0;
  let maxRunning = 0;
  const batcher = createBatcher<number, number>(
    (items, context) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      return new Promise<BatchResult<number>>((resolve, reject) => {
        calls.push({ items: [...items], context, startedAt: Date.now(), resolve, reject });
      }).finally(() => {
        running--;
      });
    },
    recordingReasons(options, reasons),
  );
  return { batcher, calls, reasons, maxRunning: () => maxRunning };
}

/** A batcher that answers each batch at once (doubling), recording the batches. */
export function syncBatcher(options: BatcherOptions) {
  const calls: number[][] = [];
  const reasons: CutReason[] = [];
  const batcher = createBatcher(
    (items: number[]) => {
      calls.push([...items]);
      return items.map((x) => x * 2);
    },
    recordingReasons(options, reasons),
  );
  return { batcher, calls, reasons };
}

/** Settles a call with each item doubled. */
export const double = (
  call: { items: number[]; resolve: (results: number[]) => void } | undefined,
) => call?.resolve(call.items.map((x) => x * 2));

/** Records whether a promise has settled and how, keeping a rejection from going unhandled. */
export function track(promise: Promise<unknown>) {
  const state: { settled: boolean; error?: unknown } = { settled: false };
  promise.then(
    () => {
      state.settled = true;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

/** Lets every pending job run (microtasks, ticks) without moving the fake clock. */
export const runJobs = () => vi.advanceTimersByTimeAsync(0);
