/**
 * The model of the serving example, made from code: a multilayer perceptron (ReLU between hidden
 * layers, softmax at the end, a free batch dimension) with seeded weights, so that every machine
 * writes the same ONNX file byte for byte and nothing is downloaded. Also a plain TypeScript
 * forward pass, to check what onnxruntime answers.
 *
 * The files go to `.cache/models/` (git-ignored) and are written on demand: `ensureModel(spec)`.
 * `npm run model:generate` writes the serving model ahead of time.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

/** The shape of a multilayer perceptron and the seed of its weights. */
export interface MlpSpec {
  readonly inputs: number;
  /** Sizes of the hidden layers, each followed by a ReLU. */
  readonly hidden: readonly number[];
  /** Classes: the last layer is followed by a softmax. */
  readonly outputs: number;
  readonly seed: number;
}

/** The model: about 18 M weights (70 MB), about 1.7 ms for one example on one thread. */
export const SERVING_MLP: MlpSpec = { inputs: 256, hidden: [4096, 4096], outputs: 16, seed: 42 };

/** The tests' model: the same structure, tiny, a few kB. */
export const SMALL_MLP: MlpSpec = { inputs: 16, hidden: [32, 24], outputs: 5, seed: 7 };

/** The model's input and output names. */
export const INPUT_NAME = "features";
export const OUTPUT_NAME = "probabilities";

/** `.cache/models/` at the repository's root. */
export const MODELS_DIR = fileURLToPath(new URL("../../.cache/models/", import.meta.url));

/** One dense layer: `weights` is `[inputs, outputs]` row-major, so `y = x · W + b`. */
export interface MlpLayer {
  readonly inputs: number;
  readonly outputs: number;
  readonly weights: Float32Array;
  readonly bias: Float32Array;
}

