// The ONNX subpath is for Node.js: its declarations use Node's types (the core's use none).
/// <reference types="node" />
/**
 * `async-batcher/onnx`: batched ONNX inference with `onnxruntime-node` (an optional peer
 * dependency), in worker threads. Node.js only; needs `onnxruntime-node` and `piscina`.
 */
export { InvalidInputError, type InvalidInputReason } from "../../errors.js";
export {
  OnnxBatcher,
  type OnnxBatcherOptions,
  type OnnxInput,
  type OnnxModel,
} from "./batcher.js";
export type { OnnxSignature, OnnxValueInfo } from "./signature.js";
