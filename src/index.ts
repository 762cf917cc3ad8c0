export { AsyncBatcher, type BatchScope, batchScope, captureContext } from "./batcher.js";
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
  MissingResultError,
  QueueFullError,
  WorkerCrashedError,
} from "./errors.js";
export type {
  BatchEndEvent,
  BatcherEventName,
  BatcherEvents,
  BatcherStats,
  BatchStartEvent,
  BatchStartReason,
  DropEvent,
  DropReason,
  HistogramSnapshot,
  IdleEvent,
  RejectReason,
  RetryEvent,
  SplitEvent,
} from "./events.js";
export {
  type BatcherLogEvent,
  type BatcherLogger,
  type BatcherOptions,
  type Clock,
  type CutReason,
  DEFAULTS,
  type MissingResultPolicy,
  type QueueFullPolicy,
  type RateLimit,
  type RetryOptions,
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
