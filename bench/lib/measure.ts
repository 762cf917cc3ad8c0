/**
 * Helpers for the child process: the batch function, verification, clocks and heap readings.
 * A wrong result is not a measurement: `fail()` ends the child at once with exit code 1, and the
 * parent fails the whole run.
 */
import type { Work } from "./subjects.js";

export const now = (): number => performance.now();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Lets timers a library left behind (a `setTimeout(0)` per item, a cleanup timer) fire before
 * the next timed region, so one burst's leftovers are not billed to the next.
 */
export async function settleBackground(): Promise<void> {
  await sleep(2);
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Ends the child at once: a wrong result or a broken invariant must fail the run, loudly. */
export function fail(message: string): never {
  process.stderr.write(`\nVERIFICATION FAILED: ${message}\n`);
  process.exit(1);
}

/** The result every batch function computes for a key. */
export function expected(key: number): number {
  return key * 2;
}

/** Checks that result `i` is `expected(base + i)` for every `i`. */
export function verifyBurst(results: readonly unknown[], base: number, count: number): void {
  if (results.length !== count) fail(`expected ${count} results, got ${results.length}`);
  for (let i = 0; i < count; i++) {
    const want = expected(base + i);
    if (results[i] !== want) {
      fail(`result ${i} (key ${base + i}) is ${String(results[i])}, expected ${want}`);
    }
  }
}

/** Counts batches and checks that none is larger than `maxBatchSize`. */
export interface BatchCounter {
  batches: number;
  items: number;
}

/**
 * The trivial batch function, counted: one async call per batch returning `key * 2` for each key.
 * `before` runs first on each batch (a clock or heap reading, a sleep).
 */
export function countedWork(
  maxBatchSize: number,
  counter: BatchCounter,
  before?: (keys: readonly number[]) => void | Promise<void>,
): Work {
  return async (keys) => {
    if (keys.length > maxBatchSize) {
      fail(`a batch of ${keys.length} items exceeds maxBatchSize ${maxBatchSize}`);
    }
    counter.batches++;
    counter.items += keys.length;
    const pending = before?.(keys);
    if (pending !== undefined) await pending; // no extra microtask hop when `before` is synchronous
    const results = new Array<number>(keys.length);
    for (let i = 0; i < keys.length; i++) results[i] = expected(keys[i] as number);
    return results;
  };
}

/**
 * A packed array of `n` slots, allocated before a heap baseline so that storing the burst's
 * promises in it adds nothing but the promises. (`new Array(n)` of a large `n` is a slow
 * dictionary-mode array in V8.)
 */
export function slots<T>(n: number): T[] {
  const array: unknown[] = [];
  for (let i = 0; i < n; i++) array.push(0);
  return array as T[];
}

/** A full, blocking garbage collection. The harness starts every child with `--expose-gc`. */
export function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) fail("run with --expose-gc (the harness does)");
  gc();
}

export function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}
