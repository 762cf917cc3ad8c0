/**
 * `OnnxBatcher` with the generated small model and the real onnxruntime (no fakes): each batch is
 * stacked into one tensor, run once and split back, and every caller gets its own example's row,
 * as the TypeScript forward pass computes it. In worker threads (model as a path, a URL or
 * bytes) and inline (a loaded session).
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import type { BatcherLogEvent } from "async-batcher";
import { OnnxBatcher, type OnnxBatcherOptions } from "async-batcher/onnx";
import { InferenceSession } from "onnxruntime-node";
import { afterEach, describe, expect, it } from "vitest";
import { closeTo, examples, expected, modelPath, spec } from "../helpers/onnx.js";
import { execArgv, liveThreads } from "../helpers/workers.js";

const batchers: OnnxBatcher[] = [];
afterEach(async () => {
  await Promise.all(batchers.splice(0).map((b) => b.stop({ force: true })));
});

/** A batcher that records the size of every batch it ran. */
function make(options: OnnxBatcherOptions): { batcher: OnnxBatcher; sizes: number[] } {
  const sizes: number[] = [];
  const logger = (event: BatcherLogEvent) => {
    if (event.type === "batchDone" && event.outcome === "ok") sizes.push(event.size);
  };
  const batcher = new OnnxBatcher({ execArgv, maxQueueTime: 0, logger, ...options });
  batchers.push(batcher);
  return { batcher, sizes };
}

async function expectRows(batcher: OnnxBatcher, inputs: Float32Array[]): Promise<void> {
  const rows = await Promise.all(inputs.map((x) => batcher.process(x)));
  rows.forEach((row, i) => {
    expect(row).toBeInstanceOf(Float32Array);
    expect(row.length).toBe(spec.outputs);
    // Each row owns its buffer: no other caller's values ride along.
    expect(row.buffer.byteLength).toBe(spec.outputs * 4);
    expect(closeTo(row, expected(inputs[i] as Float32Array), 1e-5)).toBe(true);
  });
}

describe.each([
  { model: "a path", load: () => modelPath },
  { model: "a file: URL", load: () => pathToFileURL(modelPath) },
  { model: "its bytes", load: () => new Uint8Array(readFileSync(modelPath)) },
])("OnnxBatcher with $model (worker threads)", ({ load }) => {
  it("stacks each batch into one run and gives every caller its own row", async () => {
    const { batcher, sizes } = make({ model: load(), maxBatchSize: 8 });
    expect(batcher.executor?.maxThreads).toBe(1);
    await expectRows(batcher, examples(20));
    expect(sizes).toEqual([8, 8, 4]);
  });
});

describe("OnnxBatcher in worker threads", () => {
  it("reads the model's input and output, and the size of an example", () => {
    const { batcher } = make({ model: modelPath });
    expect(batcher.input).toBe("features");
    expect(batcher.output).toBe("probabilities");
    expect(batcher.exampleShape).toEqual([spec.inputs]);
    expect(batcher.exampleSize).toBe(spec.inputs);
  });

  it("runs batches on several threads, each with its session, with the same answers", async () => {
    const { batcher, sizes } = make({ model: modelPath, threads: 2, maxBatchSize: 4 });
    expect(batcher.executor?.maxThreads).toBe(2);
    const inputs = examples(40, 9);
    await expectRows(batcher, inputs);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(40);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
  });

  it("leaves the caller's array usable: the example moved to the thread is a copy", async () => {
    const { batcher } = make({ model: modelPath });
    const [input] = examples(1) as [Float32Array];
    const row = await batcher.process(input);
    expect(input.length).toBe(spec.inputs); // not detached
    expect(closeTo(row, expected(input), 1e-5)).toBe(true);
  });

  it("accepts arrays of numbers as well as Float32Arrays", async () => {
    const { batcher } = make({ model: modelPath });
    const [a, b] = examples(2, 3) as [Float32Array, Float32Array];
    const [rowA, rowB] = await Promise.all([batcher.process(Array.from(a)), batcher.process(b)]);
    expect(closeTo(rowA as Float32Array, expected(a), 1e-5)).toBe(true);
    expect(closeTo(rowB as Float32Array, expected(b), 1e-5)).toBe(true);
  });

  it("stop() drains what is queued, then stops every thread", async () => {
    const { batcher } = make({ model: modelPath, maxBatchSize: 4, maxQueueTime: 1000 });
    const inputs = examples(6, 5);
    const pending = inputs.map((x) => batcher.process(x));
    await batcher.stop();
    const rows = await Promise.all(pending);
    for (const [i, row] of rows.entries()) {
      expect(closeTo(row, expected(inputs[i] as Float32Array), 1e-5)).toBe(true);
    }
    expect(batcher.executor?.threads).toBe(0);
    expect(await liveThreads(0)).toBe(0);
  });
});

describe("OnnxBatcher with a loaded InferenceSession (inline)", () => {
  it("runs on the main thread, stacking and splitting the same way", async () => {
    const session = await InferenceSession.create(modelPath);
    try {
      const { batcher, sizes } = make({ model: session, maxBatchSize: 5 });
      expect(batcher.executor).toBeUndefined();
      expect(batcher.exampleSize).toBe(spec.inputs);
      await expectRows(batcher, examples(12, 4));
      expect(sizes).toEqual([5, 5, 2]);
      await batcher.stop();
    } finally {
      await session.release();
    }
  });

  it("rejects every caller of a batch the session fails to run", async () => {
    const session = await InferenceSession.create(modelPath);
    // The session is the user's: after release() its batches fail, and the callers see it.
    const { batcher } = make({ model: session });
    await session.release();
    await expect(batcher.process(examples(1)[0] as Float32Array)).rejects.toThrow();
  });
});
