/**
 * `async-batcher/worker` with real worker threads: results and their order, `.ts`, `.mjs` and
 * `.cjs` worker modules, errors across the thread boundary, transfer lists, the options that
 * reach the threads, option checks, and who closes the pool. Crashes: worker-crash.test.ts;
 * stopping: worker-stop.test.ts.
 */
import { threadId } from "node:worker_threads";
import {
  type AsyncBatcher,
  BatcherStoppedError,
  BatchResultError,
  createBatcher,
  WorkerCrashedError,
} from "async-batcher";
import {
  createWorkerBatcher,
  WorkerPoolExecutor,
  type WorkerPoolOptions,
} from "async-batcher/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execArgv, fixture, liveThreads } from "../helpers/workers.js";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** What `promise` rejected with; fails if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection, got a result");
}

describe("results", () => {
  let batcher: AsyncBatcher<number, number>;
  const cuts: number[] = [];

  beforeAll(() => {
    batcher = createWorkerBatcher<typeof import("../fixtures/workers/double.js")>(
      fixture("double.ts"),
      {
        maxThreads: 2,
        maxBatchSize: 4,
        maxQueueTime: 0,
        execArgv,
        logger: (event) => {
          if (event.type === "batchCut") cuts.push(event.size);
        },
      },
    );
  });

  afterAll(async () => {
    await batcher.stop();
  });

  it("resolves every caller with its own result, in order, across batches", async () => {
    cuts.length = 0;
    const results = await Promise.all(range(22).map((i) => batcher.process(i)));
    expect(results).toEqual(range(22).map((i) => i * 2));
    expect(cuts).toEqual([4, 4, 4, 4, 4, 2]);
  });

  it("keeps concurrent callers apart", async () => {
    const a = Promise.all([1, 2, 3].map((i) => batcher.process(i)));
    const b = Promise.all([10, 20].map((i) => batcher.process(i)));
    expect(await a).toEqual([2, 4, 6]);
    expect(await b).toEqual([20, 40]);
  });

  it("takes concurrency from maxThreads", () => {
    // maxBatchSize 4 and two slots: eight items are cut into two batches at once, the rest wait.
    const pending = range(10).map((i) => batcher.process(i));
    expect(batcher.inFlight).toBe(8);
    expect(batcher.queueSize).toBe(2);
    return expect(Promise.all(pending)).resolves.toEqual(range(10).map((i) => i * 2));
  });
});

describe("worker modules", () => {
  it("runs the batch function in a worker thread, not on the main thread", async () => {
    const batcher = createWorkerBatcher<string, string>(fixture("crash.ts"), {
      maxThreads: 1,
      execArgv,
    });
    try {
      const [result] = await Promise.all([batcher.process("echo")]);
      const [, thread] = String(result).split("@");
      expect(Number(thread)).toBeGreaterThan(0);
      expect(Number(thread)).not.toBe(threadId);
    } finally {
      await batcher.stop();
    }
  });

  it.each([
    { file: "double.ts", as: "a URL" },
    { file: "double.mjs", as: "a URL" },
    { file: "double.cjs", as: "a URL" },
    { file: "double.mjs", as: "a file: URL string" },
    { file: "double.cjs", as: "a path" },
  ])("runs $file given as $as", async ({ file, as }) => {
    const url = fixture(file);
    const filename = as === "a URL" ? url : as === "a path" ? url.pathname : url.href;
    const batcher = createWorkerBatcher<number, number>(filename, { maxThreads: 1, execArgv });
    try {
      expect(await Promise.all([1, 2, 3].map((i) => batcher.process(i)))).toEqual([2, 4, 6]);
    } finally {
      await batcher.stop();
    }
  });

  it("resolves a relative path against the working directory", async () => {
    const relative = `./${fixture("double.mjs").pathname.slice(process.cwd().length + 1)}`;
    const batcher = createWorkerBatcher<number, number>(relative, { maxThreads: 1, execArgv });
    try {
      expect(await batcher.process(21)).toBe(42);
    } finally {
      await batcher.stop();
    }
  });

  it("tells the worker function the batch's id and key", async () => {
    const batcher = createWorkerBatcher<typeof import("../fixtures/workers/info.js")>(
      fixture("info.ts"),
      { maxThreads: 1, execArgv, batchKey: (item) => item.charAt(0), maxQueueTime: 0 },
    );
    try {
      const results = await Promise.all(["a1", "b1", "a2"].map((i) => batcher.process(i)));
      expect(results).toEqual([
        { item: "a1", batchId: 1, key: "a" },
        { item: "b1", batchId: 2, key: "b" },
        { item: "a2", batchId: 1, key: "a" },
      ]);
    } finally {
      await batcher.stop();
    }
  });

  it("calls the export named by exportName, async or not", async () => {
    const batcher = createWorkerBatcher<typeof import("../fixtures/workers/double.js").square>(
      fixture("double.ts"),
      { exportName: "square", maxThreads: 1, execArgv },
    );
    try {
      expect(await Promise.all([2, 3].map((i) => batcher.process(i)))).toEqual([4, 9]);
    } finally {
      await batcher.stop();
    }
  });
});

