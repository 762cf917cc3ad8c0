/**
 * The CPU-bound batch function of bench/worker-pool.ts, run inline on the main thread and in the
 * worker pool: pure JavaScript (xorshift32 mixed into FNV-1a), deterministic, no allocation in
 * the loop, so its cost is the same on any thread.
 */

/** One item: a seed, and how many rounds of work it takes. */
export interface CpuItem {
  readonly seed: number;
  readonly rounds: number;
}

/** `rounds` rounds of integer mixing; the same seed and rounds give the same hash anywhere. */
export function burn(seed: number, rounds: number): number {
  let x = seed | 0 || 1;
  let hash = 0x811c9dc5;
  for (let i = 0; i < rounds; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    hash = Math.imul(hash ^ (x & 0xff), 0x01000193);
  }
  return hash >>> 0;
}

/** The batch function: one hash per item. */
export default function cpuBatch(batch: CpuItem[]): number[] {
  return batch.map((item) => burn(item.seed, item.rounds));
}
