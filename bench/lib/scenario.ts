import type { TopLevelSpec } from "vega-lite";
import type { Metric } from "./stats.js";
import type { BatchSettings, Factory, SubjectId, SubjectInfo } from "./subjects.js";

/** How one scenario runs: which subjects, how many repetitions, with what parameters. */
export interface Plan<P> {
  /** Repetitions; each is one fresh process per subject, subjects interleaved. */
  reps: number;
  subjects: readonly SubjectId[];
  params: P;
  /** The batching the scenario asks every subject for (to record each subject's options). */
  settings: BatchSettings;
  /** A child that takes longer than this (ms) fails the run. */
  timeoutMs: number;
}

/** One measured row: a subject and its measures over the repetitions. */
export interface Row {
  subject: SubjectId;
  /** The options used, as a user would write them. */
  config: string;
  /** Named measures (units in the name: `nsPerItem`, `p99Ms`, ...), and ratios (`xFloor`, ...). */
  values: Record<string, Metric | null>;
}

/** A target of the issue, judged on ratios from this run. */
export interface Target {
  text: string;
  /** What was measured, as the report shows it (`0.93× DataLoader`). */
  measured: string;
  /** `null`: not judged (a quick run, or a value that could not be measured). */
  met: boolean | null;
}

export interface ScenarioResult {
  id: string;
  number: number;
  title: string;
  status: "measured" | "not-measured";
  /** For a scenario not measured: the features it needs that the library does not have yet. */
  needs?: string;
  /** How it is measured, in Markdown. */
  method: string;
  params: Record<string, unknown>;
  reps: number;
  rows: Row[];
  targets: Target[];
  /** Extra data the report draws from (samples for distributions). */
  data?: Record<string, unknown>;
  /** Anything the reader should know about this run. */
  notes?: string[];
  /** Wall time of the whole scenario (ms), every process included. */
  durationMs?: number;
}

/** What the child of one (scenario, subject, repetition) returns. */
export type Sample = Record<string, unknown>;

/** Samples by repetition, then by subject (or by mode, for the benches outside the harness). */
export type Samples<S, K extends string = SubjectId> = Partial<Record<K, S>>[];

export interface SummarizeInput<P, S> {
  params: P;
  samples: Samples<S>;
  subjects: readonly SubjectId[];
  /** Quick runs do not judge targets. */
  judge: boolean;
  /** The options each subject was given, by subject. */
  configs: Partial<Record<SubjectId, string>>;
}

export interface Summary {
  method: string;
  rows: Row[];
  targets: Target[];
  data?: Record<string, unknown>;
  notes?: string[];
}

export interface RenderContext {
  subjects: Partial<Record<SubjectId, SubjectInfo>>;
  /** Quick runs: targets are printed as not judged. */
  judge: boolean;
}

export interface Chart {
  /** File name under `bench/charts/`, without extension. */
  name: string;
  spec: TopLevelSpec;
  /** Alt text for the image. */
  alt: string;
}

export interface Rendered {
  markdown: string;
  charts: Chart[];
}

/** One line of the README's headline table. */
export interface Headline {
  measure: string;
  ours: string;
  dataloader: string;
  floor: string;
  target: string;
}

export interface Scenario<P, S> {
  id: string;
  number: number;
  title: string;
  /**
   * Set while the library lacks what the scenario measures: the scenario is then reported as
   * "not measured yet: needs <needs>" and nothing runs.
   */
  needs?: string;
  plan(quick: boolean): Plan<P>;
  /** Runs in the child process: the measurement of one subject, verified. */
  measure(factory: Factory, params: P, subject: SubjectId): Promise<S>;
  /** Runs in the parent: rows, ratios and targets from every repetition's samples. */
  summarize(input: SummarizeInput<P, S>): Summary;
  /** Runs in the report: the section's Markdown and its charts, from the results alone. */
  render(result: ScenarioResult, context: RenderContext): Rendered;
  /** Lines for the README's "Performance" table. */
  headline?(result: ScenarioResult, context: RenderContext): Headline[];
}

/** A scenario with its parameter and sample types erased, for the registry. */
export interface AnyScenario {
  id: string;
  number: number;
  title: string;
  needs?: string;
  plan(quick: boolean): Plan<unknown>;
  measure(factory: Factory, params: unknown, subject: SubjectId): Promise<Sample>;
  summarize(input: SummarizeInput<unknown, Sample>): Summary;
  render(result: ScenarioResult, context: RenderContext): Rendered;
  headline?(result: ScenarioResult, context: RenderContext): Headline[];
}

/**
 * Erases a scenario's types for the registry. Parameters and samples cross a process boundary as
 * JSON anyway; each scenario module is the one place that knows their shape.
 */
export function defineScenario<P, S extends Sample>(scenario: Scenario<P, S>): AnyScenario {
  return scenario as unknown as AnyScenario;
}
