/**
 * Model serving under load: the example server (examples/model-serving/, a child process) with
 * the 256-4096-4096-16 MLP, driven by autocannon (in this process) at several connection counts,
 * on `POST /predict` (one session.run per request, on the main thread) and `POST
 * /predict/batched` (OnnxBatcher, one worker thread). Each connection sends a request and waits
 * for its answer before sending the next: a closed loop of N concurrent clients.
 *
 * Records requests/s, latency p50/p95/p99 (from every response's time) and errors (socket
 * errors, timeouts, non-2xx answers) per endpoint and connection count, in several rounds with
 * the endpoints alternating; the targets are judged on the medians. Answers are checked against
 * the TypeScript forward pass before the load starts.
 *
 * Target (2 cores, server and load generator together): at 256 connections the batched endpoint
 * serves at least 4x the requests/s of the unbatched one, with a lower p95 and no errors.
 *
 * Writes bench/results/serving.json; `npx tsx bench/report.ts` renders it into BENCHMARK.md.
 * About 4 minutes. `--quick`: the tiny model, short runs, judges nothing and writes nothing
 * (unless `--out <file>`).
 *
 * Usage: npm run bench:serving [-- --quick] [-- --out <file>]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import {
  closeTo,
  ensureModel,
  exampleInputs,
  forward,
  mlpWeights,
  modelFileName,
  SERVING_MLP,
  SMALL_MLP,
} from "../examples/model-serving/model.js";
import { startServer } from "../examples/model-serving/process.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outIndex = args.indexOf("--out");
const defaultOut = fileURLToPath(new URL("./results/serving.json", import.meta.url));
const out = outIndex >= 0 ? args[outIndex + 1] : quick ? undefined : defaultOut;

const spec = quick ? SMALL_MLP : SERVING_MLP;
const ENDPOINTS = ["/predict", "/predict/batched"] as const;
type Endpoint = (typeof ENDPOINTS)[number];
const settings = {
  model: modelFileName(spec),
  connections: quick ? [4, 16] : [16, 64, 256],
  /** Seconds of load before each measured run, discarded. */
  warmupSeconds: quick ? 0.5 : 2,
  /** Seconds of each measured run. */
  durationSeconds: quick ? 1 : 8,
  rounds: quick ? 1 : 3,
  /** Distinct request bodies each connection cycles through. */
  bodies: 16,
  serverThreads: 1,
  maxBatchSize: 128,
  maxQueueTime: 2,
  intraOpNumThreads: 1,
};

interface Run {
  endpoint: Endpoint;
  connections: number;
  round?: number;
  requestsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Socket errors, timeouts and non-2xx answers. */
  errors: number;
  responses: number;
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const inputs = exampleInputs(spec, settings.bodies, 2024).map((row) =>
  Array.from(row, (v) => Number(v.toFixed(5))),
);
const bodies = inputs.map((features) => JSON.stringify({ features }));

async function load(
  url: string,
  endpoint: Endpoint,
  connections: number,
  seconds: number,
): Promise<Run> {
  const latencies: number[] = [];
  let ok = 0;
  // The instance is an EventEmitter and a promise of the result (its types say only the latter).
  const instance = autocannon({
    url,
    connections,
    duration: seconds,
    timeout: 30,
    requests: bodies.map((body) => ({
      method: "POST" as const,
      path: endpoint,
      headers: { "content-type": "application/json" },
      body,
    })),
  }) as unknown as PromiseLike<autocannon.Result> & NodeJS.EventEmitter;
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status === 200) {
      ok++;
      latencies.push(ms);
    }
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  return {
    endpoint,
    connections,
    requestsPerSecond: round(ok / (result.duration || seconds), 1),
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    p99Ms: round(percentile(latencies, 99)),
    errors: result.errors + result.timeouts + result.non2xx,
    responses: ok,
  };
}

