/**
 * Databases: the insert and load batchers of `async-batcher/pg` and `async-batcher/mysql` against
 * one query per call, on the local PostgreSQL and MariaDB servers (issue 7).
 *
 * For each database, through one pool of 10 connections:
 * - inserts: 20,000 rows from 500 concurrent callers, each awaiting 40 calls in turn, as one
 *   INSERT per call, through the insert batcher with its defaults, and as one hand-written bulk
 *   INSERT of all 20,000 rows (the ceiling: one statement, so rows/s only, no caller latency).
 *   Each run gets a fresh table; afterwards COUNT(*) must be 20,000 and every row is read back
 *   and checked field by field.
 * - loads: 20,000 loads of random existing keys of a 20,000-row table, from the same 500 callers,
 *   as one SELECT per call and through the load batcher; every row loaded is checked against its
 *   key.
 * Any error, wrong or missing row, or a run that does not finish, fails the whole run. Each
 * batcher also runs as a variant with `maxBatchSize: 1000` (not judged; see `TUNED`).
 *
 * Targets: inserts through the batcher at least 10x the rows/s of one INSERT per call and at
 * least 70% of the ceiling's; loads at least 10x one SELECT per call. Every mode runs several
 * times, the modes interleaved with their order rotated each repetition; the targets are judged
 * on the median of the ratios paired within each repetition.
 *
 * Writes bench/results/database.json, then regenerates BENCHMARK.md (bench/report.ts). About a
 * minute on 2 cores. `--quick`: tiny sizes, one repetition, judges nothing and writes nothing (unless
 * `--out <file>`). `--db pg` or `--db mysql`: one database only, writes nothing unless `--out`.
 *
 * Servers: PG_URL (default postgres://postgres@127.0.0.1:5432/test) and MYSQL_URL (default
 * mysql://root@127.0.0.1:3306/test). The batchers are measured from the sources (tsx). The
 * servers, tables and statements are in `database/backends.ts`, the rows and checks in
 * `database/data.ts`.
 *
 * Usage: npm run bench:db [-- --quick] [-- --db pg|mysql] [-- --out <file>]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { BatcherStats } from "async-batcher";
import { type Backend, type Batcher, mariadb, optionsText, postgres } from "./database/backends.js";
import {
  checkEvents,
  checkProfile,
  type EventRow,
  eventRow,
  profileRow,
  random,
  VerificationError,
} from "./database/data.js";
import { machine, packageVersion } from "./lib/machine.js";
import type { Samples } from "./lib/scenario.js";
import { type Metric, quantileSorted, sortedCopy } from "./lib/stats.js";
import { metricOf, pairedRatio } from "./lib/summary.js";
import type {
  DatabaseModeSummary,
  DatabaseReport,
  DatabaseResult,
  DatabaseRun,
  DatabaseTarget,
} from "./report.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DEFAULT_OUT = join(ROOT, "bench", "results", "database.json");
const DATABASES = ["pg", "mysql"] as const;
type DbId = (typeof DATABASES)[number];

function parseArgs(argv: readonly string[]) {
  let quick = false;
  let out: string | undefined;
  let only: DbId[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--quick") quick = true;
    else if (arg === "--out") out = resolve(argv[++i] ?? "");
    else if (arg === "--db") {
      only = (argv[++i] ?? "").split(",").map((id) => {
        if (!DATABASES.includes(id as DbId)) throw new Error(`--db takes pg or mysql, got ${id}`);
        return id as DbId;
      });
    } else throw new Error(`unknown argument ${arg}; see the top of bench/database.ts`);
  }
  // A quick or partial run never replaces the full results unless asked to.
  return { quick, only, out: out ?? (quick || only !== undefined ? undefined : DEFAULT_OUT) };
}

const args = parseArgs(process.argv.slice(2));
const quick = args.quick;

const settings = {
  /** Rows inserted, and keys loaded, per run. */
  rows: quick ? 1_000 : 20_000,
  /** Concurrent callers; each awaits `rows / callers` calls one after another. */
  callers: quick ? 50 : 500,
  /** Connections in the pool every mode shares (`pg.Pool` `max`, mysql2 `connectionLimit`). */
  poolSize: 10,
  repetitions: quick ? 1 : 5,
  /** Rows of one discarded run of each mode before the repetitions (JIT, caches); 0: none. */
  warmupRows: quick ? 0 : 2_000,
  /** Seed of the random keys loaded. */
  seed: 7,
  /** A run not finished after this many ms fails the run as a hang. */
  runTimeoutMs: quick ? 30_000 : 180_000,
};
const callsPerCaller = settings.rows / settings.callers;
if (!Number.isInteger(callsPerCaller)) throw new Error("rows must be a multiple of callers");

