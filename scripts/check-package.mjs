#!/usr/bin/env node
// Proves that users can install the package: lints the packed tarball (publint, are-the-types-wrong),
// installs it into an empty project and runs the README quickstart from both `import` and `require`.
// It checks the build, it does not make it: run `npm run build` first (CI does).
//
// Usage: npm run build && npm run check:package

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const EXPECTED = "[0,2,4,6,8,10,12,14,16,18]";
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
  const result = spawnSync(command, argv, { cwd, encoding: "utf8", shell, timeout });
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

${
  esm
    ? demo
    : `(async () => {
${demo}
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});`
}
`;
}

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

    const project = join(work, "project");
    mkdirSync(project);
    run("npm", ["init", "-y"], { cwd: project });
    run("npm", ["install", tarball, "--no-audit", "--no-fund"], { cwd: project });
    summary.push("installed into an empty project");

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