describe("errors across the thread boundary", () => {
  let executor: WorkerPoolExecutor<unknown, string>;
  const batcherOf = <T, R>(exportName = "default", file = "item-errors.ts") => {
    const own = new WorkerPoolExecutor<T, R>({
      filename: fixture(file),
      exportName,
      maxThreads: 1,
      execArgv,
    });
    return createBatcher<T, R>(() => [], { executor: own, closeExecutor: true, maxQueueTime: 0 });
  };

  beforeAll(() => {
    executor = new WorkerPoolExecutor({ filename: fixture("throws.ts"), maxThreads: 1, execArgv });
  });

  afterAll(async () => {
    await executor.close();
  });

  const throwing = () => createBatcher<string, string>(() => [], { executor, maxQueueTime: 0 });

  it("rejects only the caller of a per-item Error, with its name, message, code and stack", async () => {
    const batcher = batcherOf<number, string>();
    try {
      const settled = await Promise.allSettled(
        [1, -1, 2, -2, -3, -4].map((id) => batcher.process(id)),
      );
      expect(settled.map((s) => s.status)).toEqual([
        "fulfilled",
        "rejected",
        "fulfilled",
        "rejected",
        "rejected",
        "rejected",
      ]);
      expect(settled[0]).toEqual({ status: "fulfilled", value: "item 1" });
      expect(settled[2]).toEqual({ status: "fulfilled", value: "item 2" });
      const [notFound, typeError, rangeError, domException] = [1, 3, 4, 5].map(
        (i) => (settled[i] as PromiseRejectedResult).reason as Error & Record<string, unknown>,
      );

      // A user-defined class: rebuilt as an Error with its name, code, own properties and stack.
      expect(notFound).toBeInstanceOf(Error);
      expect(notFound?.name).toBe("NotFoundError");
      expect(notFound?.message).toBe("no item -1");
      expect(notFound?.code).toBe("E_NOT_FOUND");
      expect(notFound?.id).toBe(-1);
      expect(notFound?.stack).toBe(notFound?.expectedStack);
      expect(notFound?.stack).toContain("item-errors.ts");

      // Built-in classes stay themselves; a numeric code survives too.
      expect(typeError).toBeInstanceOf(TypeError);
      expect(typeError?.name).toBe("TypeError");
      expect(typeError?.code).toBe(42);
      expect(typeError?.stack).toBe(typeError?.expectedStack);

      // The cause, with its own code.
      expect(rangeError).toBeInstanceOf(RangeError);
      expect(rangeError?.cause).toBeInstanceOf(Error);
      expect(rangeError?.cause).toMatchObject({ message: "disk full", code: "ENOSPC" });

      expect(domException).toBeInstanceOf(DOMException);
      expect(domException?.name).toBe("TimeoutError");
      expect(domException?.message).toBe("too slow");
      expect(domException?.stack).toBe(domException?.expectedStack);
    } finally {
      await batcher.stop();
    }
  });

  it("rejects every item of a batch whose function throws, with the error rebuilt", async () => {
    const batcher = throwing();
    const errors = await Promise.all(["throw", "b", "c"].map((x) => rejection(batcher.process(x))));
    const [first] = errors as (Error & Record<string, unknown>)[];
    expect(new Set(errors).size).toBe(1); // one error for the whole batch, as inline
    expect(first).toBeInstanceOf(Error);
    expect(first).not.toBeInstanceOf(WorkerCrashedError);
    expect(first?.name).toBe("QuotaError");
    expect(first?.message).toBe("quota exceeded");
    expect(first?.code).toBe("E_QUOTA");
    expect(first?.limit).toBe(10);
    expect(first?.stack).toBe(first?.expectedStack);
    expect(first?.cause).toMatchObject({ message: "upstream said no", code: "E_UPSTREAM" });
  });

  it("rejects with a rebuilt built-in class when the function rejects", async () => {
    const error = await rejection(throwing().process("reject"));
    expect(error).toBeInstanceOf(SyntaxError);
    expect(error).toMatchObject({ name: "SyntaxError", message: "bad input", code: "E_SYNTAX" });
  });

  it("rejects with the very value thrown when it is not an Error", async () => {
    await expect(throwing().process("value")).rejects.toEqual({
      reason: "not an error",
      retry: false,
    });
    // A thrown function cannot cross: an Error says so.
    const error = await rejection(throwing().process("function"));
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(WorkerCrashedError);
  });

  it("serves later batches after errors, on the same thread", async () => {
    const before = executor.pool.threads.map((thread) => thread.threadId);
    await expect(throwing().process("fine")).resolves.toBe("fine");
    expect(executor.pool.threads.map((thread) => thread.threadId)).toEqual(before);
  });

  it("reports a result that does not fit the batch as it does inline", async () => {
    const tooFew = batcherOf<number, number>("tooFew", "shapes.ts");
    const nothing = batcherOf<number, void>("nothing", "shapes.ts");
    try {
      const results = [1, 2].map((i) => tooFew.process(i));
      for (const result of results) await expect(result).rejects.toBeInstanceOf(BatchResultError);
      await expect(Promise.all([1, 2].map((i) => nothing.process(i)))).resolves.toEqual([
        undefined,
        undefined,
      ]);
    } finally {
      await Promise.all([tooFew.stop(), nothing.stop()]);
    }
  });

  it("rejects with WorkerCrashedError when the results cannot be cloned: the thread dies of it", async () => {
    const batcher = batcherOf<number, unknown>("unclonable", "shapes.ts");
    try {
      const error = await rejection(batcher.process(1));
      expect(error).toBeInstanceOf(WorkerCrashedError);
      expect(error).toMatchObject({ code: "ERR_WORKER_CRASHED" });
    } finally {
      await batcher.stop();
    }
  });

  it("rejects with a TypeError when the export is not a function, and an import error when the module is missing", async () => {
    const notAFunction = batcherOf<number, number>("notAFunction", "shapes.ts");
    const missing = batcherOf<number, number>("default", "no-such-module.mjs");
    try {
      const error = await rejection(notAFunction.process(1));
      expect(error).toBeInstanceOf(TypeError);
      expect(error).not.toBeInstanceOf(WorkerCrashedError);
      await expect(missing.process(1)).rejects.toMatchObject({ code: "ERR_MODULE_NOT_FOUND" });
    } finally {
      await Promise.all([notAFunction.stop(), missing.stop()]);
    }
  });

  it("rejects a batch whose items cannot be cloned with DataCloneError, and goes on", async () => {
    const batcher = createBatcher<unknown, string>(() => [], { executor, maxQueueTime: 0 });
    const error = await rejection(batcher.process(() => "a function"));
    expect(error).toBeInstanceOf(DOMException);
    expect(error).toMatchObject({ name: "DataCloneError" });
    await expect(batcher.process("fine")).resolves.toBe("fine");
  });
});

