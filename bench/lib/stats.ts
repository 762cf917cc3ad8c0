/** The spread of one measure over the repetitions of a run: each repetition is one process. */
export interface Metric {
  median: number;
  min: number;
  max: number;
  /** How many values (repetitions, or samples when pooled). */
  n: number;
}

/** Quantile `q` (0..1) of values sorted ascending, interpolated linearly between neighbours. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** A sorted copy; typed arrays sort numerically. */
export function sortedCopy(values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort();
}

export function quantile(values: readonly number[], q: number): number {
  return quantileSorted(sortedCopy(values), q);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length === 0 ? Number.NaN : sum / values.length;
}

export function metric(values: readonly number[]): Metric {
  const sorted = sortedCopy(values);
  return {
    median: quantileSorted(sorted, 0.5),
    min: sorted.length === 0 ? Number.NaN : (sorted[0] as number),
    max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number),
    n: sorted.length,
  };
}
