import type { HeapNode } from "./heap.js";
import { type Entry, ItemQueue, type Taken } from "./queue.js";

const NO_ITEMS: readonly unknown[] = Object.freeze([]);
const NO_ENTRIES: Entry[] = Object.freeze([]) as unknown as Entry[];

/**
 * The waiting items of one key (the only key, without `batchKey`): one FIFO per priority, highest
 * first. A batch never mixes keys; it takes the highest priorities first. The lane's `maxQueueTime`
 * clock runs from its oldest item, whatever that item's priority.
 */
export class Lane<T> implements HeapNode {
  heapIndex = -1;
  readonly key: string | number | undefined;
  /** The FIFOs by priority, highest first; the priority-0 one is always there. */
  queues: ItemQueue<T>[];
  readonly q0: ItemQueue<T>;
  readonly #weighted: boolean;
  readonly #keyed: boolean;
  /** Waiting items, over all priorities. */
  size = 0;
  /**
   * With `dedupe`: the waiting callers per result key, so that the lane is full by distinct keys.
   * Without `weigh`, their number; with it, their weights: a batch counts a key once, with the
   * largest of them (callers of one key normally weigh the same).
   */
  readonly dedupe: Map<unknown, number | number[]> | undefined;
  /** With `dedupe`: the total weight of the distinct keys waiting. */
  distinctWeight = 0;
  /** Sequence number and arrival time of the oldest waiting item; kept by `refresh()`. */
  oldestSeq = Number.POSITIVE_INFINITY;
  oldestArrival = 0;

  constructor(key: string | number | undefined, weighted: boolean, keyed = false, dedupe = false) {
    this.key = key;
    this.#weighted = weighted;
    this.#keyed = keyed;
    // With keys, every queue's items interleave with other keys'; without, only other priorities'.
    this.q0 = new ItemQueue<T>(0, weighted, key !== undefined, keyed);
    this.queues = [this.q0];
    this.dedupe = dedupe ? new Map() : undefined;
  }

  /** Whether retried items wait here (in the queue ahead of every priority): the lane is due. */
  get retrying(): boolean {
    const first = this.queues[0] as ItemQueue<T>;
    return first.priority === Number.POSITIVE_INFINITY && first.size > 0;
  }

  /** Items a batch of everything waiting would hold: callers, or distinct keys with `dedupe`. */
  get count(): number {
    return this.dedupe === undefined ? this.size : this.dedupe.size;
  }

  /** Weight a batch of everything waiting would have. */
  get batchWeight(): number {
    return this.dedupe === undefined ? this.weight : this.distinctWeight;
  }

  /** Total weight of the waiting items (0 without `weigh`). */
  get weight(): number {
    const queues = this.queues;
    if (queues.length === 1) return this.q0.weight;
    let weight = 0;
    for (const queue of queues) weight += queue.weight;
    return weight;
  }

  /** With `dedupe`: a caller of `key` weighing `weight` joined the lane. */
  countKey(key: unknown, weight: number): void {
    if (!this.#weighted) {
      const counts = this.dedupe as Map<unknown, number>;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return;
    }
    const dedupe = this.dedupe as Map<unknown, number[]>;
    const weights = dedupe.get(key);
    if (weights === undefined) {
      dedupe.set(key, [weight]);
      this.distinctWeight += weight;
      return;
    }
    const before = maxOf(weights);
    weights.push(weight);
    if (weight > before) this.distinctWeight += weight - before;
  }

  /** With `dedupe`: a caller of `key` weighing `weight` left the lane (taken, aborted, dropped). */
  uncountKey(key: unknown, weight: number): void {
    if (!this.#weighted) {
      const counts = this.dedupe as Map<unknown, number>;
      const count = counts.get(key);
      if (count === undefined) return;
      if (count > 1) counts.set(key, count - 1);
      else counts.delete(key);
      return;
    }
    const dedupe = this.dedupe as Map<unknown, number[]>;
    const weights = dedupe.get(key);
    if (weights === undefined) return;
    const before = maxOf(weights);
    const at = weights.indexOf(weight);
    weights.splice(at < 0 ? 0 : at, 1);
    if (weights.length === 0) {
      dedupe.delete(key);
      this.distinctWeight = dedupe.size === 0 ? 0 : this.distinctWeight - before;
      return;
    }
    this.distinctWeight -= before - maxOf(weights);
  }

