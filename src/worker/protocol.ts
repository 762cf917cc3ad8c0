/**
 * What the main thread and the entry script (`entry.ts`, run by piscina in each worker thread)
 * send each other. Internal: users see `withTransfer` and the types in `types.ts`.
 */
import type { TransferListItem } from "node:worker_threads";
import type { SerializedError, SerializedThrown } from "./serialize.js";

/**
 * Marks the value `withTransfer` returns. A registered symbol, not a class: the user's worker
 * module may load the ESM build of `async-batcher/worker` while piscina runs the CJS entry, or
 * the other way round, and both must recognise it.
 */
export const kTransfer: unique symbol = Symbol.for("async-batcher.worker.transfer");

/**
 * What can be listed for moving: what `postMessage` transfers (`ArrayBuffer`, `MessagePort`, ...)
 * and, so that `views.map((view) => view.buffer)` type-checks, `SharedArrayBuffer`, which is
 * shared anyway and left out of the list.
 */
export type Transferable = TransferListItem | ArrayBufferLike;

/** A worker function's results with the buffers to move (not copy) back to the main thread. */
export interface TransferResults<R> {
  readonly [kTransfer]: {
    readonly results: ReadonlyArray<R | Error>;
    readonly transferList: readonly Transferable[];
  };
}

/**
 * The list `postMessage` accepts: without `SharedArrayBuffer`s (shared, not moved) and without
 * duplicates (two views of one buffer name it twice; `postMessage` refuses that).
 */
export function transferListOf(list: readonly Transferable[]): TransferListItem[] {
  const unique = new Set<TransferListItem>();
  for (const item of list) {
    if (typeof SharedArrayBuffer === "function" && item instanceof SharedArrayBuffer) continue;
    unique.add(item as TransferListItem);
  }
  return [...unique];
}

/** One batch, as posted to a worker thread. */
export interface WorkerTask<T> {
  /** `file:` URL of the user's module. */
  readonly module: string;
  /** Which export of it is the worker function. */
  readonly exportName: string;
  readonly batch: T[];
  readonly batchId: number;
  readonly key: string | number | undefined;
}

/**
 * The entry script's answer. It never throws: whatever the user's module throws becomes
 * `{ ok: false }`, so a rejection of `pool.run()` means the task got no answer at all (the
 * thread died, or the task was aborted).
 */
export type WorkerReply =
  | {
      readonly ok: true;
      /** What the worker function returned, with `undefined` where `errors` has an entry. */
      readonly results: unknown;
      /** The per-item `Error` results, by position; absent when there are none. */
      readonly errors?: readonly (readonly [index: number, error: SerializedError])[];
    }
  | { readonly ok: false; readonly error: SerializedThrown };

/**
 * Returns a worker function's results together with the buffers to move back to the main thread
 * instead of copying them (the worker can no longer use them afterwards).
 *
 * ```ts
 * export default function embed(texts: string[]) {
 *   const vectors = texts.map(embedOne); // Float32Array[]
 *   return withTransfer(vectors, vectors.map((v) => v.buffer));
 * }
 * ```
 *
 * Move only buffers the results own: a `Buffer` from `Buffer.from()` or `Buffer.allocUnsafe()`
 * may be a view into a shared 8 KB slab, which cannot be moved.
 */
export function withTransfer<R>(
  results: ReadonlyArray<R | Error>,
  transferList: readonly Transferable[],
): TransferResults<R> {
  if (!Array.isArray(results)) {
    throw new TypeError(`withTransfer: results must be an array, got ${typeof results}`);
  }
  if (!Array.isArray(transferList)) {
    throw new TypeError(`withTransfer: transferList must be an array, got ${typeof transferList}`);
  }
  return { [kTransfer]: { results, transferList } };
}

export function isTransferResults(value: unknown): value is TransferResults<unknown> {
  return typeof value === "object" && value !== null && kTransfer in value;
}