/** mulberry32: a small, fast 32-bit PRNG; uniform in [0, 1). */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal numbers (Box-Muller) from a uniform source. */
function gaussian(uniform: () => number): () => number {
  return () => {
    const u = 1 - uniform(); // (0, 1]: log(0) is avoided
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

function checkSpec(spec: MlpSpec): void {
  const sizes = [spec.inputs, ...spec.hidden, spec.outputs];
  if (!sizes.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(`layer sizes must be positive integers, got ${sizes.join(", ")}`);
  }
}

/**
 * The layers' weights: He initialisation (normal, standard deviation `sqrt(2 / fanIn)`) for the
 * layers followed by a ReLU, so activations keep their scale through 4096-wide layers; Xavier
 * (`sqrt(1 / fanIn)`) for the last one; small uniform biases.
 */
export function mlpWeights(spec: MlpSpec): MlpLayer[] {
  checkSpec(spec);
  const uniform = prng(spec.seed);
  const normal = gaussian(uniform);
  const sizes = [spec.inputs, ...spec.hidden, spec.outputs];
  const layers: MlpLayer[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const inputs = sizes[l] as number;
    const outputs = sizes[l + 1] as number;
    const last = l + 2 === sizes.length;
    const std = Math.sqrt((last ? 1 : 2) / inputs);
    const weights = new Float32Array(inputs * outputs);
    for (let i = 0; i < weights.length; i++) weights[i] = normal() * std;
    const bias = new Float32Array(outputs);
    for (let i = 0; i < outputs; i++) bias[i] = (uniform() - 0.5) * 0.1;
    layers.push({ inputs, outputs, weights, bias });
  }
  return layers;
}

const littleEndian = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/** ONNX raw tensor data is little-endian float32, whatever the machine. */
function rawFloat32(values: Float32Array): Uint8Array {
  if (littleEndian) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return bytes;
}

/**
 * The model as ONNX bytes: `features [N, inputs]` → (MatMul, Add, Relu) per hidden layer →
 * MatMul, Add, Softmax → `probabilities [N, outputs]`. Opset 17, IR version 8.
 */
export function encodeMlp(spec: MlpSpec, layers: MlpLayer[] = mlpWeights(spec)): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const tensorType = (width: number) => ({
    tensorType: {
      elemType: FLOAT,
      shape: { dim: [{ dimParam: "N" }, { dimValue: width }] },
    },
  });
  const initializer: InstanceType<typeof onnx.TensorProto>[] = [];
  const node: InstanceType<typeof onnx.NodeProto>[] = [];
  let x = INPUT_NAME;
  layers.forEach((layer, l) => {
    const last = l + 1 === layers.length;
    initializer.push(
      onnx.TensorProto.create({
        name: `w${l}`,
        dataType: FLOAT,
        dims: [layer.inputs, layer.outputs],
        rawData: rawFloat32(layer.weights),
      }),
      onnx.TensorProto.create({
        name: `b${l}`,
        dataType: FLOAT,
        dims: [layer.outputs],
        rawData: rawFloat32(layer.bias),
      }),
    );
    const product = `matmul${l}`;
    const sum = last ? "logits" : `dense${l}`;
    node.push(
      onnx.NodeProto.create({ opType: "MatMul", input: [x, `w${l}`], output: [product] }),
      onnx.NodeProto.create({ opType: "Add", input: [product, `b${l}`], output: [sum] }),
    );
    if (last) {
      node.push(
        onnx.NodeProto.create({
          opType: "Softmax",
          input: [sum],
          output: [OUTPUT_NAME],
          attribute: [
            onnx.AttributeProto.create({
              name: "axis",
              type: onnx.AttributeProto.AttributeType.INT,
              i: -1,
            }),
          ],
        }),
      );
    } else {
      x = `relu${l}`;
      node.push(onnx.NodeProto.create({ opType: "Relu", input: [sum], output: [x] }));
    }
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "async-batcher examples/model-serving",
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "mlp",
      node,
      initializer,
      input: [{ name: INPUT_NAME, type: tensorType(spec.inputs) }],
      output: [{ name: OUTPUT_NAME, type: tensorType(spec.outputs) }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The file name of a spec's model: every size and the seed, so that specs never collide. */
export function modelFileName(spec: MlpSpec): string {
  return `mlp-${spec.inputs}-${spec.hidden.join("x")}-${spec.outputs}-seed${spec.seed}.onnx`;
}

/**
 * The path of the spec's model file, written first if it is missing. The write goes to a
 * temporary file renamed into place, so that processes generating the same model at once (test
 * files in parallel) never read half a file.
 */
export function ensureModel(spec: MlpSpec, dir: string = MODELS_DIR): string {
  const path = join(dir, modelFileName(spec));
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(temporary, encodeMlp(spec));
  renameSync(temporary, path);
  return path;
}

/**
 * The forward pass in plain TypeScript: float32 weights, float64 sums rounded to float32 after
 * each layer (onnxruntime sums in float32, in its own order: compare with a tolerance).
 */
export function forward(layers: readonly MlpLayer[], input: ArrayLike<number>): Float32Array {
  let x: ArrayLike<number> = input;
  for (let l = 0; l < layers.length; l++) {
    const { inputs, outputs, weights, bias } = layers[l] as MlpLayer;
    if (x.length !== inputs) {
      throw new RangeError(`layer ${l} expects ${inputs} values, got ${x.length}`);
    }
    const sums = Float64Array.from(bias);
    for (let i = 0; i < inputs; i++) {
      const xi = x[i] as number;
      if (xi === 0) continue; // ReLU zeros: about half of every hidden layer
      const row = i * outputs;
      for (let j = 0; j < outputs; j++)
        sums[j] = (sums[j] as number) + xi * (weights[row + j] as number);
    }
    const y = new Float32Array(outputs);
    if (l + 1 < layers.length) {
      for (let j = 0; j < outputs; j++) y[j] = Math.max(0, sums[j] as number);
    } else {
      const max = Math.max(...sums);
      let total = 0;
      for (let j = 0; j < outputs; j++) {
        sums[j] = Math.exp((sums[j] as number) - max);
        total += sums[j] as number;
      }
      for (let j = 0; j < outputs; j++) y[j] = (sums[j] as number) / total;
    }
    x = y;
  }
  return x as Float32Array;
}

/** Deterministic example inputs in [-1, 1): `count` rows of `spec.inputs` values. */
export function exampleInputs(spec: MlpSpec, count: number, seed = 1): Float32Array[] {
  const uniform = prng(seed);
  return Array.from({ length: count }, () => {
    const row = new Float32Array(spec.inputs);
    for (let i = 0; i < row.length; i++) row[i] = uniform() * 2 - 1;
    return row;
  });
}

/** True when every value of `actual` is within `tolerance` of `expected`'s. */
export function closeTo(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance = 1e-4,
): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs((actual[i] as number) - (expected[i] as number)) <= tolerance)) return false;
  }
  return true;
}