describe("transfer", () => {
  it("moves the batch's buffers into the thread and the results' buffers back", async () => {
    const batcher = createWorkerBatcher<typeof import("../fixtures/workers/transfer.js")>(
      fixture("transfer.ts"),
      {
        maxThreads: 1,
        maxQueueTime: 0,
        execArgv,
        transfer: (batch) => batch.map((values) => values.buffer),
      },
    );
    try {
      const inputs = [new Float64Array([1, 2, 3]), new Float64Array([10, 20])];
      const first = await Promise.all(inputs.map((values) => batcher.process(values)));
      // Moved: the main thread's buffers are detached.
      expect(inputs.map((values) => values.buffer.byteLength)).toEqual([0, 0]);
      expect(first.map((result) => result[0])).toEqual([6, 30]);
      expect(first.every((result) => result instanceof Float64Array)).toBe(true);

      // The worker kept the arrays it returned by withTransfer: moved out, they are empty there.
      const [second] = await Promise.all([batcher.process(new Float64Array([5]))]);
      expect(second?.[0]).toBe(5);
      expect(second?.[1]).toBe(0);
    } finally {
      await batcher.stop();
    }
  });

  it("moves a buffer shared by several items once, and leaves SharedArrayBuffers shared", async () => {
    const batcher = createWorkerBatcher<typeof import("../fixtures/workers/transfer.js")>(
      fixture("transfer.ts"),
      {
        maxThreads: 1,
        maxQueueTime: 0,
        execArgv,
        transfer: (batch) => batch.map((values) => values.buffer),
      },
    );
    try {
      const buffer = new ArrayBuffer(32);
      const halves = [new Float64Array(buffer, 0, 2), new Float64Array(buffer, 16, 2)];
      halves[0]?.set([1, 2]);
      halves[1]?.set([3, 4]);
      const shared = new Float64Array(new SharedArrayBuffer(16));
      shared.set([5, 6]);
      const sums = await Promise.all(
        [...halves, shared].map(async (values) => (await batcher.process(values))[0]),
      );
      expect(sums).toEqual([3, 7, 11]);
      expect(buffer.byteLength).toBe(0);
      expect(shared.buffer.byteLength).toBe(16);
    } finally {
      await batcher.stop();
    }
  });

  it("copies when there is no transfer option: the caller keeps its buffer", async () => {
    const batcher = createWorkerBatcher<Float64Array, Float64Array>(fixture("transfer.ts"), {
      maxThreads: 1,
      execArgv,
    });
    try {
      const values = new Float64Array([1, 2]);
      expect((await batcher.process(values))[0]).toBe(3);
      expect(values.buffer.byteLength).toBe(16);
    } finally {
      await batcher.stop();
    }
  });
});

