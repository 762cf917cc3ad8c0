/**
 * Type tests of `async-batcher/worker`: a batcher typed from its worker module (default export,
 * named export, per-item errors, `withTransfer`, nothing returned), or with `T` and `R` named;
 * the options typed by the items; the executor fitting the core's `executor` option; and what
 * the compiler must refuse.
 */
import {
  type AsyncBatcher,
  type BatcherOptions,
  createBatcher,
  type Executor,
} from "async-batcher";
import {
  createWorkerBatcher,
  type TransferResults,
  type WorkerBatcher,
  type WorkerBatcherOptions,
  type WorkerBatchFunction,
  type WorkerBatchInfo,
  type WorkerItem,
  type WorkerModule,
  WorkerPoolExecutor,
  type WorkerPoolOptions,
  type WorkerResult,
  withTransfer,
} from "async-batcher/worker";
import { describe, expectTypeOf, it } from "vitest";

type Double = typeof import("../fixtures/workers/double.js");
type ItemErrors = typeof import("../fixtures/workers/item-errors.js");
type Transfer = typeof import("../fixtures/workers/transfer.js");
type Shapes = typeof import("../fixtures/workers/shapes.js");

const url = new URL("file:///model.js");

describe("createWorkerBatcher types the batcher from the worker module", () => {
  it("from the default export", () => {
    const batcher = createWorkerBatcher<Double>(url);
    expectTypeOf(batcher).toEqualTypeOf<WorkerBatcher<number, number>>();
    expectTypeOf(batcher.process).parameter(0).toEqualTypeOf<number>();
    expectTypeOf(batcher.process(1)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(batcher).toExtend<AsyncBatcher<number, number>>();
    expectTypeOf(batcher.executor).toEqualTypeOf<WorkerPoolExecutor<number, number>>();
  });

  it("from a named export's type, async, with a readonly parameter", () => {
    const batcher = createWorkerBatcher<Double["square"]>(url, { exportName: "square" });
    expectTypeOf(batcher).toEqualTypeOf<WorkerBatcher<number, number>>();
  });

  it("without the Error entries, which reject", () => {
    expectTypeOf(createWorkerBatcher<ItemErrors>(url)).toEqualTypeOf<
      WorkerBatcher<number, string>
    >();
  });

  it("through withTransfer", () => {
    // The fixture takes any Float64Array and returns ones it made, on an ArrayBuffer.
    expectTypeOf(createWorkerBatcher<Transfer>(url)).toEqualTypeOf<
      WorkerBatcher<Float64Array, Float64Array<ArrayBuffer>>
    >();
  });

  it("as void when the function returns nothing", () => {
    expectTypeOf(createWorkerBatcher<Shapes["nothing"]>(url)).toEqualTypeOf<
      WorkerBatcher<number, void>
    >();
  });

  it("or with T and R named", () => {
    const batcher = createWorkerBatcher<string, number[]>("./tokenize.worker.js");
    expectTypeOf(batcher).toEqualTypeOf<WorkerBatcher<string, number[]>>();
    expectTypeOf(batcher.process("a")).toEqualTypeOf<Promise<number[]>>();
  });

  it("and as unknown when nothing says", () => {
    expectTypeOf(createWorkerBatcher(url)).toEqualTypeOf<WorkerBatcher<unknown, unknown>>();
  });

  it("the helpers read the same types", () => {
    expectTypeOf<WorkerItem<Double>>().toEqualTypeOf<number>();
    expectTypeOf<WorkerResult<Double>>().toEqualTypeOf<number>();
    expectTypeOf<WorkerItem<Transfer>>().toEqualTypeOf<Float64Array>();
    expectTypeOf<WorkerResult<Transfer>>().toEqualTypeOf<Float64Array<ArrayBuffer>>();
    expectTypeOf<WorkerResult<ItemErrors>>().toEqualTypeOf<string>();
    expectTypeOf<
      WorkerItem<(batch: string[]) => Promise<Array<boolean | Error>>>
    >().toEqualTypeOf<string>();
    expectTypeOf<
      WorkerResult<(batch: string[]) => Promise<Array<boolean | Error>>>
    >().toEqualTypeOf<boolean>();
    expectTypeOf<Double>().toExtend<WorkerModule>();
    expectTypeOf<Double["square"]>().toExtend<WorkerModule>();
  });
});

describe("options", () => {
  it("type transfer by the items", () => {
    createWorkerBatcher<Transfer>(url, {
      transfer: (batch) => {
        expectTypeOf(batch).toEqualTypeOf<Float64Array[]>();
        return batch.map((values) => values.buffer);
      },
    });
  });

  it("mix the batcher's and the pool's, with concurrency documented to default to maxThreads", () => {
    expectTypeOf<WorkerBatcherOptions<number, number>>().toHaveProperty("maxBatchSize");
    expectTypeOf<WorkerBatcherOptions<number, number>>().toHaveProperty("maxThreads");
    expectTypeOf<WorkerBatcherOptions<number, number>>().toHaveProperty("resourceLimits");
    expectTypeOf<WorkerPoolOptions<number>>()
      .toHaveProperty("filename")
      .toEqualTypeOf<string | URL>();
  });

  it("refuse what does not fit", () => {
    // @ts-expect-error createWorkerBatcher owns its executor
    createWorkerBatcher<Double>(url, { executor: new WorkerPoolExecutor({ filename: url }) });
    // @ts-expect-error and closes it
    createWorkerBatcher<Double>(url, { closeExecutor: false });
    // @ts-expect-error maxThreads is a number
    createWorkerBatcher<Double>(url, { maxThreads: "2" });
    // @ts-expect-error transfer returns a list of transferables
    createWorkerBatcher<Double>(url, { transfer: () => "buffers" });
    // @ts-expect-error items are numbers, not strings
    createWorkerBatcher<Double>(url, { transfer: (_batch: string[]) => [] });
    // @ts-expect-error the filename is a string or a URL
    createWorkerBatcher<Double>(42);
    // @ts-expect-error the filename is required
    new WorkerPoolExecutor({ maxThreads: 2 });
  });

  it("refuse a module without a worker function", () => {
    // @ts-expect-error its default export is not a function
    createWorkerBatcher<{ default: number }>(url);
    // @ts-expect-error not a function of a batch
    createWorkerBatcher<Shapes["notAFunction"]>(url);
  });

  it("refuse items of the wrong type", () => {
    const batcher = createWorkerBatcher<Double>(url);
    // @ts-expect-error a string is not a number
    void batcher.process("1");
  });
});

describe("WorkerPoolExecutor", () => {
  it("is an Executor for the core's executor option", () => {
    const executor = new WorkerPoolExecutor<number, string>({ filename: url });
    expectTypeOf(executor).toExtend<Executor<number, string>>();
    const batcher = createBatcher<number, string>(() => [], { executor, closeExecutor: true });
    expectTypeOf(batcher).toEqualTypeOf<AsyncBatcher<number, string>>();
    expectTypeOf<{ executor: WorkerPoolExecutor<number, string> }>().toExtend<
      BatcherOptions<number, string>
    >();
    const ofStrings = new WorkerPoolExecutor<string, string>({ filename: url });
    // @ts-expect-error an executor of strings does not fit a batcher of numbers
    createBatcher<number, string>(() => [], { executor: ofStrings });
  });

  it("types transfer by its items", () => {
    new WorkerPoolExecutor<Uint8Array, number>({
      filename: url,
      transfer: (batch) => {
        expectTypeOf(batch).toEqualTypeOf<Uint8Array[]>();
        return batch.map((bytes) => bytes.buffer);
      },
    });
  });
});

describe("worker functions", () => {
  it("may return results, errors among them, promises of them, or withTransfer", () => {
    expectTypeOf((batch: number[]) => batch).toExtend<WorkerBatchFunction<number, number>>();
    expectTypeOf(async (batch: number[]) =>
      batch.map((x) => (x < 0 ? new Error("neg") : x)),
    ).toExtend<WorkerBatchFunction<number, number>>();
    const vectors = [new Float32Array(2)];
    const moved = withTransfer(
      vectors,
      vectors.map((vector) => vector.buffer),
    );
    expectTypeOf(moved).toEqualTypeOf<TransferResults<Float32Array<ArrayBuffer>>>();
    expectTypeOf((_batch: string[]) => moved).toExtend<WorkerBatchFunction<string, Float32Array>>();
  });

  it("may take what they are told about the batch, and are typed from it all the same", () => {
    const keyed = (batch: string[], info: WorkerBatchInfo) => batch.map(() => info.key);
    expectTypeOf(keyed).toExtend<WorkerBatchFunction<string, string | number | undefined>>();
    expectTypeOf<WorkerItem<typeof keyed>>().toEqualTypeOf<string>();
    expectTypeOf<WorkerResult<typeof keyed>>().toEqualTypeOf<string | number | undefined>();
    expectTypeOf<WorkerBatchInfo>().toEqualTypeOf<{
      readonly batchId: number;
      readonly key: string | number | undefined;
    }>();
  });

  it("withTransfer wants an array of results and a list of transferables", () => {
    // @ts-expect-error results are an array
    withTransfer(new Float32Array(2), []);
    // @ts-expect-error strings are not transferable
    withTransfer([1], ["buffer"]);
  });
});
