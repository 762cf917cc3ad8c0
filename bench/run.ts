/**
 * The benchmark harness.
 *
 *   npm run bench                  full run, under 10 minutes: bench/results/latest.json,
 *                                  BENCHMARK.md and bench/charts/*.svg
 *   npm run bench:quick            smoke test for CI, under a minute: tiny sizes, every result
 *                                  still verified, no time judged; writes bench/results/quick.json
 *                                  and renders its report in a temporary directory only
 *   npx tsx bench/run.ts --only 1,3 [--out file.json]
 *                                  some scenarios only (never overwrites latest.json by default)
 *
 * Each (scenario, library, repetition) runs in a fresh process; within a repetition the
 * libraries run one after another, in an order rotated every repetition.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { machine, versions } from "./lib/machine.js";
import { bundleChild, ensureBuilt, runChild } from "./lib/processes.js";
import type { BenchResults } from "./lib/results.js";
import type { AnyScenario, Sample, Samples, ScenarioResult } from "./lib/scenario.js";
import { type SubjectId, type SubjectInfo, subject } from "./lib/subjects.js";
import { writeReport } from "./report.js";
import { scenario as findScenario, SCENARIOS } from "./scenarios/index.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface Args {
  quick: boolean;
  only: AnyScenario[] | undefined;
  out: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, only: undefined, out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--quick") args.quick = true;
    else if (arg === "--only") args.only = (argv[++i] ?? "").split(",").map(findScenario);
    else if (arg === "--out") args.out = resolve(argv[++i] ?? "");
    else throw new Error(`unknown argument ${arg}; see the top of bench/run.ts`);
  }
  return args;
}

/** `items` rotated left by `by`: every subject runs at every position across repetitions. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** The numeric fields of a sample, for the progress line. */
function brief(sample: Sample): string {
  return Object.entries(sample)
    .filter((entry): entry is [string, number] => typeof entry[1] === "number")
    .slice(0, 4)
    .map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`)
    .join(" ");
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function runScenario(
  s: AnyScenario,
  quick: boolean,
  childPath: string,
  distUrl: string,
): Promise<ScenarioResult> {
  const base = { id: s.id, number: s.number, title: s.title };
  if (s.needs !== undefined) {
    log(`\n${s.number}. ${s.title}: not measured yet (needs ${s.needs})`);
    const summary = s.summarize({
      params: {},
      samples: [],
      subjects: [],
      judge: false,
      configs: {},
    });
    return {
      ...base,
      status: "not-measured",
      needs: s.needs,
      method: summary.method,
      params: {},
      reps: 0,
      rows: [],
      targets: [],
    };
  }
  const started = performance.now();
  const plan = s.plan(quick);
  log(`\n${s.number}. ${s.title}: ${plan.reps} repetitions × ${plan.subjects.length} libraries`);
  const samples: Samples<Sample> = [];
  for (let rep = 0; rep < plan.reps; rep++) {
    const bySubject: Partial<Record<SubjectId, Sample>> = {};
    samples.push(bySubject);
    for (const id of rotate(plan.subjects, rep)) {
      const t0 = performance.now();
      const task = { scenario: s.id, subject: id, params: plan.params, distUrl };
      const sample = await runChild(ROOT, childPath, task, plan.timeoutMs);
      bySubject[id] = sample;
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      log(`  rep ${rep + 1}/${plan.reps}  ${id.padEnd(17)} ${brief(sample)}  (${seconds} s)`);
    }
  }
  const configs: Partial<Record<SubjectId, string>> = {};
  for (const id of plan.subjects) configs[id] = subject(id).describe(plan.settings);
  const summary = s.summarize({
    params: plan.params,
    samples,
    subjects: plan.subjects,
    judge: !quick,
    configs,
  });
  return {
    ...base,
    status: "measured",
    method: summary.method,
    params: plan.params as Record<string, unknown>,
    reps: plan.reps,
    rows: summary.rows,
    targets: summary.targets,
    ...(summary.data === undefined ? {} : { data: summary.data }),
    ...(summary.notes === undefined ? {} : { notes: summary.notes }),
    durationMs: performance.now() - started,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const distUrl = ensureBuilt(ROOT);
  const childPath = await bundleChild(ROOT);
  const host = machine();
  const selected = args.only ?? SCENARIOS;

  const scenarios: ScenarioResult[] = [];
  for (const s of selected) scenarios.push(await runScenario(s, args.quick, childPath, distUrl));

  const subjects: Partial<Record<SubjectId, SubjectInfo>> = {};
  for (const result of scenarios) {
    for (const row of result.rows) {
      const { id, label, kind, package: pkg, notes } = subject(row.subject);
      subjects[id] = { id, label, kind, notes, ...(pkg === undefined ? {} : { package: pkg }) };
    }
  }
  const results: BenchResults = {
    schema: 1,
    mode: args.quick ? "quick" : "full",
    startedAt,
    durationMs: performance.now() - started,
    command: args.quick
      ? "npm run bench:quick"
      : args.only
        ? "npx tsx bench/run.ts --only"
        : "npm run bench",
    machine: { ...host, loadEnd: os.loadavg()[0] ?? 0 },
    versions: versions(ROOT),
    subjects,
    scenarios,
  };

  // Quick and partial runs never overwrite the committed full results or report.
  const partial = args.quick || args.only !== undefined;
  const resultsDir = join(ROOT, "bench", "results");
  const out =
    args.out ??
    join(resultsDir, args.quick ? "quick.json" : args.only ? "partial.json" : "latest.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  const reportDir = partial ? join(os.tmpdir(), "async-batcher-bench-report") : ROOT;
  const report = await writeReport(results, reportDir);

  log(`\nresults: ${relative(process.cwd(), out)}`);
  log(`report:  ${partial ? report : relative(process.cwd(), report)}`);
  for (const result of scenarios) {
    for (const t of result.targets) {
      const verdict = t.met === null ? "not judged" : t.met ? "MET" : "MISSED";
      log(`  ${result.number}. ${verdict.padEnd(10)} ${t.text}: ${t.measured}`);
    }
  }
  log(`took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
