#!/usr/bin/env node
// Proves that users can install the package: lints the packed tarball (publint, are-the-types-wrong),
// checks that the core's build reaches no `node:*` module, piscina or OpenTelemetry, installs the tarball
// (with piscina, onnxruntime-node and @opentelemetry/api, the subpaths' peers) into an empty
// project, runs the README quickstart from both `import` and `require`, and runs a batch in a
// worker thread through `async-batcher/worker`, the small generated model through
// `async-batcher/onnx`, and an instrumented batcher through `async-batcher/otel` (with the
// OpenTelemetry SDK) from both too. It checks the build, it does not make it: run
// `npm run build` first (CI does).
//
// Usage: npm run build && npm run check:package

import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const EXPECTED = "[0,2,4,6,8,10,12,14,16,18]";
const WORKER_EXPECTED = "[2,4,6,8,10] E_NEGATIVE RangeError ok";
const EXPORTS = [
  "AsyncBatcher",
  "createBatcher",
  "BatcherError",
  "QueueFullError",
  "BatcherStoppedError",
  "BatchResultError",
];

class CheckError extends Error {}

/** Runs a command, returns its stdout; throws with everything it printed when it fails. */
function run(command, args, { cwd = root, timeout = 120_000 } = {}) {
  // npm and npx are .cmd shims on Windows, which only a shell can start.
  const shell = process.platform === "win32";
  const argv = shell ? args.map((arg) => (/[\s"]/.test(arg) ? JSON.stringify(arg) : arg)) : args;
  // onnxruntime-node's install script would download CUDA libraries: its CPU runtime is enough.
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" };
  const result = spawnSync(command, argv, { cwd, encoding: "utf8", shell, timeout, env });
  const line = `${command} ${args.join(" ")}`;
  if (result.error?.code === "ETIMEDOUT") {
    throw new CheckError(
      `${line} did not exit within ${timeout / 1000} s (in ${cwd}): a timer or handle kept it alive?\n` +
        `${result.stdout ?? ""}${result.stderr ?? ""}`.trimEnd(),
    );
  }
  if (result.error) throw new CheckError(`${line} could not run: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.status}`;
    throw new CheckError(
      `${line} ${how} (in ${cwd})\n${result.stdout ?? ""}${result.stderr ?? ""}`.trimEnd(),
    );
  }
  return result.stdout;
}

/** Every file the manifest points at: main, module, types and the exports map. */
function entryFiles() {
  const files = new Set();
  const walk = (value) => {
    if (typeof value === "string") files.add(value);
    else if (value !== null && typeof value === "object") Object.values(value).forEach(walk);
  };
  walk([manifest.main, manifest.module, manifest.types]);
  walk(manifest.exports);
  files.delete("./package.json");
  return [...files].filter((file) => file !== undefined);
}

/**
 * `body` as top-level code of a script: as is in ESM (top-level await), wrapped in an async
 * function that sets the exit code on failure in CommonJS.
 */
function topLevel(esm, body) {
  return esm
    ? body
    : `(async () => {
${body}
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});`;
}

// The README quickstart, with 50 ms of "work" instead of 1000, loaded the way users load it. It
// prints the results alone on stdout; anything wrong with the exports throws (or, for a missing
// named ESM import, fails to link), so the process exits non-zero.
function quickstart(format) {
  const esm = format === "esm";
  const names = EXPORTS.join(", ");
  const entry = esm ? "index.js" : "index.cjs";
  const load = esm
    ? `import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { ${names} } from "async-batcher";
const resolved = fileURLToPath(import.meta.resolve("async-batcher"));`
    : `const { basename, dirname } = require("node:path");
const { ${names} } = require("async-batcher");
const resolved = require.resolve("async-batcher");`;
  const demo = `const batcher = new MyBatchProcessor({ maxBatchSize: 5, maxQueueTime: 2000, concurrency: 2 });
const results = await Promise.all(range(10).map((i) => batcher.process(i)));
console.log(JSON.stringify(results));
await batcher.stop();`;
  return `${load}

// The ${esm ? "ESM" : "CJS"} build, every export, and the errors' classes and codes.
if (basename(resolved) !== "${entry}" || basename(dirname(resolved)) !== "dist") {
  throw new Error("async-batcher resolved to " + resolved + ", expected dist/${entry}");
}
const exported = { ${names} };
for (const [name, value] of Object.entries(exported)) {
  if (typeof value !== "function") throw new Error(name + " is not exported, got " + typeof value);
}
for (const [error, code] of [
  [new QueueFullError(1), "ERR_QUEUE_FULL"],
  [new BatcherStoppedError(), "ERR_BATCHER_STOPPED"],
  [new BatchResultError(1, 2), "ERR_BATCH_RESULT"],
]) {
  if (!(error instanceof BatcherError) || error.code !== code) {
    throw new Error(error.name + " is not a BatcherError with code " + code);
  }
}
if (typeof createBatcher((batch) => batch).process !== "function") {
  throw new Error("createBatcher() returned no batcher");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (n) => Array.from({ length: n }, (_, i) => i);

class MyBatchProcessor extends AsyncBatcher {
  async processBatch(batch) {
    await sleep(50); // simulate processing delay
    return batch.map((x) => x * 2);
  }
}

${topLevel(esm, demo)}
`;
}

/**
 * Every module the core's build files reach, following their relative imports (shared chunks):
 * none may be a Node.js builtin, piscina or OpenTelemetry, so the core runs on any runtime and
 * needs no peer.
 */
function checkCoreIsPortable() {
  const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
  const seen = new Set();
  const offending = [];
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    const pattern =
      /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;
    for (const [, specifier] of text.matchAll(pattern)) {
      if (specifier.startsWith(".")) visit(join(dirname(file), specifier));
      else if (
        builtins.has(specifier) ||
        specifier === "piscina" ||
        specifier.startsWith("piscina/") ||
        specifier.startsWith("@opentelemetry/")
      ) {
        offending.push(`${file.slice(root.length + 1)} imports ${specifier}`);
      }
    }
  };
  for (const entry of ["dist/index.js", "dist/index.cjs"]) visit(join(root, entry));
  if (offending.length > 0) {
    throw new CheckError(
      `the core's build must not import Node.js builtins, piscina or OpenTelemetry:\n  ${offending.join("\n  ")}`,
    );
  }
  return seen.size;
}

// A worker module, as users write one: doubles each number, and rejects negative ones alone, with
// a code that must survive the thread boundary.
const WORKER_MODULE = `export default function double(batch) {
  return batch.map((x) => {
    if (x >= 0) return x * 2;
    return Object.assign(new RangeError("negative: " + x), { code: "E_NEGATIVE" });
  });
}
`;

// Loads \`async-batcher/worker\` the way users do, runs a batch in a worker thread of the installed
// package's pool, and prints: the results, the code and class of the per-item error, and "ok"
// once the classes are shared with the core and every thread has exited.
function workerScript(format) {
  const esm = format === "esm";
  const entry = esm ? "index.js" : "index.cjs";
  const load = esm
    ? `import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { BatcherStoppedError, createBatcher } from "async-batcher";
import { createWorkerBatcher, WorkerPoolExecutor, withTransfer } from "async-batcher/worker";
const resolved = fileURLToPath(import.meta.resolve("async-batcher/worker"));
const workerFile = new URL("./double.mjs", import.meta.url);`
    : `const { basename, dirname, join } = require("node:path");
const { BatcherStoppedError, createBatcher } = require("async-batcher");
const { createWorkerBatcher, WorkerPoolExecutor, withTransfer } = require("async-batcher/worker");
const resolved = require.resolve("async-batcher/worker");
const workerFile = join(__dirname, "double.mjs");`;
  const body = `const batcher = createWorkerBatcher(workerFile, { maxThreads: 1, maxBatchSize: 5, maxQueueTime: 50 });
const settled = await Promise.allSettled([1, 2, 3, 4, 5, -1].map((x) => batcher.process(x)));
const results = settled.slice(0, 5).map((s) => s.value);
const error = settled[5].reason;
await batcher.stop();
if (batcher.executor.threads !== 0) throw new Error(batcher.executor.threads + " threads left after stop()");

// The subpath's errors are the core's classes, not copies of them.
const late = await batcher.process(1).catch((e) => e);
if (!(late instanceof BatcherStoppedError)) throw new Error("process() after stop() did not reject with the core's BatcherStoppedError");
const pool = new WorkerPoolExecutor({ filename: workerFile, minThreads: 0 });
await pool.close();
const closed = await pool.run([1], { signal: new AbortController().signal, batchId: 1 }).catch((e) => e);
if (!(closed instanceof BatcherStoppedError)) throw new Error("a closed pool did not reject with the core's BatcherStoppedError");
if (typeof createBatcher !== "function" || typeof withTransfer !== "function") throw new Error("missing exports");
console.log(JSON.stringify(results), error.code, error instanceof RangeError ? error.name : "not a RangeError", "ok");`;
  return `${load}

if (basename(resolved) !== "${entry}" || basename(dirname(resolved)) !== "worker") {
  throw new Error("async-batcher/worker resolved to " + resolved + ", expected dist/worker/${entry}");
}
${topLevel(esm, body)}
`;
}

// Loads \`async-batcher/onnx\` the way users do and runs the small generated model (16 inputs,
// 5 softmax outputs) in a worker thread: prints the output row's length and sum (1, a softmax),
// and the code of the error for an example of the wrong length.
function onnxScript(format) {
  const esm = format === "esm";
  const load = esm
    ? `import { OnnxBatcher } from "async-batcher/onnx";
const model = new URL("./small.onnx", import.meta.url);`
    : `const { OnnxBatcher } = require("async-batcher/onnx");
const model = require("node:path").join(__dirname, "small.onnx");`;
  const body = `const batcher = new OnnxBatcher({ model, maxQueueTime: 1 });
const row = await batcher.process(new Float32Array(batcher.exampleSize).fill(0.5));
const bad = await batcher.process([1, 2, 3]).catch((e) => e);
await batcher.stop();
const sum = row.reduce((a, b) => a + b, 0);
console.log(row.length, Math.abs(sum - 1) < 1e-5 ? "sum 1" : "sum " + sum, bad.code);`;
  return `${load}\n${topLevel(esm, body)}\n`;
}

const ONNX_EXPECTED = "5 sum 1 ERR_INVALID_INPUT";

// The OpenTelemetry packages installed beside the tarball: the API our tests run (within the
// peer range the package asks for) and the SDK that reads what `instrument()` reports.
const OTEL_PACKAGES = [
  "@opentelemetry/api",
  "@opentelemetry/sdk-metrics",
  "@opentelemetry/sdk-trace-base",
  "@opentelemetry/context-async-hooks",
];

// Loads \`async-batcher/otel\` the way users do and instruments a batcher towards a real SDK: three
// callers, each in its own span, make one batch. Prints the results, the batcher's submitted
// count as the SDK collected it, how many metrics it reported, and the batch's span with its
// links (one per caller).
function otelScript(format) {
  const esm = format === "esm";
  const entry = esm ? "index.js" : "index.cjs";
  const load = esm
    ? `import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createBatcher } from "async-batcher";
import { instrument } from "async-batcher/otel";
const resolved = fileURLToPath(import.meta.resolve("async-batcher/otel"));`
    : `const { basename, dirname } = require("node:path");
const { context } = require("@opentelemetry/api");
const { AsyncLocalStorageContextManager } = require("@opentelemetry/context-async-hooks");
const { MeterProvider, MetricReader } = require("@opentelemetry/sdk-metrics");
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { createBatcher } = require("async-batcher");
const { instrument } = require("async-batcher/otel");
const resolved = require.resolve("async-batcher/otel");`;
  const body = `class Reader extends MetricReader {
  onShutdown() { return Promise.resolve(); }
  onForceFlush() { return Promise.resolve(); }
}
const reader = new Reader();
const meterProvider = new MeterProvider({ readers: [reader] });
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const batcher = createBatcher((batch) => batch.map((x) => x * 2), { name: "check", maxQueueTime: 10 });
const uninstrument = instrument(batcher, { meterProvider, tracerProvider });
const tracer = tracerProvider.getTracer("check");
const results = await Promise.all([1, 2, 3].map((x) => tracer.startActiveSpan("caller " + x, (span) => {
  const result = batcher.process(x);
  span.end();
  return result;
})));
await tracerProvider.forceFlush();
const { resourceMetrics } = await reader.collect();
const metrics = resourceMetrics.scopeMetrics.filter((s) => s.scope.name === "async-batcher").flatMap((s) => s.metrics);
const submitted = metrics.find((m) => m.descriptor.name === "batcher.items.submitted")?.dataPoints[0]?.value;
const spans = exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === "async-batcher");
uninstrument();
await batcher.stop();
await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
context.disable();
console.log(JSON.stringify(results), "submitted=" + submitted, "metrics=" + metrics.length, spans.map((s) => s.name + " links=" + s.links.length).join(";"));`;
  return `${load}

if (basename(resolved) !== "${entry}" || basename(dirname(resolved)) !== "otel") {
  throw new Error("async-batcher/otel resolved to " + resolved + ", expected dist/otel/${entry}");
}
${topLevel(esm, body)}
`;
}

const OTEL_EXPECTED = "[2,4,6] submitted=3 metrics=13 batch check links=3";

// Loads `async-batcher/pg` and `async-batcher/mysql` the way users do and looks keys up in the
// servers' own catalogs (nothing is created): one batch per database, one key found, one not.
// The batchers must be instances of the core's AsyncBatcher from the same install.
function databaseScript(format) {
  const esm = format === "esm";
  const load = esm
    ? `import pg from "pg";
import mysql from "mysql2/promise";
import { AsyncBatcher } from "async-batcher";
import { PgLoadBatcher } from "async-batcher/pg";
import { MysqlLoadBatcher } from "async-batcher/mysql";`
    : `const pg = require("pg");
const mysql = require("mysql2/promise");
const { AsyncBatcher } = require("async-batcher");
const { PgLoadBatcher } = require("async-batcher/pg");
const { MysqlLoadBatcher } = require("async-batcher/mysql");`;
  const body = `const pgPool = new pg.Pool({ connectionString: process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test" });
const myPool = mysql.createPool(process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test");
try {
  const schemas = new PgLoadBatcher({ pool: pgPool, table: { schema: "pg_catalog", name: "pg_namespace" }, key: "nspname" });
  const databases = new MysqlLoadBatcher({ pool: myPool, table: { schema: "information_schema", name: "SCHEMATA" }, key: "SCHEMA_NAME" });
  const [a, b] = await Promise.all([schemas.process("pg_catalog"), schemas.process("no such schema")]);
  const [c, d] = await Promise.all([databases.process("information_schema"), databases.process("no such database")]);
  await Promise.all([schemas.stop(), databases.stop()]);
  console.log(
    "pg " + a?.nspname + " " + b,
    "mysql " + c?.SCHEMA_NAME + " " + d,
    schemas instanceof AsyncBatcher && databases instanceof AsyncBatcher ? "instances ok" : "not instances",
  );
} finally {
  await Promise.all([pgPool.end(), myPool.end()]);
}`;
  return `${load}

${topLevel(esm, body)}
`;
}

const DATABASE_EXPECTED = "pg pg_catalog null mysql information_schema null instances ok";

function main() {
  const missing = entryFiles().filter((file) => !existsSync(join(root, file)));
  if (missing.length > 0) {
    throw new CheckError(
      `the build is missing (${missing.join(", ")}): run \`npm run build\` first`,
    );
  }

  const work = mkdtempSync(join(tmpdir(), "async-batcher-check-"));
  try {
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work]));
    const { filename, files, size } = packed[0];
    const tarball = join(work, filename);
    const summary = [`packed ${filename}: ${files.length} files, ${(size / 1024).toFixed(1)} kB`];

    run("npx", ["--no", "publint", "run", tarball, "--strict"]);
    summary.push("publint --strict: no problems");
    run("npx", ["--no", "attw", tarball, "--format", "ascii", "--no-emoji", "--no-color"]);
    summary.push("attw (profile strict: node10, node16 CJS and ESM, bundler): no problems");
    const reached = checkCoreIsPortable();
    summary.push(
      `core build (${reached} files reached from dist/index.{js,cjs}): no node:*, piscina or @opentelemetry import`,
    );

    const project = join(work, "project");
    mkdirSync(project);
    run("npm", ["init", "-y"], { cwd: project });
    // The optional peers of the subpaths, at the ranges the package asks for; OpenTelemetry at
    // the versions our tests use (the SDK's own peer range on the API is narrower than ours).
    const peers = ["piscina", "onnxruntime-node", "pg", "mysql2"].map(
      (name) => `${name}@${manifest.peerDependencies[name]}`,
    );
    const otel = OTEL_PACKAGES.map((name) => `${name}@${manifest.devDependencies[name]}`);
    run("npm", ["install", tarball, ...peers, ...otel, "--no-audit", "--no-fund"], {
      cwd: project,
      timeout: 300_000,
    });
    summary.push(
      `installed into an empty project, with ${peers.join(" and ")}, and ${otel.join(", ")}`,
    );

    const version = run("node", ["-p", 'require("async-batcher/package.json").version'], {
      cwd: project,
    }).trim();
    if (version !== manifest.version) {
      throw new CheckError(
        `require("async-batcher/package.json").version is ${JSON.stringify(version)}, expected ${manifest.version}`,
      );
    }
    summary.push(`require("async-batcher/package.json").version: ${version}`);

    for (const [file, format, how] of [
      ["quickstart.mjs", "esm", "import"],
      ["quickstart.cjs", "cjs", "require"],
    ]) {
      writeFileSync(join(project, file), quickstart(format));
      const output = run("node", [file], { cwd: project, timeout: 30_000 }).trim();
      if (output !== EXPECTED) {
        throw new CheckError(
          `node ${file} printed ${JSON.stringify(output)}, expected ${EXPECTED}`,
        );
      }
      summary.push(`quickstart via ${how} (${file}): ${output}, ${EXPORTS.length} exports checked`);
    }

    writeFileSync(join(project, "double.mjs"), WORKER_MODULE);
    for (const [file, format, how] of [
      ["worker.mjs", "esm", "import"],
      ["worker.cjs", "cjs", "require"],
    ]) {
      writeFileSync(join(project, file), workerScript(format));
      const output = run("node", [file], { cwd: project, timeout: 30_000 }).trim();
      if (output !== WORKER_EXPECTED) {
        throw new CheckError(
          `node ${file} printed ${JSON.stringify(output)}, expected ${WORKER_EXPECTED}`,
        );
      }
      summary.push(
        `async-batcher/worker via ${how} (${file}): a batch in a worker thread, ${output}`,
      );
    }

    // The small model of the serving example, generated from code by the repository's script.
    const model = run("npx", ["--no", "tsx", "scripts/generate-model.ts", "--small"]).trim();
    copyFileSync(model.replace(/ \(\d+ ms\)$/, ""), join(project, "small.onnx"));
    for (const [file, format, how] of [
      ["onnx.mjs", "esm", "import"],
      ["onnx.cjs", "cjs", "require"],
    ]) {
      writeFileSync(join(project, file), onnxScript(format));
      const output = run("node", [file], { cwd: project, timeout: 60_000 }).trim();
      if (output !== ONNX_EXPECTED) {
        throw new CheckError(
          `node ${file} printed ${JSON.stringify(output)}, expected ${ONNX_EXPECTED}`,
        );
      }
      summary.push(
        `async-batcher/onnx via ${how} (${file}): a batch in a worker thread, ${output}`,
      );
    }

    for (const [file, format, how] of [
      ["otel.mjs", "esm", "import"],
      ["otel.cjs", "cjs", "require"],
    ]) {
      writeFileSync(join(project, file), otelScript(format));
      const output = run("node", [file], { cwd: project, timeout: 30_000 }).trim();
      if (output !== OTEL_EXPECTED) {
        throw new CheckError(
          `node ${file} printed ${JSON.stringify(output)}, expected ${OTEL_EXPECTED}`,
        );
      }
      summary.push(`async-batcher/otel via ${how} (${file}): metrics and a linked span, ${output}`);
    }

    // Needs the servers of the integration tests (DEVELOPERS.md), as CI has them.
    for (const [file, format, how] of [
      ["database.mjs", "esm", "import"],
      ["database.cjs", "cjs", "require"],
    ]) {
      writeFileSync(join(project, file), databaseScript(format));
      const output = run("node", [file], { cwd: project, timeout: 30_000 }).trim();
      if (output !== DATABASE_EXPECTED) {
        throw new CheckError(
          `node ${file} printed ${JSON.stringify(output)}, expected ${DATABASE_EXPECTED}`,
        );
      }
      summary.push(`async-batcher/pg and /mysql via ${how} (${file}): ${output}`);
    }

    console.log(`check:package ok\n  ${summary.join("\n  ")}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  console.error(`check:package FAILED: ${error instanceof CheckError ? error.message : error}`);
  process.exitCode = 1;
}
