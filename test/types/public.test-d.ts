/**
 * Type tests of the public API (run by `vitest --typecheck` and by `tsc --noEmit`): inference of
 * `T` and `R`, the generics of subclasses, the context, the errors' literal codes, and what the
 * compiler must refuse.
 */
import {
  AsyncBatcher,
  type BatchContext,
  BatcherError,
  type BatcherErrorCode,
  type BatcherLogEvent,
  type BatcherLogger,
  type BatcherOptions,
  type BatcherStoppedError,
  type BatchFunction,
  type BatchResult,
  type BatchResultError,
  type Clock,
  type CutReason,
  createBatcher,
  DEFAULTS,
  type Executor,
  type ItemTimeoutError,
  type ItemTooLargeError,
  type MissingResultPolicy,
  type ProcessOptions,
  type QueueFullError,
  type QueueFullPolicy,
  type RateLimit,
  type RetryOptions,
  type StopOptions,
  type TunableOptions,
  type WorkerCrashedError,
} from "async-batcher";
import { describe, expectTypeOf, it } from "vitest";

describe("createBatcher infers T and R from the batch function", () => {
  it("from a synchronous function", () => {
    const batcher = createBatcher((batch: number[]) => batch.map((x) => x * 2));
    expectTypeOf(batcher).toEqualTypeOf<AsyncBatcher<number, number>>();
    expectTypeOf(batcher.process).parameter(0).toEqualTypeOf<number>();
    expectTypeOf(batcher.process).returns.toEqualTypeOf<Promise<number>>();
  });

  it("from an async function", () => {
    const batcher = createBatcher(async (batch: number[]) => batch.map(String));
    expectTypeOf(batcher).toEqualTypeOf<AsyncBatcher<number, string>>();
    expectTypeOf(batcher.process(1)).toEqualTypeOf<Promise<string>>();
    expectTypeOf(batcher.process(1)).resolves.toEqualTypeOf<string>();
  });

  it("from a function returning a PromiseLike", () => {
    const batcher = createBatcher(
      (batch: string[]): PromiseLike<boolean[]> => Promise.resolve(batch.map(Boolean)),
    );
    expectTypeOf(batcher).toEqualTypeOf<AsyncBatcher<string, boolean>>();
  });

  it("leaves Error out of R when results mix values and errors", () => {
    const sync = createBatcher((batch: number[]) =>
      batch.map((x) => (x > 0 ? x : new Error("not positive"))),
    );
    expectTypeOf(sync).toEqualTypeOf<AsyncBatcher<number, number>>();
    const async = createBatcher(async (batch: number[]): Promise<(number | Error)[]> => batch);
    expectTypeOf(async.process(1)).resolves.toEqualTypeOf<number>();
    const subclass = createBatcher(async (batch: number[]) =>
      batch.map((x) => (x > 0 ? x : new RangeError("not positive"))),
    );
    expectTypeOf(subclass.process(1)).resolves.toEqualTypeOf<number>();
  });

  it("keeps a union of result types", () => {
    const batcher = createBatcher((batch: number[]) => batch.map((x) => (x > 0 ? "yes" : 0)));
    expectTypeOf(batcher.process(1)).resolves.toEqualTypeOf<"yes" | 0>();
  });

  it("infers R from an array that is sometimes missing", () => {
    const batcher = createBatcher(async (batch: number[]) =>
      batch.length > 0 ? batch : undefined,
    );
    expectTypeOf(batcher).toEqualTypeOf<AsyncBatcher<number, number>>();
  });

  it("gives R = void for a function returning void or Promise<void>", () => {
    // Nothing to infer R from: it defaults to `void` (every item resolves with `undefined`).
    const sync = createBatcher((_batch: number[]) => {});
    expectTypeOf(sync).toEqualTypeOf<AsyncBatcher<number, void>>();
    expectTypeOf(sync.process(1)).toEqualTypeOf<Promise<void>>();
    const async = createBatcher(async (_batch: string[]) => {});
    expectTypeOf(async).toEqualTypeOf<AsyncBatcher<string, void>>();
    const undef = createBatcher((_batch: number[]) => undefined);
    expectTypeOf(undef.process(1)).toEqualTypeOf<Promise<void>>();
    // R can be given explicitly
    const explicit = createBatcher<number, undefined>(async () => {});
    expectTypeOf(explicit.process(1)).toEqualTypeOf<Promise<undefined>>();
  });

  it("takes T from the parameter and receives a BatchContext", () => {
    createBatcher((batch: Array<{ id: string }>, context) => {
      expectTypeOf(batch).toEqualTypeOf<Array<{ id: string }>>();
      expectTypeOf(context).toEqualTypeOf<BatchContext>();
      return batch.map((item) => item.id);
    });
  });

  it("returns an AsyncBatcher for explicit type arguments", () => {
    const batcher = createBatcher<string, number>((batch) => {
      expectTypeOf(batch).toEqualTypeOf<string[]>();
      return batch.map((s) => s.length);
    });
    expectTypeOf(batcher).toEqualTypeOf<AsyncBatcher<string, number>>();
    expectTypeOf(createBatcher<string, number>).returns.toEqualTypeOf<
      AsyncBatcher<string, number>
    >();
    expectTypeOf(createBatcher<string, number>)
      .parameter(1)
      .toEqualTypeOf<BatcherOptions<string, number> | undefined>();
  });
});