describe("options that reach the threads", () => {
  it("keeps a thread above minThreads alive between bursts (idleTimeout 30 s), so its module stays loaded", async () => {
    const options = { maxThreads: 2, minThreads: 1, maxBatchSize: 1, maxQueueTime: 0, execArgv };
    const kept = createWorkerBatcher<number, number>(fixture("double.mjs"), options);
    const churned = createWorkerBatcher<number, number>(fixture("double.mjs"), {
      ...options,
      idleTimeout: 0,
    });
    /** Two batches at once start the second thread; resolves once both threads are ready. */
    const burst = async (batcher: typeof kept) => {
      let ready = 0;
      const bothReady = new Promise<void>((resolve) => {
        batcher.executor.pool.on("workerCreate", () => {
          if (++ready === 2) resolve();
        });
      });
      await Promise.all([1, 2].map((i) => batcher.process(i)));
      await bothReady;
    };
    try {
      await Promise.all([burst(kept), burst(churned)]);
      // Long enough for an idle timeout of 0 (piscina's default) to have stopped a thread.
      await new Promise((resolve) => setTimeout(resolve, 25));
      expect(kept.executor.pool.threads).toHaveLength(2);
      expect(churned.executor.pool.threads).toHaveLength(1);
    } finally {
      await Promise.all([kept.stop(), churned.stop()]);
    }
  });

  it("passes workerData and env", async () => {
    const batcher = createWorkerBatcher<number, { workerData: unknown; env: unknown }>(
      fixture("env-data.ts"),
      {
        maxThreads: 1,
        execArgv,
        workerData: { model: "tiny", weights: [1, 2] },
        env: { ...process.env, BATCHER_TEST: "from the pool" },
      },
    );
    try {
      expect(await batcher.process(0)).toEqual({
        workerData: { model: "tiny", weights: [1, 2] },
        env: "from the pool",
      });
    } finally {
      await batcher.stop();
    }
  });
});

