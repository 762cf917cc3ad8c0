/**
 * Shared by the ONNX tests: the generated small model (written to .cache/models/ on first use),
 * its weights for the TypeScript forward pass, and example inputs.
 */
import {
  ensureModel,
  exampleInputs,
  forward,
  mlpWeights,
  SMALL_MLP,
} from "../../examples/model-serving/model.js";

export const spec = SMALL_MLP;
export const modelPath = ensureModel(spec);
const layers = mlpWeights(spec);

/** What the model must answer for `input`, by the TypeScript forward pass. */
export const expected = (input: ArrayLike<number>): Float32Array => forward(layers, input);

/** `count` distinct, deterministic examples. */
export const examples = (count: number, seed = 1): Float32Array[] =>
  exampleInputs(spec, count, seed);

export { closeTo } from "../../examples/model-serving/model.js";
