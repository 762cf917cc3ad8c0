import type { BatchStartReason } from "../events.js";
import type { BatchContext } from "../types.js";
import type { CohortRun } from "./cohort.js";
import type { Entry, Taken } from "./queue.js";

/** Stands in a batch for a caller that already left: what it gets is dropped. */
export const CANCELLED: Entry = () => {};

/** A pending `flush()`: done when no item older than `until` waits and its batches have settled. */
export interface FlushWaiter {
  /**
   * Items with a sequence number below this were queued when `flush()` was called (raised when
   * such items are retried and rejoin the queue with new numbers).
   */
  until: number;
  /** Batches holding such items that have not settled yet. */
  pending: number;
  readonly resolve: () => void;
}

/** Where a batch is in its life. */
export enum Phase {
  /** Cut from the queue; its function is called at once or on the next microtask. */
  Cut = 0,
  /** Its function was called. */
  Running = 1,
  /** A retry waiting out its backoff: holds no concurrency slot. */
  Backoff = 2,
  /** A retry past its backoff, or a split half: waits for a free slot (and the rate limit). */
  Ready = 3,
}

/**
 * One batch, from the moment it is cut (or made from a failed one, for a retry or a split) to
 * the moment its callers are settled or handed on.
 *
 * Per item (handed to the batch function): `items`, `weights`. Per caller: `entries`, `keys`,
 * `slots`, `tries`. They match one to one but with `dedupe`, where `slots[i]` is the item of
 * caller `i`.
 */
export class Batch<T> {
  readonly id: number;
  readonly reason: BatchStartReason;
  /** Handed to the batch function. */
  items: T[];
  /**
   * The callers, by position; a caller that left while the batch ran (or was handed on to a
   * retry) is replaced by `CANCELLED`. Emptied once they are settled, so nothing keeps them alive.
   */
  entries: Entry[];
  /** Which positions came from which cohort (items with a signal or a timeout), if any. */
  cohorts: CohortRun[] | undefined;
  /** Each caller's result key, with `keyOf`. */
  keys: unknown[] | undefined;
  /** With `dedupe`: each caller's index in `items`. */
  slots: number[] | undefined;
  /** Tries each caller's item had before this one; `undefined` when none had any. */
  tries: number[] | undefined;
  /** Each item's weight, when the batch may be retried or split with `weigh`. */
  weights: number[] | undefined;
  /** Callers in flight in this batch; fewer once `compact()` dropped the ones who left. */
  size: number;
  /** With `batchKey`: the key all its items share. */
  readonly key: string | number | undefined;
  /** With `weigh`: the total weight of its items. */
  weight: number;
  phase = Phase.Cut;
  /** Holds a concurrency slot (cut, or started from `Ready`). */
  busy = false;
  /** The batch this one was made from (a retry or a split half). */
  parentId: number | undefined = undefined;
  /** How long its oldest item waited in the queue, in ms (0 for a retry or a split half). */
  queueWait = 0;
  /** Retried items rejoin the queue when the backoff ends, instead of running as this batch. */
  requeue = false;
  /** The backoff timer, while in `Backoff`. */
  timer: unknown = undefined;
  /** Items whose callers left while the batch ran (aborted or timed out). */
  cancelled = 0;
  /** Set once the callers are settled (normally, or by a force stop): later results are dropped. */
  done = false;
  /** Clock time the batch function was called at; `NaN` until then. */
  startedAt = Number.NaN;
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
    reason: BatchStartReason,
    taken: Pick<Taken<T>, "items" | "entries" | "cohorts" | "keys" | "slots" | "tries" | "weights">,
    key: string | number | undefined,
    weight: number,
  ) {
    this.id = id;
    this.reason = reason;
    this.items = taken.items;
    this.entries = taken.entries;
    this.cohorts = taken.cohorts;
    this.keys = taken.keys;
    this.slots = taken.slots;
    this.tries = taken.tries;
    this.weights = taken.weights;
    this.size = taken.entries.length;
    this.key = key;
    this.weight = weight;
    this.context = new Context(this);
  }

  /** Tries caller `i`'s item had before this batch. */
  triesOf(i: number): number {
    return this.tries === undefined ? 1 : (this.tries[i] as number);
  }

  /**
   * Drops the callers who left (`CANCELLED`) before the batch function was called, and the items
   * nobody waits for any more, so the function never sees them; returns how many callers went.
   */
  compact(): number {
    const keep: number[] = [];
    const entries = this.entries;
    for (let i = 0; i < entries.length; i++) if (entries[i] !== CANCELLED) keep.push(i);
    const dropped = entries.length - keep.length;
    const part = this.subset(keep, 0);
    this.items = part.items;
    this.entries = part.entries;
    this.cohorts = part.cohorts;
    this.keys = part.keys;
    this.slots = part.slots;
    this.tries = part.tries;
    this.weights = part.weights;
    if (part.weights !== undefined) this.weight = part.weight;
    this.size = part.entries.length;
    this.cancelled = 0;
    return dropped;
  }

  /**
   * The callers at positions `callers` (ascending) with their items, renumbered: for a retry, a
   * split half, or `compact()`. Their tries are raised by `addTries`. Cohort runs follow.
   */
  subset(callers: readonly number[], addTries: number): Taken<T> {
    const { items, entries, keys, slots, tries, weights } = this;
    const itemOf = new Map<number, number>(); // old item index -> new
    const out: Taken<T> = {
      items: [],
      entries: [],
      weight: 0,
      cohorts: undefined,
      keys: keys === undefined ? undefined : [],
      slots: slots === undefined ? undefined : [],
      seen: undefined,
      tries: tries === undefined && addTries === 0 ? undefined : [],
      weights: weights === undefined ? undefined : [],
    };
    // newPos[i]: the new position of caller i, or -1.
    const newPos = new Array<number>(entries.length).fill(-1);
    for (const i of callers) {
      const oldItem = slots === undefined ? i : (slots[i] as number);
      let item = itemOf.get(oldItem);
      if (item === undefined) {
        item = out.items.length;
        itemOf.set(oldItem, item);
        out.items.push(items[oldItem] as T);
        if (weights !== undefined) {
          const weight = weights[oldItem] as number;
          out.weights?.push(weight);
          out.weight += weight;
        }
      }
      newPos[i] = out.entries.length;
      out.entries.push(entries[i] as Entry);
      out.keys?.push(keys?.[i]);
      out.slots?.push(item);
      out.tries?.push((tries === undefined ? 1 : (tries[i] as number)) + addTries);
    }
    const runs = this.cohorts;
    if (runs !== undefined) {
      // Runs are in position order, and so are the kept callers: so are the new runs.
      const kept: CohortRun[] = [];
      for (const run of runs) {
        for (let i = run.start; i < run.start + run.count; i++) {
          const pos = newPos[i] as number;
          if (pos < 0) continue;
          const last = kept[kept.length - 1];
          if (last !== undefined && last.cohort === run.cohort && last.start + last.count === pos) {
            last.count++;
          } else {
            kept.push({ cohort: run.cohort, start: pos, count: 1, cancelled: 0 });
          }
        }
      }
      if (kept.length > 0) out.cohorts = kept;
    }
    return out;
  }

  /** The cohort run holding position `i`, if any. */
  runAt(i: number): CohortRun | undefined {
    const runs = this.cohorts;
    if (runs === undefined) return undefined;
    for (const run of runs) if (i >= run.start && i < run.start + run.count) return run;
    return undefined;
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
