export { AsyncBatcher } from "./batcher.js";
export { createBatcher } from "./create-batcher.js";
export {
  BatcherError,
  type BatcherErrorCode,
  BatcherStoppedError,
  BatchResultError,
  InvalidInputError,
  type InvalidInputReason,
  ItemTimeoutError,
  ItemTooLargeError,
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
  type QueueFullPolicy,
  type RateLimit,
  type TunableOptions,
} from "./options.js";
export type {
  BatchContext,
  BatchFunction,
  BatchResult,
  Executor,
  ExecutorCloseOptions,
  ProcessOptions,
  StopOptions,
} from "./types.js";