/** Every endpoint answers every body as the TypeScript forward pass does. */
async function verify(url: string): Promise<number> {
  const layers = mlpWeights(spec);
  let checked = 0;
  for (const [i, features] of inputs.entries()) {
    const expected = forward(layers, features);
    for (const endpoint of ENDPOINTS) {
      const response = await fetch(`${url}${endpoint}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: bodies[i] as string,
      });
      const json = (await response.json()) as { probabilities?: number[] };
      if (response.status !== 200 || !closeTo(json.probabilities ?? [], expected)) {
        throw new Error(`${endpoint} answered body ${i} wrongly: ${JSON.stringify(json)}`);
      }
      checked++;
    }
  }
  return checked;
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadStart = os.loadavg()[0] ?? 0;
  ensureModel(spec);
  const server = await startServer([
    ...(quick ? ["--small"] : []),
    "--threads",
    String(settings.serverThreads),
    "--max-batch-size",
    String(settings.maxBatchSize),
    "--max-queue-time",
    String(settings.maxQueueTime),
  ]);
  const runs: Run[] = [];
  let checked = 0;
  let exitCode: number | null = null;
  try {
    checked = await verify(server.url);
    console.log(`server ${server.url}: ${checked} answers checked against the forward pass`);
    for (let r = 1; r <= settings.rounds; r++) {
      for (const [c, connections] of settings.connections.entries()) {
        // Alternate which endpoint goes first, so neither always runs on a cooler machine.
        const order = (r + c) % 2 === 0 ? ENDPOINTS : [...ENDPOINTS].reverse();
        for (const endpoint of order) {
          await load(server.url, endpoint, connections, settings.warmupSeconds);
          const run = {
            ...(await load(server.url, endpoint, connections, settings.durationSeconds)),
            round: r,
          };
          runs.push(run);
          console.log(
            `round ${r} ${endpoint.padEnd(17)} c=${String(connections).padStart(3)}: ${run.requestsPerSecond} req/s, p50 ${run.p50Ms} ms, p95 ${run.p95Ms} ms, p99 ${run.p99Ms} ms, errors ${run.errors}`,
          );
        }
      }
    }
  } finally {
    exitCode = await server.stop();
  }

  const medians: Run[] = [];
  for (const connections of settings.connections) {
    for (const endpoint of ENDPOINTS) {
      const mine = runs.filter((x) => x.endpoint === endpoint && x.connections === connections);
      medians.push({
        endpoint,
        connections,
        requestsPerSecond: round(median(mine.map((x) => x.requestsPerSecond)), 1),
        p50Ms: round(median(mine.map((x) => x.p50Ms))),
        p95Ms: round(median(mine.map((x) => x.p95Ms))),
        p99Ms: round(median(mine.map((x) => x.p99Ms))),
        errors: mine.reduce((sum, x) => sum + x.errors, 0),
        responses: mine.reduce((sum, x) => sum + x.responses, 0),
      });
    }
  }
  const top = Math.max(...settings.connections);
  const at = (endpoint: Endpoint) =>
    medians.find((m) => m.endpoint === endpoint && m.connections === top) as Run;
  const plain = at("/predict");
  const batched = at("/predict/batched");
  const ratio = round(batched.requestsPerSecond / plain.requestsPerSecond, 2);
  const judge = (met: boolean) => (quick ? "not judged (quick)" : met ? "yes" : "no");
  const targets = [
    {
      target: `at ${top} connections, batched requests/s ≥ 4x unbatched`,
      value: `${ratio}x (${batched.requestsPerSecond} vs ${plain.requestsPerSecond} req/s)`,
      met: judge(ratio >= 4),
    },
    {
      target: `at ${top} connections, batched p95 < unbatched p95`,
      value: `${batched.p95Ms} ms vs ${plain.p95Ms} ms`,
      met: judge(batched.p95Ms < plain.p95Ms),
    },
    {
      target: "no errors on the batched endpoint",
      value: String(
        medians.filter((m) => m.endpoint === "/predict/batched").reduce((s, m) => s + m.errors, 0),
      ),
      met: judge(medians.every((m) => m.endpoint !== "/predict/batched" || m.errors === 0)),
    },
    {
      target: "the server closes gracefully (SIGTERM: drains, exit code 0)",
      value: `exit code ${exitCode}`,
      met: judge(exitCode === 0),
    },
  ];
  const cpus = os.cpus();
  const report = {
    benchmark:
      "model serving: POST /predict (one session.run per request, main thread) vs POST /predict/batched (OnnxBatcher, worker thread), autocannon closed loop",
    command: quick ? "npm run bench:serving -- --quick" : "npm run bench:serving",
    date: new Date().toISOString(),
    quick,
    durationMs: Date.now() - started,
    model: { ...spec, file: settings.model },
    settings,
    machine: {
      cpu: cpus[0]?.model.trim() ?? "unknown",
      cores: cpus.length,
      node: process.version,
      loadAverageStart: round(loadStart),
      loadAverageEnd: round(os.loadavg()[0] ?? 0),
    },
    answersChecked: checked,
    ratioAtMaxConnections: ratio,
    medians,
    rounds: runs,
    targets,
  };
  console.table(medians);
  for (const t of targets) console.log(`${t.met.padEnd(18)} ${t.target}: ${t.value}`);
  if (out !== undefined) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${relative(process.cwd(), out)}`);
  }
  if (exitCode !== 0) process.exitCode = 1;
}

await main();
