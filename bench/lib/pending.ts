/**
 * A scenario the library cannot run yet. It is listed in the results and the report as "not
 * measured yet: needs <feature>", and nothing runs. To measure it, replace the module with a real
 * scenario (see `scenarios/small-bursts.ts`) once the feature exists.
 */
import { type AnyScenario, defineScenario, type Sample } from "./scenario.js";

export function pendingScenario(options: {
  id: string;
  number: number;
  title: string;
  needs: string;
  /** What the scenario will measure, in Markdown. */
  method: string;
}): AnyScenario {
  return defineScenario<Record<string, never>, Sample>({
    ...options,
    plan: () => ({
      reps: 0,
      subjects: [],
      params: {},
      settings: { maxBatchSize: 0, maxQueueTime: 0 },
      timeoutMs: 0,
    }),
    measure: () =>
      Promise.reject(new Error(`${options.id} is not measured yet: needs ${options.needs}`)),
    summarize: () => ({ method: options.method, rows: [], targets: [] }),
    render: (result) => ({
      markdown: `**Not measured yet: needs ${result.needs ?? options.needs}.**\n\n${result.method}`,
      charts: [],
    }),
  });
}