describe("a subclass", () => {
  class Lengths extends AsyncBatcher<string, number> {
    async processBatch(batch: string[]): Promise<number[]> {
      return batch.map((s) => s.length);
    }
  }

  class Users extends AsyncBatcher<number, { id: number; name: string }> {
    processBatch(ids: number[], context: BatchContext) {
      expectTypeOf(context.signal).toEqualTypeOf<AbortSignal>();
      return ids.map((id) => (id > 0 ? { id, name: `user ${id}` } : new Error("no such user")));
    }
  }

  it("has the generics it extends", () => {
    const batcher = new Lengths();
    expectTypeOf(batcher).toExtend<AsyncBatcher<string, number>>();
    expectTypeOf(batcher.process).parameters.toEqualTypeOf<
      [item: string, options?: ProcessOptions]
    >();
    expectTypeOf(batcher.process("abc")).toEqualTypeOf<Promise<number>>();
    expectTypeOf(new Users().process(1)).resolves.toEqualTypeOf<{ id: number; name: string }>();
  });

  it("has processBatch with the abstract signature", () => {
    expectTypeOf<AsyncBatcher<string, number>["processBatch"]>().parameters.toEqualTypeOf<
      [batch: string[], context: BatchContext]
    >();
    expectTypeOf<AsyncBatcher<string, number>["processBatch"]>().returns.toEqualTypeOf<
      BatchResult<number> | PromiseLike<BatchResult<number>>
    >();
  });

  it("accepts a synchronous, a void and an async processBatch", () => {
    class Sync extends AsyncBatcher<number, number> {
      processBatch(batch: number[]): number[] {
        return batch;
      }
    }
    class Void extends AsyncBatcher<number, void> {
      async processBatch(): Promise<void> {}
    }
    class ReadOnly extends AsyncBatcher<number, number> {
      processBatch(batch: number[]): readonly number[] {
        return Object.freeze(batch);
      }
    }
    expectTypeOf(new Sync().process(1)).resolves.toEqualTypeOf<number>();
    expectTypeOf(new Void().process(1)).resolves.toEqualTypeOf<void>();
    expectTypeOf(new ReadOnly().process(1)).resolves.toEqualTypeOf<number>();
  });

  it("refuses results of the wrong type", () => {
    class Wrong extends AsyncBatcher<number, number> {
      // @ts-expect-error strings are not numbers
      processBatch(batch: number[]) {
        return batch.map(String);
      }
    }
    expectTypeOf(Wrong).toBeConstructibleWith();
  });

  it("cannot instantiate the abstract class", () => {
    // @ts-expect-error AsyncBatcher is abstract
    const _batcher = new AsyncBatcher<number, number>();
  });
});

