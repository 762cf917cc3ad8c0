/**
 * An idle batcher holds no timer and no handle, so a script that never calls stop() exits once its
 * work is done; a pending partial batch keeps the process alive until it is dispatched.
 *
 * Each scenario runs in a child Node process (with tsx, straight from the sources). Assertions are
 * on exit code and output; the only timing involved is the kill-timeout that catches a hang.
 */
import { execFile } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const entry = pathToFileURL(fileURLToPath(new URL("../../src/index.ts", import.meta.url))).href;

/** A child that is still running after this long is taken to hang, and is killed. */
const KILL_AFTER_MS = 10_000;
const TEST_TIMEOUT_MS = 20_000;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  killed: boolean;
  stdout: string;
  stderr: string;
}

/** Runs an ES module source in a fresh Node process, with `BATCHER` bound to the library's URL. */
function runScript(source: string): Promise<Outcome> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_DEBUG;
  delete env.NODE_OPTIONS;
  const program = `const BATCHER = ${JSON.stringify(entry)};\n${source}`;
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "--eval", program],
      { cwd: root, env, timeout: KILL_AFTER_MS, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        resolve({
          code: child.exitCode,
          signal: child.signalCode,
          killed: error?.killed ?? false,
          stdout,
          stderr,
        });
      },
    );
  });
}

describe("process exit", () => {
  it(
    "exits on its own once the work is done, without stop()",
    async () => {
      const outcome = await runScript(`
        const { createBatcher } = await import(BATCHER);
        const double = (items) => items.map((x) => x * 2);
        // A long maxQueueTime: its timer, armed by the first item, must not outlive the batch.
        const bySize = createBatcher(double, { maxBatchSize: 2, maxQueueTime: 60_000 });
        console.log(JSON.stringify(await Promise.all([bySize.process(1), bySize.process(2)])));
        // Cut by time, then idle.
        const byTime = createBatcher(double, { maxQueueTime: 20 });
        console.log(JSON.stringify(await Promise.all([byTime.process(3), byTime.process(4)])));
        // Flushed before its timer.
        const flushed = createBatcher(double, { maxQueueTime: 60_000 });
        const pending = flushed.process(5);
        await flushed.flush();
        console.log(JSON.stringify(await pending));
        // Never used at all.
        createBatcher(double, { maxQueueTime: 60_000 });
        console.log("done");
      `);
      expect(outcome.stderr).toBe("");
      expect(outcome.killed).toBe(false);
      expect(outcome.signal).toBeNull();
      expect(outcome.code).toBe(0);
      expect(outcome.stdout).toBe("[2,4]\n[6,8]\n10\ndone\n");
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "stays alive until a pending partial batch is dispatched and its result printed",
    async () => {
      const outcome = await runScript(`
        const { createBatcher } = await import(BATCHER);
        const batcher = createBatcher((items) => items.map((x) => x * 2), {
          maxBatchSize: 10,
          maxQueueTime: 300,
        });
        batcher.process(21).then((result) => console.log("result", result));
        console.log("submitted");
      `);
      expect(outcome.stderr).toBe("");
      expect(outcome.killed).toBe(false);
      expect(outcome.signal).toBeNull();
      expect(outcome.code).toBe(0);
      expect(outcome.stdout).toBe("submitted\nresult 42\n");
    },
    TEST_TIMEOUT_MS,
  );
});
