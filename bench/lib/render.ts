/** Pieces every scenario section shares: labels, the options used, the targets. */
import { met } from "./format.js";
import type { RenderContext, ScenarioResult } from "./scenario.js";
import type { SubjectId, SubjectKind } from "./subjects.js";

export function labelOf(context: RenderContext, id: SubjectId): string {
  return context.subjects[id]?.label ?? id;
}

export function kindOf(context: RenderContext, id: SubjectId): SubjectKind {
  return context.subjects[id]?.kind ?? "peer";
}

export function oursLabel(context: RenderContext): string {
  return labelOf(context, "async-batcher");
}

/** The subject label, bold for our library. */
export function rowLabel(context: RenderContext, id: SubjectId): string {
  const label = labelOf(context, id);
  return kindOf(context, id) === "ours" ? `**${label}**` : label;
}

/** The options each subject ran with, folded away under the table. */
export function configDetails(result: ScenarioResult, context: RenderContext): string {
  const lines = result.rows.map((row) => `- ${labelOf(context, row.subject)}: \`${row.config}\``);
  return `<details><summary>Options used</summary>\n\n${lines.join("\n")}\n\n</details>`;
}

export function targetsList(result: ScenarioResult): string {
  if (result.targets.length === 0) return "";
  const lines = result.targets.map((t) => `- ${met(t.met)}: ${t.text} — measured ${t.measured}`);
  return `Targets (ratios from this run):\n\n${lines.join("\n")}`;
}

export function notesList(result: ScenarioResult): string {
  if (result.notes === undefined || result.notes.length === 0) return "";
  return result.notes.map((n) => `- ${n}`).join("\n");
}

export function chartImage(name: string, alt: string): string {
  return `![${alt}](bench/charts/${name}.svg)`;
}

/** Joins the non-empty parts of a section with blank lines. */
export function section(...parts: string[]): string {
  return parts.filter((p) => p.trim() !== "").join("\n\n");
}

/** "met" / "missed" / "not judged" for the given targets of a scenario, joined. */
export function targetStatus(result: ScenarioResult, ...indexes: number[]): string {
  return indexes
    .map((i) => {
      const t = result.targets[i];
      if (t === undefined || t.met === null) return "not judged";
      return t.met ? "met" : "missed";
    })
    .join(", ");
}
