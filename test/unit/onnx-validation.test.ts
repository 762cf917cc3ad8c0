/**
 * What `OnnxBatcher` refuses. A bad example (wrong type, wrong length, a non-finite value)
 * rejects its caller alone with `InvalidInputError`, before any batch runs: the other examples
 * of the same tick are batched and answered. Bad options and unusable models throw at
 * construction, before any thread starts. The model's signature is read without a session.
 */

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { BatcherError, type BatcherLogEvent } from "async-batcher";
import { InvalidInputError, OnnxBatcher, type OnnxInput } from "async-batcher/onnx";
import { InferenceSession } from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMlp } from "../../examples/model-serving/model.js";
import { signatureOfBytes, signatureOfSession } from "../../src/integrations/onnx/signature.js";
import { closeTo, examples, expected, modelPath, spec } from "../helpers/onnx.js";
import { execArgv, liveThreads } from "../helpers/workers.js";

let session: InferenceSession;
beforeAll(async () => {
  session = await InferenceSession.create(modelPath);
});
afterAll(async () => {
  await session.release();
});

const n = spec.inputs;
const good = () => Array.from(examples(1, 11)[0] as Float32Array);
const withValue = (value: unknown) => {
  const values: unknown[] = good();
  values[3] = value;
  return values as unknown as OnnxInput;
};

const BAD: { what: string; item: unknown; reason: string; index?: number }[] = [
  { what: "a short array", item: [1, 2, 3], reason: "length" },
  { what: "a long Float32Array", item: new Float32Array(n + 1), reason: "length" },
  { what: "an empty array", item: [], reason: "length" },
  { what: "NaN", item: withValue(Number.NaN), reason: "value", index: 3 },
  { what: "Infinity", item: withValue(Number.POSITIVE_INFINITY), reason: "value", index: 3 },
  { what: "a number beyond float32 (1e39)", item: withValue(1e39), reason: "value", index: 3 },
  { what: "a string among the numbers", item: withValue("0.5"), reason: "type", index: 3 },
  { what: "null among the numbers", item: withValue(null), reason: "type", index: 3 },
  { what: "a Float64Array", item: new Float64Array(n), reason: "type" },
  { what: "a string", item: "1,2,3", reason: "type" },
  { what: "an object", item: { features: good() }, reason: "type" },
  { what: "undefined", item: undefined, reason: "type" },
];

describe.each([
  { where: "inline", options: () => ({ model: session }) },
  { where: "in worker threads", options: () => ({ model: modelPath, execArgv }) },
])("per-caller validation ($where)", ({ options }) => {
  it("rejects each bad example alone; the good ones of the same tick form one batch", async () => {
    const sizes: number[] = [];
    const batcher = new OnnxBatcher({
      ...options(),
      maxQueueTime: 0,
      logger: (event: BatcherLogEvent) => {
        if (event.type === "batchCut") sizes.push(event.size);
      },
    });
    try {
      const inputs = examples(3, 21);
      const settled = await Promise.allSettled([
        batcher.process(inputs[0] as Float32Array),
        ...BAD.map(({ item }) => batcher.process(item as OnnxInput)),
        batcher.process(inputs[1] as Float32Array),
        batcher.process(Array.from(inputs[2] as Float32Array)),
      ]);
      const [first, ...rest] = settled;
      const last = rest.splice(BAD.length);
      for (const [i, result] of [first, ...last].entries()) {
        expect(result?.status).toBe("fulfilled");
        const row = (result as PromiseFulfilledResult<Float32Array>).value;
        expect(closeTo(row, expected(inputs[i] as Float32Array), 1e-5)).toBe(true);
      }
      rest.forEach((result, i) => {
        const bad = BAD[i] as (typeof BAD)[number];
        expect(result.status, bad.what).toBe("rejected");
        const error = (result as PromiseRejectedResult).reason;
        expect(error, bad.what).toBeInstanceOf(InvalidInputError);
        expect(error).toBeInstanceOf(BatcherError);
        expect(error.code).toBe("ERR_INVALID_INPUT");
        expect(error.reason, bad.what).toBe(bad.reason);
        expect(error.index, bad.what).toBe(bad.index);
      });
      // Only the three good examples reached a batch.
      expect(sizes).toEqual([3]);
    } finally {
      await batcher.stop();
    }
  });
});

describe("allowNonFinite", () => {
  it("lets NaN through to the model", async () => {
    const batcher = new OnnxBatcher({ model: session, allowNonFinite: true, maxQueueTime: 0 });
    try {
      const row = await batcher.process(withValue(Number.NaN));
      expect(row.length).toBe(spec.outputs);
      expect(Number.isNaN(row[0])).toBe(true);
    } finally {
      await batcher.stop();
    }
  });
});

describe("construction", () => {
  const bytes = () => new Uint8Array(readFileSync(modelPath));

  it.each([
    { what: "no options", options: undefined, error: TypeError },
    { what: "no model", options: {}, error: TypeError },
    { what: "a model of the wrong kind", options: { model: 42 }, error: TypeError },
    {
      what: "an http URL",
      options: { model: new URL("http://example.com/m.onnx") },
      error: TypeError,
    },
    { what: "a missing file", options: { model: "/nonexistent/model.onnx" }, error: TypeError },
    {
      what: "bytes that are not ONNX",
      options: { model: new Uint8Array([1, 2, 3, 4]) },
      error: TypeError,
    },
    { what: "an unknown input", options: { model: bytes(), input: "pixels" }, error: TypeError },
    { what: "an unknown output", options: { model: bytes(), output: "logits" }, error: TypeError },
    { what: "threads 0", options: { model: bytes(), threads: 0 }, error: RangeError },
    { what: "threads 1.5", options: { model: bytes(), threads: 1.5 }, error: RangeError },
    {
      what: "intraOpNumThreads '2'",
      options: { model: bytes(), intraOpNumThreads: "2" },
      error: TypeError,
    },
    {
      what: "allowNonFinite 'yes'",
      options: { model: bytes(), allowNonFinite: "yes" },
      error: TypeError,
    },
    { what: "maxBatchSize 0", options: { model: bytes(), maxBatchSize: 0 }, error: RangeError },
    {
      what: "an executor",
      options: { model: bytes(), executor: { run: () => [] } },
      error: TypeError,
    },
  ])("throws on $what, and starts no thread", async ({ options, error }) => {
    expect(() => new OnnxBatcher(options as never)).toThrow(error);
    expect(await liveThreads(0)).toBe(0);
  });
});

describe("the model's signature", () => {
  it("is read from the bytes as onnxruntime reads it from the session", () => {
    const fromBytes = signatureOfBytes(readFileSync(modelPath));
    expect(fromBytes).toEqual({
      inputs: [{ name: "features", type: "float32", shape: ["N", n] }],
      outputs: [{ name: "probabilities", type: "float32", shape: ["N", spec.outputs] }],
    });
    expect(signatureOfSession(session)).toEqual(fromBytes);
  });

  it("fails with a TypeError on bytes that are not a model", () => {
    expect(() => signatureOfBytes(new Uint8Array([0x3a, 0xff, 0xff]))).toThrow(TypeError);
    expect(() => signatureOfBytes(new Uint8Array(0))).toThrow(TypeError);
  });
});

describe("the generated model", () => {
  it("is the same, byte for byte, on every machine", () => {
    const hash = createHash("sha256").update(encodeMlp(spec)).digest("hex");
    expect(hash).toBe("2a8754c99aaae5f71171e4c41ed932d863c8bad3d62a26147c0de9ad9157520f");
  });
});
