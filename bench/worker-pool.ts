/**
 * Inline vs worker pool: a CPU-bound batch function (about 20 ms of pure-JS work per batch,
 * bench/worker-pool.task.ts) under a steady closed-loop load, run inline on the event loop and
 * on `WorkerPoolExecutor` with 2 threads. Measures the main thread's event-loop delay
 * (`monitorEventLoopDelay`, p50/p99/max) and the throughput (items/s, batches/s).
 *
 * Targets: with the pool, event-loop p99 under 10 ms, while inline it exceeds the batch time;
 * throughput with 2 threads at least 1.5x inline (on a 2-core machine).
 *
 * The machine is shared and noisy, so each mode is measured in several rounds, alternating
 * (inline, pool, pool, inline, ...), and the targets are judged on the medians of the rounds.
 *
 * Writes bench/results/worker-pool.json (machine, settings, every round, medians, targets) and
 * prints a table. About 45 s. `--quick`: a smoke run of a few seconds that judges nothing and
 * writes nothing (unless `--out <file>`).
 *
 * Usage: npm run bench:worker [-- --quick] [-- --out <file>]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, relative } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { type AsyncBatcher, createBatcher } from "async-batcher";
import { createWorkerBatcher } from "async-batcher/worker";
import cpuBatch, { burn, type CpuItem } from "./worker-pool.task.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outIndex = args.indexOf("--out");
const defaultOut = fileURLToPath(new URL("./results/worker-pool.json", import.meta.url));
const out = outIndex >= 0 ? args[outIndex + 1] : quick ? undefined : defaultOut;

const THREADS = 2;
const settings = {
  /** Work per batch the calibration aims at, in ms. */
  targetBatchMs: quick ? 2 : 20,
  maxBatchSize: 16,
  maxQueueTime: 1,
  /** Callers, each awaiting its result before submitting the next item: a steady load. */
  clients: 64,
  warmupMs: quick ? 200 : 800,
  measureMs: quick ? 500 : 3000,
  /** Rounds per mode; the targets are judged on their medians. */
  rounds: quick ? 1 : 5,
  threads: THREADS,
};

interface ModeResult {
  mode: string;
  /** 1, 2, ...; absent in the medians. */
  round?: number;
  items: number;
  batches: number;
  itemsPerSecond: number;
  batchesPerSecond: number;
  /** Mean ms from the batch's dispatch to its results, as the batcher's logger reports it. */
  batchMsMean: number;
  eventLoopP50Ms: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /**
   * CPU time other processes used during the round, in % of the machine (all cores): a round
   * measured while something else ran is not a fair one.
   */
  othersCpuPercent: number;
}

/** Busy CPU time of the whole machine (all cores, all processes), in ms. */
function machineBusyMs(): number {
  let busy = 0;
  for (const { times } of os.cpus()) busy += times.user + times.nice + times.sys + times.irq;
  return busy;
}

/** CPU time of this process, all its threads (the pool's included), in ms. */
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nextEvent = () => new Promise<void>((resolve) => setImmediate(resolve));
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

/** Rounds per item so that a full batch takes about `targetBatchMs` on this machine. */
function calibrate(targetBatchMs: number, batchSize: number): number {
  const batch = (rounds: number): CpuItem[] =>
    Array.from({ length: batchSize }, (_, i) => ({ seed: i + 1, rounds }));
  let rounds = 1000;
  // Warm the JIT and grow the batch until it is long enough to time above the clock's noise.
  for (;;) {
    const start = performance.now();
    cpuBatch(batch(rounds));
    if (performance.now() - start >= 10) break;
    rounds *= 2;
  }
  const msPerRound: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    cpuBatch(batch(rounds));
    msPerRound.push((performance.now() - start) / (rounds * batchSize));
  }
  msPerRound.sort((a, b) => a - b);
  const median = msPerRound[2] as number;
  return Math.max(1, Math.round(targetBatchMs / (median * batchSize)));
}

