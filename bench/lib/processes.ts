/** Building what is measured, and running each measurement in its own process. */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "tsup";
import { type ChildTask, RESULT_MARK } from "./protocol.js";
import type { Sample } from "./scenario.js";

/** Newest modification time (ms) of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Makes sure `dist/index.js` exists and is newer than every file in `src/`: we measure the built
 * library, as users get it. Builds with `npm run build` otherwise.
 */
export function ensureBuilt(root: string): string {
  const dist = join(root, "dist", "index.js");
  const stale = !existsSync(dist) || statSync(dist).mtimeMs < newestMtime(join(root, "src"));
  if (stale) {
    process.stderr.write("dist/ is missing or older than src/: running npm run build\n");
    const built = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
    if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status})`);
  }
  return pathToFileURL(dist).href;
}

/**
 * Bundles `bench/child.ts` into one ES module, so a child starts in plain Node (no TypeScript
 * loader in the measured process). Peers stay external, loaded from `node_modules` as users load
 * them. The bundle lives under `node_modules/.cache`, where the peers resolve and git ignores it.
 */
export async function bundleChild(root: string): Promise<string> {
  const outDir = join(root, "node_modules", ".cache", "async-batcher-bench");
  await build({
    config: false,
    entry: { child: join(root, "bench", "child.ts") },
    outDir,
    format: ["esm"],
    platform: "node",
    target: "node20",
    bundle: true,
    skipNodeModulesBundle: true,
    external: ["async-batcher"],
    splitting: false,
    sourcemap: false,
    dts: false,
    clean: false,
    silent: true,
    tsconfig: join(root, "tsconfig.json"),
  });
  const bundled = join(outDir, "child.js");
  if (!existsSync(bundled)) throw new Error(`bundling the child produced no ${bundled}`);
  return bundled;
}

/** The flags every measuring child gets: the same for every subject. */
export const CHILD_FLAGS = ["--expose-gc", "--max-old-space-size=8192"];

/** The child's environment: no loader and no debug logging leak in from the parent. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_DEBUG;
  return env;
}

/**
 * Runs one measurement in a fresh process and returns its sample. A non-zero exit (a wrong
 * result), a missing sample or a timeout throws: the run fails.
 */
export function runChild(
  root: string,
  childPath: string,
  task: ChildTask,
  timeoutMs: number,
  extraFlags: readonly string[] = [],
): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...CHILD_FLAGS, ...extraFlags, childPath, JSON.stringify(task)],
      { cwd: root, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const what = `${task.scenario} / ${task.subject}`;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${what}: no result after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`${what}: child exited with ${signal ?? `code ${code}`}\n${stderr}`));
        return;
      }
      const line = stdout.split("\n").find((l) => l.startsWith(RESULT_MARK));
      if (line === undefined) {
        reject(new Error(`${what}: child printed no sample\n${stdout}\n${stderr}`));
        return;
      }
      if (stderr.trim() !== "") process.stderr.write(`  (${what} stderr) ${stderr.trim()}\n`);
      resolve(JSON.parse(line.slice(RESULT_MARK.length)) as Sample);
    });
  });
}
