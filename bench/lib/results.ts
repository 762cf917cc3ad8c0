/** The results file: everything the report is generated from. */
import type { Machine } from "./machine.js";
import type { ScenarioResult } from "./scenario.js";
import type { SubjectId, SubjectInfo } from "./subjects.js";

export interface BenchResults {
  schema: 1;
  /** `quick` runs are smoke tests: tiny sizes, targets not judged. */
  mode: "full" | "quick";
  startedAt: string;
  durationMs: number;
  command: string;
  machine: Machine;
  versions: Record<string, string>;
  subjects: Partial<Record<SubjectId, SubjectInfo>>;
  scenarios: ScenarioResult[];
}
