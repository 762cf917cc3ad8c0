import type { CutReason } from "../options.js";
import type { BatchContext } from "../types.js";
import type { Settle } from "./queue.js";

/** A pending `flush()`: done when no item older than `until` waits and its batches have settled. */
export interface FlushWaiter {
  /** Items with a sequence number below this were queued when `flush()` was called. */
  readonly until: number;
  /** Batches holding such items that have not settled yet. */
  pending: number;
  readonly resolve: () => void;
}

/** One batch, from the moment it is cut to the moment its callers are settled. */
export class Batch<T> {
  readonly id: number;
  readonly reason: CutReason;
  /** Handed to the batch function; not read again by the batcher. */
  readonly items: T[];
  /** Emptied once the callers are settled, so nothing keeps them alive. */
  settles: readonly Settle[];
  readonly size: number;
  /** Set once the callers are settled (normally, or by a force stop): later results are dropped. */
  done = false;
  /** `clock.now()` when the batch function was called; read only when a logger is set. */
  startedAt = 0;
  waiters: FlushWaiter[] | undefined = undefined;
  readonly context: BatchContext;
  #controller: AbortController | undefined = undefined;
  #abortReason: unknown = undefined;
  #aborted = false;

  constructor(id: number, reason: CutReason, items: T[], settles: Settle[]) {
    this.id = id;
    this.reason = reason;
    this.items = items;
    this.settles = settles;
    this.size = settles.length;
    this.context = new Context(this);
  }

  /** Created on first use: most batch functions never look at their signal. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}

/** The batch as its function sees it: no way to reach the callers. */
class Context implements BatchContext {
  readonly #batch: Batch<unknown>;

  constructor(batch: Batch<unknown>) {
    this.#batch = batch;
  }

  get signal(): AbortSignal {
    return this.#batch.signal;
  }

  get batchId(): number {
    return this.#batch.id;
  }
}
