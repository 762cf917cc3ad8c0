/**
 * Every scenario, in report order. A new scenario is one module here: `plan` (what runs),
 * `measure` (in the child), `summarize` (rows, ratios, targets) and `render` (Markdown, charts).
 */
import type { AnyScenario } from "../lib/scenario.js";
import closedLoop from "./closed-loop.js";
import featureCost from "./feature-cost.js";
import largeBurst from "./large-burst.js";
import processMany from "./process-many.js";
import smallBursts from "./small-bursts.js";
import timerAccuracy from "./timer-accuracy.js";

export const SCENARIOS: readonly AnyScenario[] = [
  smallBursts,
  largeBurst,
  closedLoop,
  timerAccuracy,
  featureCost,
  processMany,
];

export function scenario(id: string): AnyScenario {
  const found = SCENARIOS.find((s) => s.id === id || String(s.number) === id);
  if (found === undefined) {
    throw new Error(`unknown scenario ${id}; one of ${SCENARIOS.map((s) => s.id).join(", ")}`);
  }
  return found;
}