/** Runs the closed-loop load on `batcher` and measures the window after the warm-up. */
async function measure(
  mode: string,
  make: (logger: (durationMs: number) => void) => AsyncBatcher<CpuItem, number>,
  rounds: number,
): Promise<ModeResult> {
  let measuring = false;
  let running = true;
  let items = 0;
  let batches = 0;
  let batchMs = 0;
  const batcher = make((durationMs) => {
    if (!measuring) return;
    batches++;
    batchMs += durationMs;
  });
  // One item first: the pool's threads start (and load the module) before the clock runs.
  await batcher.process({ seed: 0, rounds });
  let seed = 1;
  const clients = Array.from({ length: settings.clients }, async () => {
    while (running) {
      await batcher.process({ seed: seed++, rounds });
      if (measuring) items++;
      // The next request arrives as an event, as from a socket. Without this, callers that
      // resubmit from the promise jobs of a synchronous batch function keep the event loop in
      // its microtask queue for good: no timer (nor this benchmark's clock) would ever run.
      await nextEvent();
    }
  });

  await sleep(settings.warmupMs);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  measuring = true;
  const start = performance.now();
  const busyStart = machineBusyMs();
  const ownStart = ownCpuMs();
  await sleep(settings.measureMs);
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  const othersMs = machineBusyMs() - busyStart - (ownCpuMs() - ownStart);
  delay.disable();
  running = false;
  await Promise.all(clients);
  await batcher.stop();

  return {
    mode,
    items,
    batches,
    itemsPerSecond: round(items / seconds, 1),
    batchesPerSecond: round(batches / seconds, 2),
    batchMsMean: round(batches === 0 ? 0 : batchMs / batches),
    eventLoopP50Ms: round(delay.percentile(50) / 1e6),
    eventLoopP99Ms: round(delay.percentile(99) / 1e6),
    eventLoopMaxMs: round(delay.max / 1e6),
    othersCpuPercent: round(
      Math.max(0, (othersMs / (seconds * 1000 * os.availableParallelism())) * 100),
      1,
    ),
  };
}

/** The median of each figure over `results` (an odd number of rounds gives a measured one). */
function medianOf(mode: string, results: ModeResult[]): ModeResult {
  const median = (key: keyof Omit<ModeResult, "mode" | "round">) => {
    const values = results.map((result) => result[key]).sort((a, b) => a - b);
    const middle = values.length >> 1;
    return values.length % 2 === 1
      ? (values[middle] as number)
      : round(((values[middle - 1] as number) + (values[middle] as number)) / 2);
  };
  return {
    mode,
    items: median("items"),
    batches: median("batches"),
    itemsPerSecond: median("itemsPerSecond"),
    batchesPerSecond: median("batchesPerSecond"),
    batchMsMean: median("batchMsMean"),
    eventLoopP50Ms: median("eventLoopP50Ms"),
    eventLoopP99Ms: median("eventLoopP99Ms"),
    eventLoopMaxMs: median("eventLoopMaxMs"),
    othersCpuPercent: median("othersCpuPercent"),
  };
}

function table(rows: ModeResult[]): string {
  const columns: [keyof ModeResult, string][] = [
    ["mode", "mode"],
    ["round", "round"],
    ["itemsPerSecond", "items/s"],
    ["batchesPerSecond", "batches/s"],
    ["batchMsMean", "batch ms"],
    ["eventLoopP50Ms", "loop p50 ms"],
    ["eventLoopP99Ms", "loop p99 ms"],
    ["eventLoopMaxMs", "loop max ms"],
    ["othersCpuPercent", "others' CPU %"],
  ];
  const cells = [
    columns.map(([, title]) => title),
    ...rows.map((row) => columns.map(([key]) => String(row[key] ?? "median"))),
  ];
  const widths = columns.map((_, i) =>
    Math.max(...cells.map((line) => (line[i] as string).length)),
  );
  return cells
    .map((line) =>
      line
        .map((cell, i) =>
          i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number),
        )
        .join("  "),
    )
    .join("\n");
}

