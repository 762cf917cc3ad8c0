/**
 * Shared by the worker-pool tests: where the fixtures are, the Node.js options the threads need
 * under Vitest, and a count of live worker threads that does not ask piscina.
 */
import { createHook } from "node:async_hooks";
import type { Worker } from "node:worker_threads";

/** A worker module in test/fixtures/workers/. */
export const fixture = (name: string): URL =>
  new URL(`../fixtures/workers/${name}`, import.meta.url);

/**
 * Vitest transforms the test files itself; the worker threads it does not reach load the library's
 * entry script (`src/worker/entry.ts`) and the `.ts` fixtures through tsx, as users of `.ts`
 * workers under Vitest must (docs/worker-pool.md).
 */
export const execArgv = [...process.execArgv, "--import", "tsx"];

/**
 * Worker threads alive in this process, counted through async_hooks: a `WORKER` resource is
 * created with each thread and destroyed once the thread has exited and its handle closed. This
 * sees every thread, including ones the pool no longer lists.
 */
const live = new Set<number>();
createHook({
  init(asyncId, type) {
    if (type === "WORKER") live.add(asyncId);
  },
  destroy(asyncId) {
    live.delete(asyncId);
  },
}).enable();

const nextImmediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The number of live worker threads once the destroy hooks of the threads that have exited have
 * run (Node.js emits them from an immediate after the handle closes). Waits for at most 20
 * turns of the event loop for the count to reach `expected`, so a pass is prompt and a failure
 * returns the count it saw.
 */
export async function liveThreads(expected = 0): Promise<number> {
  for (let turn = 0; turn < 20 && live.size !== expected; turn++) await nextImmediate();
  return live.size;
}

/** True once a thread has stopped: Node.js sets `threadId` to -1. */
export const exited = (thread: Worker): boolean => thread.threadId === -1;
