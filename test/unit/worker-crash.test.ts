/**
 * A worker thread that dies while running a batch: `process.exit()`, an uncaught exception thrown
 * asynchronously, running out of heap under `resourceLimits`. Only that batch's items reject,
 * with `WorkerCrashedError` and the cause; a batch running on another thread is untouched; the
 * pool replaces the thread and later batches succeed.
 */
import { BatcherError, WorkerCrashedError } from "async-batcher";
import { createWorkerBatcher, type WorkerBatcherOptions } from "async-batcher/worker";
import { describe, expect, it } from "vitest";
import { execArgv, fixture, liveThreads } from "../helpers/workers.js";

/** `crash.ts` echoes `item@threadId`: the thread that ran the item. */
const threadOf = (result: string) => Number(result.split("@")[1]);

describe.each([
  { kind: "exit", how: "process.exit()", options: {} },
  { kind: "throw-async", how: "an uncaught exception thrown asynchronously", options: {} },
  {
    kind: "oom",
    how: "running out of heap under resourceLimits",
    // Small enough to run out fast, large enough to load tsx and the entry script.
    options: { resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 } },
  },
] satisfies { kind: string; how: string; options: WorkerBatcherOptions<string, string> }[])(
  "a thread that dies of $how",
  ({ kind, options }) => {
    it("rejects only its batch's items with WorkerCrashedError, and later batches succeed", async () => {
      const batcher = createWorkerBatcher<string, string>(fixture("crash.ts"), {
        maxThreads: 2,
        minThreads: 2,
        maxBatchSize: 2,
        maxQueueTime: 0,
        execArgv,
        ...options,
      });
      try {
        // Two batches at once, on the two threads: one healthy, one that kills its thread.
        const healthy = Promise.all(["a", "b"].map((item) => batcher.process(item)));
        const doomed = [kind, "c"].map((item) =>
          batcher.process(item).then(
            () => undefined,
            (error: unknown) => error,
          ),
        );
        const [first, second] = await Promise.all(doomed);
        expect(first).toBeInstanceOf(WorkerCrashedError);
        expect(first).toBeInstanceOf(BatcherError);
        expect(first).toMatchObject({ code: "ERR_WORKER_CRASHED" });
        expect(second).toBe(first); // the batch failed as a whole
        const { cause } = first as WorkerCrashedError;
        expect(cause).toBeInstanceOf(Error);
        if (kind === "oom") expect(cause).toMatchObject({ code: "ERR_WORKER_OUT_OF_MEMORY" });

        const before = await healthy;
        expect(before.map((result) => result.split("@")[0])).toEqual(["a", "b"]);

        // The pool replaced the dead thread: batches after the crash run, on live threads.
        const after = await Promise.all(
          ["d", "e", "f", "g", "h", "i"].map((item) => batcher.process(item)),
        );
        expect(after.map((result) => result.split("@")[0])).toEqual(["d", "e", "f", "g", "h", "i"]);
        const alive = new Set(batcher.executor.pool.threads.map((thread) => thread.threadId));
        for (const result of after) expect(alive.has(threadOf(result))).toBe(true);
      } finally {
        await batcher.stop();
      }
      expect(batcher.executor.threads).toBe(0);
      expect(await liveThreads()).toBe(0);
    });
  },
);