/**
 * `tuned`: the same batcher with `TUNED` options, a variant that is not judged. In this closed
 * loop the 500 callers of a settled batch resubmit together: with the default `maxBatchSize`
 * (250) they make two full batches, two statements in flight; with 1,000, one batch of 500 and one
 * statement at a time (which MysqlInsertBatcher prepares and closes: it is not full;
 * MysqlLoadBatcher pads it to 512 keys, a size it keeps prepared).
 */
const INSERT_MODES = ["per-call", "batcher", "tuned", "ceiling"] as const;
const LOAD_MODES = ["per-call", "batcher", "tuned"] as const;
const TUNED = { maxBatchSize: 1000 } as const;
type InsertMode = (typeof INSERT_MODES)[number];
type LoadMode = (typeof LOAD_MODES)[number];

const now = () => performance.now();
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

/** Rejects after `ms` with what `progress()` says, unless `promise` settles first. */
async function withDeadline<T>(promise: Promise<T>, ms: number, progress: () => string) {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`not finished after ${ms} ms (a hang?): ${progress()}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return `${error.name}${code === undefined ? "" : ` [${String(code)}]`}: ${error.message}`;
}

interface Timing {
  seconds: number;
  /** Each call's ms from the call to its settling, by input index. */
  latencies: Float64Array;
}

/**
 * `callers` concurrent loops; loop `c` calls `call` on inputs `c`, `c + callers`, ... one after
 * another, each awaited. Every call must succeed: errors are counted and fail the run together.
 */
async function drive<I>(
  inputs: readonly I[],
  callers: number,
  call: (input: I, index: number) => Promise<void>,
): Promise<Timing> {
  const n = inputs.length;
  const perCaller = n / callers;
  const latencies = new Float64Array(n);
  const errors: unknown[] = [];
  let failed = 0;
  let settled = 0;
  const start = now();
  const loops = Array.from({ length: callers }, async (_, c) => {
    for (let j = 0; j < perCaller; j++) {
      const i = j * callers + c;
      const t0 = now();
      try {
        await call(inputs[i] as I, i);
      } catch (error) {
        failed++;
        if (errors.length < 3) errors.push(error);
      }
      latencies[i] = now() - t0;
      settled++;
    }
  });
  await withDeadline(
    Promise.all(loops),
    settings.runTimeoutMs,
    () => `${settled} of ${n} calls settled, ${failed} failed`,
  );
  const seconds = (now() - start) / 1000;
  if (failed > 0) {
    throw new Error(
      `${failed} of ${n} calls failed; the first: ${errors.map(describeError).join(" | ")}`,
      { cause: errors[0] },
    );
  }
  return { seconds, latencies };
}

let tableCounter = 0;
const liveTables = new Set<{ backend: Backend; table: string }>();

/** Creates a fresh, uniquely named table, runs `body` on it, drops it (even on failure). */
async function withTable<T>(
  backend: Backend,
  prefix: string,
  ddl: (table: string) => string,
  body: (table: string) => Promise<T>,
): Promise<T> {
  const table = `bench_${prefix}_${process.pid}_${++tableCounter}`;
  const entry = { backend, table };
  await backend.exec(ddl(table));
  liveTables.add(entry);
  const result = await body(table);
  await backend.drop(table);
  liveTables.delete(entry);
  return result;
}

function runFigures(
  rows: number,
  timing: Timing | { seconds: number; latencies: null },
): Pick<DatabaseRun, "rows" | "seconds" | "rowsPerSecond" | "p50Ms" | "p99Ms" | "maxMs"> {
  const sorted = timing.latencies === null ? null : sortedCopy(Array.from(timing.latencies));
  return {
    rows,
    seconds: round(timing.seconds, 3),
    rowsPerSecond: round(rows / timing.seconds, 0),
    p50Ms: sorted === null ? null : round(quantileSorted(sorted, 0.5)),
    p99Ms: sorted === null ? null : round(quantileSorted(sorted, 0.99)),
    maxMs: sorted === null ? null : round(sorted[sorted.length - 1] as number),
  };
}

function batchFigures(
  stats: BatcherStats,
): Pick<DatabaseRun, "batches" | "meanBatchSize" | "largestBatch" | "splits"> {
  return {
    batches: stats.batches.total,
    meanBatchSize: round(stats.batchSize.mean, 1),
    largestBatch: stats.batchSize.max,
    splits: stats.splits,
  };
}

/** Stops a batcher gracefully after a good run, by force after a failed one (it may hang). */
async function stopAfter<T, R>(batcher: Batcher<T>, body: () => Promise<R>): Promise<R> {
  let result: R;
  try {
    result = await body();
  } catch (error) {
    await batcher.stop({ force: true }).catch(() => {});
    throw error;
  }
  await withDeadline(batcher.stop(), 10_000, () => "the batcher's graceful stop()");
  return result;
}

async function insertRun(
  backend: Backend,
  mode: InsertMode,
  rows: readonly EventRow[],
): Promise<Omit<DatabaseRun, "rep">> {
  return withTable(backend, "events", backend.eventsDdl, async (table) => {
    let figures: Omit<DatabaseRun, "rep" | "workload" | "mode">;
    // The id each caller was told, by row (NaN: none).
    const ids = new Float64Array(rows.length).fill(Number.NaN);
    if (mode === "ceiling") {
      const bulk = backend.bulkInsert(table);
      const start = now();
      await withDeadline(bulk.insert(rows), settings.runTimeoutMs, () => "the bulk INSERT");
      figures = runFigures(rows.length, { seconds: (now() - start) / 1000, latencies: null });
    } else if (mode === "per-call") {
      const one = backend.insertOne(table);
      figures = runFigures(rows.length, await drive(rows, settings.callers, one.insert));
    } else {
      const batcher = backend.insertBatcher(table, mode === "tuned" ? TUNED : {});
      figures = await stopAfter(batcher, async () => {
        const timing = await drive(rows, settings.callers, async (row, i) => {
          const { wrong, id } = backend.checkInsertResult(await batcher.process(row));
          if (wrong !== undefined) {
            throw new VerificationError(`the insert batcher resolved a caller with ${wrong}`);
          }
          if (id !== undefined) ids[i] = id;
        });
        return { ...runFigures(rows.length, timing), ...batchFigures(batcher.stats()) };
      });
    }
    const count = await backend.count(table);
    if (count !== rows.length) {
      throw new VerificationError(`COUNT(*) is ${count} after inserting ${rows.length} rows`);
    }
    checkEvents(await backend.events(table), rows.length, ids);
    return { workload: "insert", mode, ...figures };
  });
}

async function loadRun(
  backend: Backend,
  mode: LoadMode,
  table: string,
  keys: readonly number[],
): Promise<Omit<DatabaseRun, "rep">> {
  if (mode === "per-call") {
    const one = backend.selectOne(table);
    const timing = await drive(keys, settings.callers, async (key) => {
      checkProfile(await one.load(key), key);
    });
    return { workload: "load", mode, ...runFigures(keys.length, timing) };
  }
  const batcher = backend.loadBatcher(table, mode === "tuned" ? TUNED : {});
  return stopAfter(batcher, async () => {
    const timing = await drive(keys, settings.callers, async (key) => {
      checkProfile(await batcher.process(key), key);
    });
    return {
      workload: "load",
      mode,
      ...runFigures(keys.length, timing),
      ...batchFigures(batcher.stats()),
    };
  });
}

/** `items` rotated left by `by`: every mode runs at every position across repetitions. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function printRun(backend: Backend, run: DatabaseRun): void {
  const latency =
    run.p50Ms === null ? "no caller latency" : `p50 ${run.p50Ms} ms  p99 ${run.p99Ms} ms`;
  const batches =
    run.batches === undefined
      ? ""
      : `  (${run.batches} batches, mean ${run.meanBatchSize}, largest ${run.largestBatch}${run.splits ? `, ${run.splits} splits` : ""})`;
  console.log(
    `${backend.id.padEnd(5)} ${run.rep === 0 ? "warm-up" : `rep ${run.rep}  `} ${run.workload.padEnd(6)} ${run.mode.padEnd(8)}: ${String(Math.round(run.rowsPerSecond)).padStart(7)} rows/s in ${run.seconds.toFixed(2).padStart(6)} s  ${latency}${batches}`,
  );
}

const LABELS = {
  insert: { "per-call": "one INSERT per call", ceiling: "one bulk INSERT of all rows (ceiling)" },
  load: { "per-call": "one SELECT per call" },
} as const;

function summarize<M extends string>(
  workload: "insert" | "load",
  samples: Samples<DatabaseRun, M>,
  modes: readonly M[],
  label: (mode: M) => string,
): DatabaseModeSummary[] {
  const summaries: DatabaseModeSummary[] = [];
  for (const mode of modes) {
    const rowsPerSecond = metricOf(samples, mode, (r) => r.rowsPerSecond);
    if (rowsPerSecond === null) continue;
    const hasLatency = samples.some((rep) => rep[mode]?.p50Ms !== null);
    const hasBatches = samples.some((rep) => rep[mode]?.batches !== undefined);
    summaries.push({
      workload,
      mode,
      label: label(mode),
      rowsPerSecond,
      seconds: metricOf(samples, mode, (r) => r.seconds) as Metric,
      p50Ms: hasLatency ? metricOf(samples, mode, (r) => r.p50Ms ?? Number.NaN) : null,
      p99Ms: hasLatency ? metricOf(samples, mode, (r) => r.p99Ms ?? Number.NaN) : null,
      batches: hasBatches ? metricOf(samples, mode, (r) => r.batches ?? Number.NaN) : null,
      meanBatchSize: hasBatches
        ? metricOf(samples, mode, (r) => r.meanBatchSize ?? Number.NaN)
        : null,
    });
  }
  return summaries;
}

const x = (value: number) => `${value.toFixed(2)}×`;

function ratioText(m: Metric | null): string {
  if (m === null) return "–";
  return m.n <= 1
    ? x(m.median)
    : `${x(m.median)} (${x(m.min)}–${x(m.max)} over ${m.n} repetitions)`;
}

async function measureDatabase(backend: Backend): Promise<DatabaseResult> {
  const started = now();
  const server = await backend.server().catch((error: unknown) => {
    const env = backend.id === "pg" ? "PG_URL" : "MYSQL_URL";
    throw new Error(
      `cannot reach ${backend.name} at ${backend.url} (set ${env}; is the server running?): ${describeError(error)}`,
      { cause: error },
    );
  });
  console.log(`\n${backend.name}: ${server.version} (${backend.url})`);
  await backend.warm();
  const rows = Array.from({ length: settings.rows }, (_, seq) => eventRow(seq));
  const next = random(settings.seed);
  const keys = Array.from({ length: settings.rows }, () => 1 + Math.floor(next() * settings.rows));
  const profiles = Array.from({ length: settings.rows }, (_, i) => profileRow(i + 1));
  const insertSamples: Samples<DatabaseRun, InsertMode> = [];
  const loadSamples: Samples<DatabaseRun, LoadMode> = [];
  const runs: DatabaseRun[] = [];

  await withTable(backend, "profiles", backend.profilesDdl, async (profilesTable) => {
    await backend.fillProfiles(profilesTable, profiles);
    if (settings.warmupRows > 0) {
      for (const mode of INSERT_MODES) {
        const run = {
          rep: 0,
          ...(await insertRun(backend, mode, rows.slice(0, settings.warmupRows))),
        };
        printRun(backend, run);
      }
      for (const mode of LOAD_MODES) {
        const run = {
          rep: 0,
          ...(await loadRun(backend, mode, profilesTable, keys.slice(0, settings.warmupRows))),
        };
        printRun(backend, run);
      }
    }
    for (let rep = 1; rep <= settings.repetitions; rep++) {
      const inserts: Partial<Record<InsertMode, DatabaseRun>> = {};
      for (const mode of rotate(INSERT_MODES, rep - 1)) {
        const run = { rep, ...(await insertRun(backend, mode, rows)) };
        inserts[mode] = run;
        runs.push(run);
        printRun(backend, run);
      }
      insertSamples.push(inserts);
      const loads: Partial<Record<LoadMode, DatabaseRun>> = {};
      for (const mode of rotate(LOAD_MODES, rep - 1)) {
        const run = { rep, ...(await loadRun(backend, mode, profilesTable, keys)) };
        loads[mode] = run;
        runs.push(run);
        printRun(backend, run);
      }
      loadSamples.push(loads);
    }
  });

  const label = (workload: "insert" | "load", mode: InsertMode | LoadMode) => {
    if (mode === "per-call") return LABELS[workload]["per-call"];
    if (mode === "ceiling") return LABELS.insert.ceiling;
    const name = workload === "insert" ? backend.insertBatcherName : backend.loadBatcherName;
    return `${name}${optionsText(mode === "tuned" ? TUNED : {})}`;
  };
  const perSecond = (r: DatabaseRun) => r.rowsPerSecond;
  const sampleTable = (name: string, ddl: (t: string) => string) =>
    ddl(name).replace(/^CREATE TABLE \S+/, `CREATE TABLE ${name}`);
  return {
    id: backend.id,
    name: backend.name,
    server: server.version,
    serverSettings: server.settings,
    // Both batchers cap their default concurrency at the pool's size.
    batcherDefaults: {
      ...backend.batcherDefaults,
      concurrency: Math.min(Number(backend.batcherDefaults.concurrency), settings.poolSize),
    },
    tables: {
      insert: sampleTable("events", backend.eventsDdl),
      load: sampleTable("profiles", backend.profilesDdl),
    },
    statements: {
      perCallInsert: backend.insertOne("events").sql,
      ceiling: backend.bulkInsert("events").sql,
      perCallLoad: backend.selectOne("profiles").sql,
      insertBatcher: backend.insertBatcherConfig("events", {}),
      loadBatcher: backend.loadBatcherConfig("profiles", {}),
      insertBatcherTuned: backend.insertBatcherConfig("events", TUNED),
      loadBatcherTuned: backend.loadBatcherConfig("profiles", TUNED),
    },
    ...(backend.bulkBytes === undefined
      ? {}
      : { ceilingStatementBytes: backend.bulkBytes("events", rows) }),
    modes: [
      ...summarize("insert", insertSamples, INSERT_MODES, (m) => label("insert", m)),
      ...summarize("load", loadSamples, LOAD_MODES, (m) => label("load", m)),
    ],
    ratios: {
      insertBatcherOverPerCall: pairedRatio(insertSamples, "batcher", "per-call", perSecond),
      insertBatcherOverCeiling: pairedRatio(insertSamples, "batcher", "ceiling", perSecond),
      loadBatcherOverPerCall: pairedRatio(loadSamples, "batcher", "per-call", perSecond),
      insertTunedOverPerCall: pairedRatio(insertSamples, "tuned", "per-call", perSecond),
      insertTunedOverCeiling: pairedRatio(insertSamples, "tuned", "ceiling", perSecond),
      loadTunedOverPerCall: pairedRatio(loadSamples, "tuned", "per-call", perSecond),
    },
    runs,
    durationMs: Math.round(now() - started),
  };
}

function targetsOf(db: DatabaseResult): DatabaseTarget[] {
  const median = (workload: string, mode: string) =>
    db.modes.find((m) => m.workload === workload && m.mode === mode)?.rowsPerSecond.median ??
    Number.NaN;
  const rate = (value: number) => `${Math.round(value).toLocaleString("en-US")} rows/s`;
  const judge = (m: Metric | null, min: number) => (quick || m === null ? null : m.median >= min);
  const {
    insertBatcherOverPerCall: a,
    insertBatcherOverCeiling: b,
    loadBatcherOverPerCall: c,
  } = db.ratios;
  return [
    {
      database: db.name,
      target: "inserts: batcher ≥ 10× the rows/s of one INSERT per call",
      value: `${ratioText(a)}: ${rate(median("insert", "batcher"))} vs ${rate(median("insert", "per-call"))}`,
      met: judge(a, 10),
    },
    {
      database: db.name,
      target: "inserts: batcher ≥ 70% of the single bulk INSERT's rows/s",
      value: `${ratioText(b)}: ${rate(median("insert", "batcher"))} vs ${rate(median("insert", "ceiling"))}`,
      met: judge(b, 0.7),
    },
    {
      database: db.name,
      target: "loads: batcher ≥ 10× the rows/s of one SELECT per call",
      value: `${ratioText(c)}: ${rate(median("load", "batcher"))} vs ${rate(median("load", "per-call"))}`,
      met: judge(c, 10),
    },
  ];
}

async function main(): Promise<void> {
  const started = now();
  const info = machine();
  const backends: Backend[] = [];
  const wanted = args.only ?? DATABASES;
  if (wanted.includes("pg")) {
    backends.push(
      postgres(process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test", settings.poolSize),
    );
  }
  if (wanted.includes("mysql")) {
    backends.push(
      mariadb(process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test", settings.poolSize),
    );
  }
  console.log(
    `Databases: ${settings.rows.toLocaleString("en-US")} rows per run from ${settings.callers} callers × ${callsPerCaller} calls, pool of ${settings.poolSize}, ${settings.repetitions} repetitions${quick ? " (quick: not judged)" : ""}`,
  );
  const databases: DatabaseResult[] = [];
  try {
    for (const backend of backends) databases.push(await measureDatabase(backend));
  } finally {
    // After a failure: drop what is left, without waiting on a pool that may be stuck.
    for (const { backend, table } of liveTables) {
      await withDeadline(backend.drop(table), 5_000, () => `DROP TABLE ${table}`).catch(
        (error: unknown) => console.error(`could not drop ${table}: ${describeError(error)}`),
      );
    }
    for (const backend of backends) {
      await withDeadline(backend.close(), 5_000, () => `closing the ${backend.name} pool`).catch(
        (error: unknown) => console.error(describeError(error)),
      );
    }
  }

  const targets = databases.flatMap(targetsOf);
  const report: DatabaseReport = {
    benchmark:
      "database batchers (async-batcher/pg, async-batcher/mysql) vs one query per call and a single bulk INSERT",
    command: `npm run bench:db${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    date: new Date().toISOString(),
    quick,
    durationMs: Math.round(now() - started),
    settings: { ...settings, callsPerCaller, tuned: TUNED },
    machine: { ...info, loadEnd: os.loadavg()[0] ?? 0 },
    versions: {
      "async-batcher": `${(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version} (sources, through tsx)`,
      pg: packageVersion(ROOT, "pg"),
      mysql2: packageVersion(ROOT, "mysql2"),
    },
    databases,
    targets,
  };

  for (const db of databases) {
    console.log(`\n${db.name} (medians over ${settings.repetitions} repetitions)`);
    console.table(
      db.modes.map((m) => ({
        workload: m.workload,
        mode: m.label,
        "rows/s": Math.round(m.rowsPerSecond.median),
        "s per run": m.seconds.median,
        "p50 ms": m.p50Ms?.median ?? "–",
        "p99 ms": m.p99Ms?.median ?? "–",
        batches: m.batches?.median ?? "–",
      })),
    );
  }
  for (const t of targets) {
    const met = t.met === null ? "not judged" : t.met ? "met" : "MISSED";
    console.log(`${met.padEnd(10)} ${t.database}: ${t.target}: ${t.value}`);
  }
  console.log(`\nthe run took ${(report.durationMs / 1000).toFixed(0)} s`);

  if (args.out === undefined) {
    console.log("nothing written (a quick or partial run; pass --out <file> to write the JSON)");
    return;
  }
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${relative(process.cwd(), args.out)}`);
  if (args.out !== DEFAULT_OUT) return;
  // Only now: the report pulls in vega, which the measuring process does not need.
  const { LATEST, writeReport } = await import("./report.js");
  if (!existsSync(LATEST)) {
    console.log(
      `BENCHMARK.md not regenerated: ${relative(process.cwd(), LATEST)} is missing (npm run bench)`,
    );
    return;
  }
  const path = await writeReport(JSON.parse(readFileSync(LATEST, "utf8")), ROOT);
  console.log(`regenerated ${relative(process.cwd(), path)}`);
}

try {
  await main();
} catch (error) {
  console.error(`\nFAILED: ${describeError(error)}`);
  if (error instanceof Error && error.stack !== undefined) console.error(error.stack);
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause !== undefined) console.error("cause:", cause);
  process.exit(1);
}
