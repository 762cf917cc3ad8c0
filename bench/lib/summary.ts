/** Rows and ratios from the samples of one run. Every ratio pairs values of the same repetition. */
import type { Samples } from "./scenario.js";
import { type Metric, metric } from "./stats.js";
import type { SubjectId } from "./subjects.js";

/** The value `pick` reads from each repetition's sample of `subject`. */
export function valuesOf<S, K extends string = SubjectId>(
  samples: Samples<S, K>,
  subject: K,
  pick: (sample: S) => number,
): number[] {
  const values: number[] = [];
  for (const rep of samples) {
    const sample = rep[subject];
    if (sample !== undefined) values.push(pick(sample));
  }
  return values;
}

export function metricOf<S, K extends string = SubjectId>(
  samples: Samples<S, K>,
  subject: K,
  pick: (sample: S) => number,
): Metric | null {
  const values = valuesOf(samples, subject, pick);
  return values.length === 0 ? null : metric(values);
}

/**
 * `subject / reference` in each repetition where both ran (they ran back to back, in the same
 * conditions), then the median and range of those ratios.
 */
export function pairedRatio<S, K extends string = SubjectId>(
  samples: Samples<S, K>,
  subject: K,
  reference: K,
  pick: (sample: S) => number,
): Metric | null {
  const ratios: number[] = [];
  for (const rep of samples) {
    const a = rep[subject];
    const b = rep[reference];
    if (a !== undefined && b !== undefined) ratios.push(pick(a) / pick(b));
  }
  return ratios.length === 0 ? null : metric(ratios);
}
