/**
 * Type tests of `async-batcher/onnx`: examples in, Float32Array rows out; the options typed.
 */
import type { AsyncBatcher } from "async-batcher";
import { type InvalidInputError, OnnxBatcher, type OnnxBatcherOptions } from "async-batcher/onnx";
import type { WorkerPoolExecutor } from "async-batcher/worker";
import type { InferenceSession } from "onnxruntime-node";
import { describe, expectTypeOf, it } from "vitest";

describe("OnnxBatcher", () => {
  it("takes one example and resolves with its output row", () => {
    const batcher = new OnnxBatcher({ model: "model.onnx" });
    expectTypeOf(batcher.process).parameter(0).toEqualTypeOf<Float32Array | readonly number[]>();
    expectTypeOf(batcher.process(new Float32Array(4))).toEqualTypeOf<Promise<Float32Array>>();
    expectTypeOf(batcher.process([1, 2, 3])).toEqualTypeOf<Promise<Float32Array>>();
    expectTypeOf(batcher).toExtend<AsyncBatcher<Float32Array, Float32Array>>();
    expectTypeOf(batcher.executor).toEqualTypeOf<
      WorkerPoolExecutor<Float32Array, Float32Array> | undefined
    >();
    // @ts-expect-error: a string is no example
    batcher.process("1,2,3");
  });

  it("takes a path, a URL, bytes or a session, and every batcher option", () => {
    expectTypeOf<{ model: URL }>().toExtend<OnnxBatcherOptions>();
    expectTypeOf<{ model: Uint8Array; threads: 2 }>().toExtend<OnnxBatcherOptions>();
    expectTypeOf<{ model: InferenceSession; maxQueueTime: 2 }>().toExtend<OnnxBatcherOptions>();
    expectTypeOf<{ threads: 2 }>().not.toExtend<OnnxBatcherOptions>();
    // The batcher runs its batches itself: no executor to pass.
    expectTypeOf<OnnxBatcherOptions>().not.toHaveProperty("executor");
    expectTypeOf<OnnxBatcherOptions>().not.toHaveProperty("closeExecutor");
  });

  it("rejects with a typed error", () => {
    expectTypeOf<InvalidInputError["code"]>().toEqualTypeOf<"ERR_INVALID_INPUT">();
    expectTypeOf<InvalidInputError["reason"]>().toEqualTypeOf<
      "type" | "length" | "value" | "weight" | "key" | "column"
    >();
  });
});
