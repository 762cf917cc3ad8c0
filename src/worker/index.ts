// The worker subpath is for Node.js: its declarations use Node's types (the core's use none).
/// <reference types="node" />
/**
 * `async-batcher/worker`: run batches in a pool of worker threads (piscina), so that synchronous
 * and CPU-bound batch functions leave the event loop free. Node.js only; needs `piscina`.
 */
export {
  createWorkerBatcher,
  type WorkerBatcher,
  type WorkerBatcherOptions,
} from "./create-worker-batcher.js";
export { WorkerPoolExecutor } from "./executor.js";
export type { WorkerPoolOptions } from "./options.js";
export { type Transferable, type TransferResults, withTransfer } from "./protocol.js";
export type {
  WorkerBatchFunction,
  WorkerBatchInfo,
  WorkerBatchResult,
  WorkerItem,
  WorkerModule,
  WorkerResult,
} from "./types.js";
