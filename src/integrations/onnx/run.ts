/**
 * One batch through a session: the examples stacked into one `[n, ...example]` float32 tensor,
 * one `session.run()`, the output split back into one row per example. Used in the worker
 * threads (`worker.ts`) and, for a session loaded by the user, on the main thread.
 */
import { Tensor } from "onnxruntime-node";

/** What a batch needs to know of the model, beside the session. */
export interface OnnxRunConfig {
  /** The input fed with the stacked batch. */
  readonly input: string;
  /** The output split into rows. */
  readonly output: string;
  /** The dimensions of one example, after the batch dimension (`[256]`, `[3, 32, 32]`). */
  readonly exampleShape: readonly number[];
}

/** The part of an `InferenceSession` a batch uses. */
export interface RunnableSession {
  run(
    feeds: Record<string, Tensor>,
    fetches: readonly string[],
  ): Promise<
    Record<
      string,
      { readonly type: string; readonly dims: readonly number[]; readonly data: unknown }
    >
  >;
}

/** Values in one example: the product of `exampleShape`. */
export function exampleSize(shape: readonly number[]): number {
  return shape.reduce((product, d) => product * d, 1);
}

/**
 * Runs the batch once and returns one output row per example, in order, each a `Float32Array`
 * with its own buffer (so that it can be moved across threads and owns no other caller's data).
 */
export async function runStacked(
  session: RunnableSession,
  config: OnnxRunConfig,
  batch: readonly Float32Array[],
): Promise<Float32Array[]> {
  const n = batch.length;
  const size = exampleSize(config.exampleShape);
  const stacked = new Float32Array(n * size);
  for (let i = 0; i < n; i++) stacked.set(batch[i] as Float32Array, i * size);
  const feeds = { [config.input]: new Tensor("float32", stacked, [n, ...config.exampleShape]) };
  const results = await session.run(feeds, [config.output]);
  const output = results[config.output];
  if (output === undefined) {
    throw new TypeError(`the model returned no output named ${JSON.stringify(config.output)}`);
  }
  if (output.type !== "float32" || !(output.data instanceof Float32Array)) {
    throw new TypeError(
      `output ${JSON.stringify(config.output)} is a ${output.type} tensor: OnnxBatcher splits float32 outputs only`,
    );
  }
  const data = output.data;
  if (output.dims[0] !== n || data.length % n !== 0) {
    throw new RangeError(
      `output ${JSON.stringify(config.output)} has shape [${output.dims.join(", ")}] for a batch of ${n}: its first dimension must be the batch's`,
    );
  }
  const width = data.length / n;
  const rows: Float32Array[] = [];
  for (let i = 0; i < n; i++) rows.push(data.slice(i * width, (i + 1) * width));
  return rows;
}
