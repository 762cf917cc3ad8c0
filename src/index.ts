export { AsyncBatcher } from "./batcher.js";
export { createBatcher } from "./create-batcher.js";
export {
  BatcherError,
  type BatcherErrorCode,
  BatcherStoppedError,
  BatchResultError,
  InvalidInputError,
  type InvalidInputReason,
  QueueFullError,
  WorkerCrashedError,
} from "./errors.js";
export {
  type BatcherLogEvent,
  type BatcherLogger,
  type BatcherOptions,
  type Clock,
  type CutReason,
  DEFAULTS,
} from "./options.js";
export type {
  BatchContext,
  BatchFunction,
  BatchResult,
  Executor,
  ExecutorCloseOptions,
  StopOptions,
} from "./types.js";