describe("the public members", () => {
  const batcher = createBatcher(async (batch: number[]) => batch);

  it("have their documented types", () => {
    expectTypeOf(batcher.flush()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(batcher.onIdle()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(batcher.stop()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(batcher.stop).parameter(0).toEqualTypeOf<StopOptions | undefined>();
    expectTypeOf(batcher[Symbol.asyncDispose]()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(batcher).toExtend<AsyncDisposable>();
    expectTypeOf(batcher.isRunning).toEqualTypeOf<boolean>();
    expectTypeOf(batcher.queueSize).toEqualTypeOf<number>();
    expectTypeOf(batcher.inFlight).toEqualTypeOf<number>();
    expectTypeOf(batcher.name).toEqualTypeOf<string>();
  });

  it("are read-only where documented", () => {
    // @ts-expect-error isRunning is read-only
    batcher.isRunning = true;
    // @ts-expect-error queueSize is read-only
    batcher.queueSize = 0;
    // @ts-expect-error inFlight is read-only
    batcher.inFlight = 0;
  });

  it("refuse items of the wrong type", () => {
    // @ts-expect-error a string is not a number
    void batcher.process("1");
    // @ts-expect-error one item at a time
    void batcher.process([1, 2]);
    // @ts-expect-error an item is required
    void batcher.process();
  });
});

describe("options", () => {
  const fn = (batch: number[]) => batch;

  it("are all optional", () => {
    expectTypeOf<Record<never, never>>().toExtend<BatcherOptions>();
    expectTypeOf<BatcherOptions>().toEqualTypeOf<{
      maxBatchSize?: number;
      maxQueueTime?: number;
      concurrency?: number;
      maxQueueSize?: number;
      onQueueFull?: QueueFullPolicy;
      itemTimeout?: number;
      weigh?(item: unknown): number;
      maxBatchWeight?: number;
      batchKey?(item: unknown): string | number;
      rateLimit?: RateLimit;
      keyOf?(item: unknown): unknown;
      onMissingResult?: MissingResultPolicy;
      dedupe?: boolean;
      retry?: RetryOptions;
      splitOnError?: boolean;
      name?: string;
      logger?: BatcherLogger;
      clock?: Clock;
      executor?: Executor<unknown, never>;
      closeExecutor?: boolean;
    }>();
    expectTypeOf<QueueFullPolicy>().toEqualTypeOf<"reject" | "wait" | "dropOldest">();
    expectTypeOf<RateLimit>().toEqualTypeOf<{
      batches?: number;
      items?: number;
      interval: number;
    }>();
    expectTypeOf<ProcessOptions>().toEqualTypeOf<{
      signal?: AbortSignal;
      timeout?: number;
      priority?: number;
    }>();
    // weigh and batchKey see the batcher's item type.
    createBatcher((batch: { id: number; bytes: Uint8Array }[]) => batch.map((x) => x.id), {
      weigh: (item) => {
        expectTypeOf(item).toEqualTypeOf<{ id: number; bytes: Uint8Array }>();
        return item.bytes.length;
      },
      maxBatchWeight: 1024,
      batchKey: (item) => item.id % 4,
    });
    // Without type arguments, options fit a batcher of any types.
    expectTypeOf<BatcherOptions>().toExtend<BatcherOptions<number, string>>();
    // An executor must fit the batcher's types.
    expectTypeOf<BatcherOptions<number, string>>()
      .toHaveProperty("executor")
      .toEqualTypeOf<Executor<number, string> | undefined>();
    expectTypeOf<StopOptions>().toEqualTypeOf<{ force?: boolean; timeout?: number }>();
  });

  it("refuse wrong types", () => {
    // @ts-expect-error maxBatchSize is a number
    createBatcher(fn, { maxBatchSize: "5" });
    // @ts-expect-error concurrency is a number
    createBatcher(fn, { concurrency: null });
    // @ts-expect-error maxQueueTime is a number
    createBatcher(fn, { maxQueueTime: true });
    // @ts-expect-error name is a string
    createBatcher(fn, { name: 1 });
    // @ts-expect-error logger is a function of one event
    createBatcher(fn, { logger: console });
    // @ts-expect-error clock needs setTimeout and clearTimeout
    createBatcher(fn, { clock: { now: () => 0 } });
    // @ts-expect-error unknown option
    createBatcher(fn, { maxBatchSzie: 5 });
    // @ts-expect-error the options are an object
    createBatcher(fn, 5);
    class Echo extends AsyncBatcher<number, number> {
      processBatch(batch: number[]) {
        return batch;
      }
    }
    // @ts-expect-error maxQueueSize is a number
    new Echo({ maxQueueSize: "10" });
    // @ts-expect-error the options are an object
    new Echo("fast");
    // @ts-expect-error the batch function is required
    createBatcher();
    // @ts-expect-error the batch function must be a function
    createBatcher([1, 2]);
  });

  it("refuse wrong stop options", () => {
    const batcher = createBatcher(fn);
    // @ts-expect-error force is a boolean
    void batcher.stop({ force: "yes" });
    // @ts-expect-error timeout is a number
    void batcher.stop({ timeout: "1s" });
  });

  it("DEFAULTS is read-only and numeric", () => {
    expectTypeOf(DEFAULTS).toExtend<
      Readonly<{
        maxBatchSize: number;
        maxQueueTime: number;
        concurrency: number;
        maxQueueSize: number;
      }>
    >();
    // @ts-expect-error frozen
    DEFAULTS.concurrency = 2;
  });
});

describe("flow control", () => {
  it("process() takes per-call options", () => {
    const batcher = createBatcher((batch: number[]) => batch);
    void batcher.process(1, { signal: AbortSignal.timeout(10), timeout: 5, priority: 2 });
    // @ts-expect-error priority is a number
    void batcher.process(1, { priority: "high" });
    // @ts-expect-error no such option
    void batcher.process(1, { retries: 2 });
    expectTypeOf(batcher.waiting).toEqualTypeOf<number>();
  });

  it("setOptions() takes the tunable options only", () => {
    const batcher = createBatcher((batch: number[]) => batch);
    expectTypeOf(batcher.setOptions).parameters.toEqualTypeOf<[options: TunableOptions]>();
    batcher.setOptions({ concurrency: 4, rateLimit: { items: 100, interval: 1000 } });
    batcher.setOptions({ rateLimit: undefined });
    // @ts-expect-error the name is fixed at construction
    batcher.setOptions({ name: "other" });
  });
});

describe("BatchContext", () => {
  it("has a read-only signal and batchId", () => {
    expectTypeOf<BatchContext>().toEqualTypeOf<{
      readonly signal: AbortSignal;
      readonly batchId: number;
      readonly key: string | number | undefined;
    }>();
    createBatcher((batch: number[], context) => {
      // @ts-expect-error read-only
      context.batchId = 2;
      return batch;
    });
  });
});

describe("BatchResult and BatchFunction", () => {
  it("describe what a batch function may return", () => {
    expectTypeOf<number[]>().toExtend<BatchResult<number>>();
    expectTypeOf<(number | Error)[]>().toExtend<BatchResult<number>>();
    expectTypeOf<readonly number[]>().toExtend<BatchResult<number>>();
    expectTypeOf<undefined>().toExtend<BatchResult<number>>();
    expectTypeOf<string[]>().not.toExtend<BatchResult<number>>();
    expectTypeOf<null>().not.toExtend<BatchResult<number>>();
    expectTypeOf<number>().not.toExtend<BatchResult<number>>();
    expectTypeOf<(batch: number[]) => Promise<number[]>>().toExtend<
      BatchFunction<number, number>
    >();
    expectTypeOf<(batch: number[]) => string[]>().not.toExtend<BatchFunction<number, number>>();
  });
});

describe("errors", () => {
  it("have literal codes and names", () => {
    expectTypeOf<BatcherErrorCode>().toEqualTypeOf<
      | "ERR_QUEUE_FULL"
      | "ERR_BATCHER_STOPPED"
      | "ERR_BATCH_RESULT"
      | "ERR_WORKER_CRASHED"
      | "ERR_INVALID_INPUT"
      | "ERR_ITEM_TIMEOUT"
      | "ERR_ITEM_TOO_LARGE"
      | "ERR_MISSING_RESULT"
    >();
    expectTypeOf<ItemTimeoutError["code"]>().toEqualTypeOf<"ERR_ITEM_TIMEOUT">();
    expectTypeOf<ItemTooLargeError["code"]>().toEqualTypeOf<"ERR_ITEM_TOO_LARGE">();
    expectTypeOf<ItemTimeoutError["timeout"]>().toEqualTypeOf<number>();
    expectTypeOf<ItemTooLargeError["weight"]>().toEqualTypeOf<number>();
    expectTypeOf<BatcherError["code"]>().toEqualTypeOf<BatcherErrorCode>();
    expectTypeOf<QueueFullError["code"]>().toEqualTypeOf<"ERR_QUEUE_FULL">();
    expectTypeOf<BatcherStoppedError["code"]>().toEqualTypeOf<"ERR_BATCHER_STOPPED">();
    expectTypeOf<BatchResultError["code"]>().toEqualTypeOf<"ERR_BATCH_RESULT">();
    expectTypeOf<WorkerCrashedError["code"]>().toEqualTypeOf<"ERR_WORKER_CRASHED">();
    expectTypeOf<QueueFullError["name"]>().toEqualTypeOf<"QueueFullError">();
    expectTypeOf<BatcherStoppedError["name"]>().toEqualTypeOf<"BatcherStoppedError">();
    expectTypeOf<BatchResultError["name"]>().toEqualTypeOf<"BatchResultError">();
  });

  it("are BatcherErrors with their own fields", () => {
    expectTypeOf<QueueFullError>().toExtend<BatcherError>();
    expectTypeOf<BatcherStoppedError>().toExtend<BatcherError>();
    expectTypeOf<BatchResultError>().toExtend<BatcherError>();
    expectTypeOf<BatcherError>().toExtend<Error>();
    expectTypeOf<QueueFullError["maxQueueSize"]>().toEqualTypeOf<number>();
    expectTypeOf<BatchResultError["expected"]>().toEqualTypeOf<number>();
    expectTypeOf<BatchResultError["received"]>().toEqualTypeOf<number | string>();
  });

  it("narrow on code", () => {
    const error = new BatcherError("ERR_QUEUE_FULL", "full") as
      | QueueFullError
      | BatcherStoppedError
      | BatchResultError;
    if (error.code === "ERR_BATCH_RESULT") {
      expectTypeOf(error).toEqualTypeOf<BatchResultError>();
    }
    // @ts-expect-error not a code
    new BatcherError("ERR_SOMETHING", "message");
  });
});

describe("log events", () => {
  it("are a union narrowed by type", () => {
    expectTypeOf<BatcherLogEvent["type"]>().toEqualTypeOf<
      "batchCut" | "batchDone" | "retry" | "listenerError" | "stop"
    >();
    expectTypeOf<CutReason>().toEqualTypeOf<
      "size" | "time" | "flush" | "weight" | "stop" | "retry"
    >();
    expectTypeOf<BatcherLogger>().toEqualTypeOf<(event: BatcherLogEvent) => void>();
    const logger: BatcherLogger = (event) => {
      if (event.type === "batchCut") {
        expectTypeOf(event.reason).toEqualTypeOf<CutReason>();
        expectTypeOf(event.waitMs).toEqualTypeOf<number>();
      } else if (event.type === "batchDone") {
        expectTypeOf(event.outcome).toEqualTypeOf<"ok" | "error">();
        expectTypeOf(event.durationMs).toEqualTypeOf<number>();
        expectTypeOf(event.error).toEqualTypeOf<unknown>();
      } else if (event.type === "retry") {
        expectTypeOf(event.scope).toEqualTypeOf<"batch" | "item">();
        expectTypeOf(event.delayMs).toEqualTypeOf<number>();
      } else if (event.type === "listenerError") {
        expectTypeOf(event.error).toEqualTypeOf<unknown>();
      } else {
        expectTypeOf(event.type).toEqualTypeOf<"stop">();
        expectTypeOf(event.force).toEqualTypeOf<boolean>();
      }
    };
    createBatcher((batch: number[]) => batch, { logger });
  });
});