  /** The FIFO of one priority, made on first use. */
  queueFor(priority: number): ItemQueue<T> {
    if (priority === 0) return this.q0;
    const queues = this.queues;
    let i = 0;
    while (i < queues.length && (queues[i] as ItemQueue<T>).priority > priority) i++;
    const found = queues[i];
    if (found !== undefined && found.priority === priority) return found;
    const queue = new ItemQueue<T>(priority, this.#weighted, true, this.#keyed);
    queues.splice(i, 0, queue);
    return queue;
  }

  /** Recomputes the oldest item after items left, and forgets emptied priorities. */
  refresh(): void {
    let seq = Number.POSITIVE_INFINITY;
    let arrival = 0;
    let emptied = false;
    for (const queue of this.queues) {
      if (queue.size === 0) {
        if (queue !== this.q0) emptied = true;
        continue;
      }
      const head = queue.headSeq();
      if (head < seq) {
        seq = head;
        arrival = queue.headArrival();
      }
    }
    this.oldestSeq = seq;
    this.oldestArrival = arrival;
    if (emptied) this.queues = this.queues.filter((q) => q === this.q0 || q.size > 0);
  }

  /** The queue holding the oldest waiting item. Only call when `size > 0`. */
  oldestQueue(): ItemQueue<T> {
    const queues = this.queues;
    if (queues.length === 1) return this.q0;
    let oldest = this.q0;
    let seq = Number.POSITIVE_INFINITY;
    for (const queue of queues) {
      if (queue.size > 0 && queue.headSeq() < seq) {
        seq = queue.headSeq();
        oldest = queue;
      }
    }
    return oldest;
  }

  /**
   * Takes the next batch: highest priorities first, up to `maxCount` items, stopping before the
   * first item that would push the batch over `maxWeight`. `minSeq` is the oldest item taken.
   */
  take(maxCount: number, maxWeight: number, withWeights = false): Taken<T> & { minSeq: number } {
    const dedupe = this.dedupe;
    // Empty placeholders: the first queue taken from hands over its own arrays.
    const taken: Taken<T> & { minSeq: number } = {
      items: NO_ITEMS as T[],
      entries: NO_ENTRIES,
      weight: 0,
      cohorts: undefined,
      keys: undefined,
      slots: dedupe === undefined ? undefined : [],
      seen: dedupe === undefined ? undefined : new Map(),
      tries: undefined,
      weights: withWeights ? [] : undefined,
      callerWeights: dedupe !== undefined && this.#weighted ? [] : undefined,
      minSeq: 0,
    };
    let minSeq = Number.POSITIVE_INFINITY;
    for (const queue of this.queues) {
      if (queue.size === 0) continue;
      if (taken.items.length >= maxCount) break;
      const head = queue.headSeq();
      const before = taken.entries.length;
      queue.take(maxCount, maxWeight, taken);
      const count = taken.entries.length - before;
      if (count === 0) break; // its first item does not fit the weight left
      if (head < minSeq) minSeq = head;
      this.size -= count;
      // Stopped by the count or the weight: lower priorities wait for the next batch.
      if (queue.size > 0) break;
    }
    taken.minSeq = minSeq;
    if (dedupe !== undefined) {
      if (this.size === 0) {
        // Every caller was taken: no key is waiting any more.
        dedupe.clear();
        this.distinctWeight = 0;
      } else {
        const keys = taken.keys as unknown[];
        const weights = taken.callerWeights;
        for (let i = 0; i < keys.length; i++) {
          this.uncountKey(keys[i], weights === undefined ? 0 : (weights[i] as number));
        }
      }
      taken.seen = undefined;
      taken.callerWeights = undefined;
    }
    return taken;
  }
}

function maxOf(values: readonly number[]): number {
  let max = 0;
  for (const value of values) if (value > max) max = value;
  return max;
}
