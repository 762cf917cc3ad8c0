import type { HistogramSnapshot } from "../events.js";

/** Buckets per power of two: a bucket's midpoint is within 1/32 (about 3%) of any value in it. */
const SUB_BUCKETS = 16;
/** Values below 2^MIN_EXP share the first bucket (in ms: about a microsecond). */
const MIN_EXP = -10;
/** Values from 2^MAX_EXP up share the last bucket. */
const MAX_EXP = 40;
const BUCKETS = (MAX_EXP - MIN_EXP) * SUB_BUCKETS + 1;
const SMALLEST = 2 ** MIN_EXP;

/**
 * A log-linear histogram in fixed memory (HdrHistogram's layout, coarser): `SUB_BUCKETS` linear
 * buckets per power of two, from 2^-10 to 2^40. Counts grow with traffic, memory does not: at
 * most `BUCKETS` numbers, allocated up to the largest bucket used. Count, sum, min and max are
 * exact; percentiles are bucket midpoints, clamped to [min, max].
 */
export class Histogram {
  /** Values are integers (batch sizes): percentiles are the smallest integer of their bucket. */
  readonly #integers: boolean;
  #counts: number[] = [];
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;

  constructor(integers = false) {
    this.#integers = integers;
  }

  /** Records a non-negative value; a negative one or `NaN` counts as 0. */
  record(value: number): void {
    if (!(value > 0)) value = 0;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    const index = bucketOf(value);
    const counts = this.#counts;
    while (counts.length <= index) counts.push(0);
    counts[index] = (counts[index] as number) + 1;
  }

  /** The value at quantile `q` (0 to 1). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    const counts = this.#counts;
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i] as number;
      if (seen >= rank) {
        const value = this.#integers ? Math.ceil(lowerBoundOf(i)) : midpointOf(i);
        return Math.min(this.max, Math.max(this.min, value));
      }
    }
    return this.max;
  }

  snapshot(): HistogramSnapshot {
    const count = this.count;
    return {
      count,
      sum: this.sum,
      min: count === 0 ? 0 : this.min,
      max: this.max,
      mean: count === 0 ? 0 : this.sum / count,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
    };
  }
}

// A value's exponent and top mantissa bits, read from its IEEE 754 bits: no Math.log2 per value.
const float = new Float64Array(1);
const words = new Uint32Array(float.buffer);
/** Index of the word holding the sign, the exponent and the top of the mantissa. */
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** Bucket 0 holds [0, 2^MIN_EXP); then SUB_BUCKETS per power of two (4 bits of mantissa). */
function bucketOf(value: number): number {
  if (value < SMALLEST) return 0;
  float[0] = value;
  const high = words[HIGH] as number;
  const exp = (high >>> 20) - 1023;
  if (exp >= MAX_EXP) return BUCKETS - 1;
  return 1 + (exp - MIN_EXP) * SUB_BUCKETS + ((high >>> 16) & (SUB_BUCKETS - 1));
}

function lowerBoundOf(index: number): number {
  if (index === 0) return 0;
  const exp = Math.floor((index - 1) / SUB_BUCKETS) + MIN_EXP;
  const sub = (index - 1) % SUB_BUCKETS;
  return 2 ** exp * (1 + sub / SUB_BUCKETS);
}

function midpointOf(index: number): number {
  if (index === 0) return 0; // below a microsecond (in ms): 0 is as good a summary as any
  const exp = Math.floor((index - 1) / SUB_BUCKETS) + MIN_EXP;
  const sub = (index - 1) % SUB_BUCKETS;
  return 2 ** exp * (1 + (sub + 0.5) / SUB_BUCKETS);
}

export { BUCKETS as HISTOGRAM_BUCKETS };
