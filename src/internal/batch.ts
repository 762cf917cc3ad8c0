import type { CutReason } from "../options.js";
import type { BatchContext } from "../types.js";
import type { CohortRun } from "./cohort.js";
import type { Entry } from "./queue.js";

/** Stands in a batch for a caller that already left: what it gets is dropped. */
export const CANCELLED: Entry = () => {};

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
  items: T[];
  /**
   * The callers, by position; a caller that left while the batch ran is replaced by `CANCELLED`.
   * Emptied once they are settled, so nothing keeps them alive.
   */
  entries: Entry[];
  /** Which positions came from which cohort (items with a signal or a timeout), if any. */
  cohorts: CohortRun[] | undefined;
  /** Items in flight in this batch; fewer once `compact()` dropped the callers who left. */
  size: number;
  /** With `batchKey`: the key all its items share. */
  readonly key: string | number | undefined;
  /** With `weigh`: the total weight of its items. */
  readonly weight: number;
  /** Items whose callers left while the batch ran (aborted or timed out). */
  cancelled = 0;
  /** Set once the callers are settled (normally, or by a force stop): later results are dropped. */
  done = false;
  /** `clock.now()` when the batch function was called; read only when a logger is set. */
  startedAt = 0;
  waiters: FlushWaiter[] | undefined = undefined;
  /** Neighbours in the engine's list of running batches (see `RunningList`). */
  prev: Batch<T> | undefined = undefined;
  next: Batch<T> | undefined = undefined;
  readonly context: BatchContext;
  #controller: AbortController | undefined = undefined;
  #abortReason: unknown = undefined;
  #aborted = false;

  constructor(
    id: number,
    reason: CutReason,
    items: T[],
    entries: Entry[],
    cohorts: CohortRun[] | undefined,
    key: string | number | undefined,
    weight: number,
  ) {
    this.id = id;
    this.reason = reason;
    this.items = items;
    this.entries = entries;
    this.cohorts = cohorts;
    this.size = entries.length;
    this.key = key;
    this.weight = weight;
    this.context = new Context(this);
  }

  /**
   * Drops the items whose callers left (`CANCELLED`) before the batch function was called, so it
   * never sees them; returns how many went. Cohort runs are renumbered to match.
   */
  compact(): number {
    const { items, entries } = this;
    const size = entries.length;
    // keptBefore[i]: entries kept among the first i.
    const keptBefore = new Array<number>(size + 1);
    keptBefore[0] = 0;
    const keptItems: T[] = [];
    const keptEntries: Entry[] = [];
    for (let i = 0; i < size; i++) {
      const entry = entries[i] as Entry;
      if (entry !== CANCELLED) {
        keptItems.push(items[i] as T);
        keptEntries.push(entry);
      }
      keptBefore[i + 1] = keptEntries.length;
    }
    const runs = this.cohorts;
    if (runs !== undefined) {
      const kept: CohortRun[] = [];
      for (const run of runs) {
        const start = keptBefore[run.start] as number;
        const count = (keptBefore[run.start + run.count] as number) - start;
        if (count > 0) kept.push({ cohort: run.cohort, start, count, cancelled: 0 });
      }
      this.cohorts = kept.length === 0 ? undefined : kept;
    }
    const dropped = size - keptEntries.length;
    this.items = keptItems;
    this.entries = keptEntries;
    this.size = keptEntries.length;
    this.cancelled = 0;
    return dropped;
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

  get key(): string | number | undefined {
    return this.#batch.key;
  }
}

/**
 * The batches cut and not yet settled, as an intrusive doubly linked list: O(1) add and remove,
 * and nothing keeps a settled batch reachable. (A `Set` here made V8 promote every batch, with
 * its items and callers' promises, to the old generation: a quarter of the hot path's cost.)
 */
export class RunningList<T> {
  size = 0;
  #head: Batch<T> | undefined = undefined;
  #tail: Batch<T> | undefined = undefined;

  add(batch: Batch<T>): void {
    batch.prev = this.#tail;
    batch.next = undefined;
    if (this.#tail === undefined) this.#head = batch;
    else this.#tail.next = batch;
    this.#tail = batch;
    this.size++;
  }

  remove(batch: Batch<T>): void {
    const { prev, next } = batch;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next === undefined) this.#tail = prev;
    else next.prev = prev;
    batch.prev = undefined;
    batch.next = undefined;
    this.size--;
  }

  /** The batches, oldest first; do not change the list while iterating. */
  *values(): IterableIterator<Batch<T>> {
    for (let batch = this.#head; batch !== undefined; batch = batch.next) yield batch;
  }

  /** Empties the list and returns its batches, oldest first. */
  clear(): Batch<T>[] {
    const batches: Batch<T>[] = [];
    for (let batch = this.#head; batch !== undefined; ) {
      const next: Batch<T> | undefined = batch.next;
      batch.prev = undefined;
      batch.next = undefined;
      batches.push(batch);
      batch = next;
    }
    this.#head = undefined;
    this.#tail = undefined;
    this.size = 0;
    return batches;
  }
}
