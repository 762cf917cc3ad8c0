/**
 * Types of worker modules, and of the items and results a batcher gets from one.
 */
import type { BatchResult } from "../types.js";
import type { TransferResults } from "./protocol.js";

/** What a worker function returns: one result per item (an `Error` rejects that item alone). */
export type WorkerBatchResult<R> = BatchResult<R> | TransferResults<R>;

/** What a worker function is told about its batch (`BatchContext` without the signal). */
export interface WorkerBatchInfo {
  /** The batch's number in its batcher, from 1. */
  readonly batchId: number;
  /** The key every item of the batch shares, with the batcher's `batchKey`; else `undefined`. */
  readonly key: string | number | undefined;
}

/**
 * The function a worker module exports: it gets a whole batch (and what `WorkerBatchInfo` says
 * about it) and returns one result per item, in order, synchronously or not. It runs in a worker
 * thread: items and results are cloned across (or moved, see `transfer` and `withTransfer`),
 * and it cannot see the main thread's variables.
 */
export type WorkerBatchFunction<T, R> = (
  batch: T[],
  info: WorkerBatchInfo,
) => WorkerBatchResult<R> | PromiseLike<WorkerBatchResult<R>>;

/** Any worker function, whatever its item and result types. */
type AnyWorkerFunction = (batch: never[], info: WorkerBatchInfo) => unknown;

/**
 * What the batcher's types can be read from: a worker module whose default export is the worker
 * function (`typeof import("./model.js")`), or the worker function's own type
 * (`typeof import("./model.js").embed` for a named export).
 */
export type WorkerModule = AnyWorkerFunction | { readonly default: AnyWorkerFunction };

type FunctionOf<M> = M extends AnyWorkerFunction
  ? M
  : M extends { readonly default: infer F }
    ? F
    : never;

type ResultOf<X> =
  X extends TransferResults<infer R>
    ? R
    : X extends ReadonlyArray<infer E>
      ? Exclude<E, Error>
      : // biome-ignore lint/suspicious/noConfusingVoidType: a function returning nothing gives `void`, as in createBatcher
        void;

/** The item type of a worker module or function: `WorkerItem<typeof import("./model.js")>`. */
export type WorkerItem<M extends WorkerModule> =
  FunctionOf<M> extends (batch: infer B, info: WorkerBatchInfo) => unknown
    ? B extends ReadonlyArray<infer T>
      ? T
      : unknown
    : never;

/**
 * The result type of a worker module or function: what its function returns per item, without
 * the `Error`s (they reject) and through `Promise` and `withTransfer`.
 */
export type WorkerResult<M extends WorkerModule> =
  FunctionOf<M> extends (...args: never[]) => infer X ? ResultOf<Awaited<X>> : never;