describe("option checks", () => {
  const base: WorkerPoolOptions = { filename: fixture("double.mjs"), execArgv };

  /** Runs `construct`, expects it to throw `kind` naming `option`; returns the error. */
  function thrownBy(construct: () => unknown, kind: typeof TypeError, option: string): Error {
    let caught: unknown;
    try {
      construct();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(kind);
    expect(caught).not.toBeInstanceOf(kind === RangeError ? TypeError : RangeError);
    expect((caught as Error).message).toContain(option);
    return caught as Error;
  }

  it.each([
    { options: { filename: 42 }, kind: TypeError, option: "filename" },
    { options: { filename: "" }, kind: TypeError, option: "filename" },
    {
      options: { filename: new URL("https://example.com/model.js") },
      kind: TypeError,
      option: "filename",
    },
    { options: { filename: undefined }, kind: TypeError, option: "filename" },
    { options: { exportName: "" }, kind: TypeError, option: "exportName" },
    { options: { exportName: 1 }, kind: TypeError, option: "exportName" },
    { options: { minThreads: -1 }, kind: RangeError, option: "minThreads" },
    { options: { minThreads: 1.5 }, kind: RangeError, option: "minThreads" },
    { options: { minThreads: "1" }, kind: TypeError, option: "minThreads" },
    { options: { maxThreads: 0 }, kind: RangeError, option: "maxThreads" },
    { options: { maxThreads: Number.POSITIVE_INFINITY }, kind: RangeError, option: "maxThreads" },
    { options: { minThreads: 3, maxThreads: 2 }, kind: RangeError, option: "minThreads" },
    { options: { idleTimeout: -1 }, kind: RangeError, option: "idleTimeout" },
    { options: { idleTimeout: "1s" }, kind: TypeError, option: "idleTimeout" },
    { options: { resourceLimits: 16 }, kind: TypeError, option: "resourceLimits" },
    {
      options: { resourceLimits: { maxOldGenSizeMb: 16 } },
      kind: TypeError,
      option: "maxOldGenSizeMb",
    },
    {
      options: { resourceLimits: { maxOldGenerationSizeMb: 0 } },
      kind: RangeError,
      option: "resourceLimits.maxOldGenerationSizeMb",
    },
    { options: { env: "production" }, kind: TypeError, option: "env" },
    { options: { workerData: { callback: () => {} } }, kind: TypeError, option: "workerData" },
    { options: { execArgv: ["--import", 1] }, kind: TypeError, option: "execArgv" },
    { options: { transfer: [] }, kind: TypeError, option: "transfer" },
  ])(
    "$kind.name for $option in %o, before any thread starts",
    async ({ options, kind, option }) => {
      const all = { ...base, ...options } as WorkerPoolOptions;
      thrownBy(() => new WorkerPoolExecutor(all), kind, option);
      const { filename, ...rest } = all;
      thrownBy(() => createWorkerBatcher(filename, rest), kind, option);
      expect(await liveThreads()).toBe(0);
    },
  );

  it("checks the batcher's options before starting threads", async () => {
    thrownBy(
      () => createWorkerBatcher(fixture("double.mjs"), { maxBatchSize: 0 }),
      RangeError,
      "maxBatchSize",
    );
    thrownBy(
      () => createWorkerBatcher(fixture("double.mjs"), { concurrency: 0 }),
      RangeError,
      "concurrency",
    );
    thrownBy(() => createWorkerBatcher(fixture("double.mjs"), 5 as never), TypeError, "options");
    expect(await liveThreads()).toBe(0);
  });

  it("refuses executor and closeExecutor: createWorkerBatcher owns its pool", () => {
    thrownBy(
      () => createWorkerBatcher(fixture("double.mjs"), { executor: {} } as never),
      TypeError,
      "executor",
    );
    thrownBy(
      () => createWorkerBatcher(fixture("double.mjs"), { closeExecutor: false } as never),
      TypeError,
      "closeExecutor",
    );
  });

  it("defaults maxThreads to the number of cores, and concurrency to maxThreads", async () => {
    const { availableParallelism } = await import("node:os");
    const executor = new WorkerPoolExecutor({ ...base, minThreads: 0 });
    expect(executor.maxThreads).toBe(availableParallelism());
    await executor.close();
    const raised = new WorkerPoolExecutor({ ...base, minThreads: availableParallelism() + 1 });
    expect(raised.maxThreads).toBe(availableParallelism() + 1);
    await raised.close();
  });
});

describe("closeExecutor: who closes the pool", () => {
  it("leaves a pool passed in open after stop(), for its owner to close", async () => {
    const executor = new WorkerPoolExecutor<number, number>({
      filename: fixture("double.mjs"),
      maxThreads: 1,
      execArgv,
    });
    const first = createBatcher<number, number>(() => [], { executor });
    expect(await first.process(1)).toBe(2);
    await first.stop();
    expect(executor.closed).toBe(false);
    expect(executor.threads).toBeGreaterThan(0);

    // Still serving: another batcher shares it.
    const second = createBatcher<number, number>(() => [], { executor });
    expect(await second.process(2)).toBe(4);
    await second.stop({ force: true });
    expect(executor.closed).toBe(false);

    await executor.close();
    expect(executor.closed).toBe(true);
    expect(executor.threads).toBe(0);
    expect(await liveThreads()).toBe(0);
    await expect(
      executor.run([1], { signal: new AbortController().signal, batchId: 1, key: undefined }),
    ).rejects.toBeInstanceOf(BatcherStoppedError);
  });

  it("closes the pool createWorkerBatcher made when the batcher stops", async () => {
    const batcher = createWorkerBatcher<number, number>(fixture("double.mjs"), {
      maxThreads: 2,
      minThreads: 2,
      execArgv,
    });
    expect(await batcher.process(1)).toBe(2);
    expect(batcher.executor.threads).toBe(2);
    await batcher.stop();
    expect(batcher.executor.closed).toBe(true);
    expect(batcher.executor.threads).toBe(0);
    expect(batcher.executor.pool.threads).toHaveLength(0);
    expect(await liveThreads()).toBe(0);
  });

  it("closes it on stop() even when nothing was processed", async () => {
    const batcher = createWorkerBatcher(fixture("double.mjs"), { minThreads: 1, execArgv });
    await batcher.stop();
    expect(batcher.executor.closed).toBe(true);
    expect(await liveThreads()).toBe(0);
  });

  it("names the batcher WorkerBatcher unless told", () => {
    const named = createWorkerBatcher(fixture("double.mjs"), { minThreads: 0, name: "embed" });
    const unnamed = createWorkerBatcher(fixture("double.mjs"), { minThreads: 0 });
    expect(named.name).toBe("embed");
    expect(unnamed.name).toBe("WorkerBatcher");
    return Promise.all([named.stop(), unnamed.stop()]);
  });
});
