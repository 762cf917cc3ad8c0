/**
 * Starts the serving example in a child process (`node --import tsx server.ts`), for the
 * benchmark and the integration test: resolves with its URL once it listens, and stops it with
 * SIGTERM (a graceful close) on `stop()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const SERVER = fileURLToPath(new URL("./server.ts", import.meta.url));

export interface RunningServer {
  readonly url: string;
  readonly child: ChildProcess;
  /** What the server printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then the exit code (`null` if killed by a signal). SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** Starts the server with `args` (`--small`, `--threads 2`, ...) on a free port. */
export function startServer(
  args: readonly string[] = [],
  timeoutMs = 120_000,
): Promise<RunningServer> {
  const child = spawn(process.execPath, ["--import", "tsx", SERVER, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the server did not listen within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1] === undefined) return;
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stdout?.on("data", (more: Buffer) => {
        output += more.toString();
      });
      resolve({
        url: match[1],
        child,
        output: () => output,
        async stop(stopTimeoutMs = 30_000) {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          const killer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
          try {
            return await exited;
          } finally {
            clearTimeout(killer);
          }
        },
      });
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${signal ?? code}) before it listened:\n${output}`));
    });
  });
}