async function main(): Promise<void> {
  const loadStart = os.loadavg()[0] ?? 0;
  const rounds = calibrate(settings.targetBatchMs, settings.maxBatchSize);
  const taskModule = new URL("./worker-pool.task.ts", import.meta.url);

  // The same results on both sides: the pool runs the very function the inline batcher calls.
  const check = createWorkerBatcher<typeof import("./worker-pool.task.js")>(taskModule, {
    maxThreads: 1,
  });
  const sameResults = (await check.process({ seed: 42, rounds })) === burn(42, rounds);
  await check.stop();

  const inlineMode = "inline (event loop)";
  const poolMode = `worker pool (${THREADS} threads)`;
  const makeInline = (onBatch: (durationMs: number) => void) =>
    createBatcher(cpuBatch, {
      maxBatchSize: settings.maxBatchSize,
      maxQueueTime: settings.maxQueueTime,
      logger: (event) => {
        if (event.type === "batchDone") onBatch(event.durationMs);
      },
    });
  // The default worker batcher: concurrency is maxThreads.
  const makePool = (onBatch: (durationMs: number) => void) =>
    createWorkerBatcher<typeof import("./worker-pool.task.js")>(taskModule, {
      maxThreads: THREADS,
      minThreads: THREADS,
      maxBatchSize: settings.maxBatchSize,
      maxQueueTime: settings.maxQueueTime,
      logger: (event) => {
        if (event.type === "batchDone") onBatch(event.durationMs);
      },
    });

  const all: ModeResult[] = [];
  for (let n = 1; n <= settings.rounds; n++) {
    // Alternate the order, so that neither mode always runs on a warmer (or busier) machine.
    const order = n % 2 === 1 ? (["inline", "pool"] as const) : (["pool", "inline"] as const);
    for (const which of order) {
      const result =
        which === "inline"
          ? await measure(inlineMode, makeInline, rounds)
          : await measure(poolMode, makePool, rounds);
      all.push({ ...result, round: n });
    }
  }
  const inline = medianOf(
    inlineMode,
    all.filter((result) => result.mode === inlineMode),
  );
  const pool = medianOf(
    poolMode,
    all.filter((result) => result.mode === poolMode),
  );

  const ratio = round(pool.itemsPerSecond / inline.itemsPerSecond);
  const judge = (met: boolean) => (quick ? "not judged (--quick)" : met ? "yes" : "no");
  const targets = [
    {
      target: "pool: event-loop p99 under 10 ms",
      value: `${pool.eventLoopP99Ms} ms`,
      met: judge(pool.eventLoopP99Ms < 10),
    },
    {
      target: "inline: event-loop p99 above the batch time",
      value: `${inline.eventLoopP99Ms} ms vs ${inline.batchMsMean} ms`,
      met: judge(inline.eventLoopP99Ms > inline.batchMsMean),
    },
    {
      target: `throughput with ${THREADS} threads at least 1.5x inline`,
      value: `${ratio}x`,
      met: judge(ratio >= 1.5),
    },
  ];
  const allMet = targets.every((target) => target.met === "yes");

  const cpus = os.cpus();
  const report = {
    benchmark: "CPU-bound batch function: inline vs WorkerPoolExecutor",
    command: quick ? "npm run bench:worker -- --quick" : "npm run bench:worker",
    date: new Date().toISOString(),
    quick,
    targetsMet: quick ? "not judged (--quick)" : allMet ? "all" : "not all",
    sameResultsInlineAndPool: sameResults,
    throughputRatio: ratio,
    machine: {
      cpu: cpus[0]?.model.trim() ?? "unknown",
      cores: os.availableParallelism(),
      memoryGB: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      v8: process.versions.v8,
      os: `${os.type()} ${os.release()}`,
      arch: os.arch(),
      // A shared machine: the 1-minute load average around the run tells how busy it was.
      loadAverageStart: round(loadStart),
      loadAverageEnd: round(os.loadavg()[0] ?? 0),
    },
    settings: { ...settings, roundsPerItem: rounds },
    /** The median of each figure over the rounds: what the targets are judged on. */
    medians: [inline, pool],
    rounds: all,
    targets,
  };

  console.log(
    `Inline vs worker pool: ${settings.maxBatchSize} items per batch, ~${settings.targetBatchMs} ms of work per batch, ${settings.clients} callers, ${settings.rounds} rounds of ${settings.measureMs} ms per mode\n`,
  );
  console.log(table(all));
  console.log(`\nmedians of the rounds:\n${table(report.medians)}`);
  console.log(
    `\nthroughput ratio (pool / inline): ${ratio}x; same results inline and in the pool: ${sameResults}`,
  );
  for (const target of targets) console.log(`- ${target.target}: ${target.value} -> ${target.met}`);
  if (out === undefined) {
    console.log("\nquick run: nothing written (pass --out <file> to write the JSON)");
  } else {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwrote ${relative(process.cwd(), out)}`);
  }
  if (!sameResults) process.exitCode = 1;
}

await main();
