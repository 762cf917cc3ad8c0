/** Settles one caller's promise. Rejection goes through it too: see `rejectCaller`. */
export type Settle = (value: unknown) => void;

/** Past this many consumed slots at the front, and over half the array, the arrays are compacted. */
const COMPACT_AT = 4096;

/**
 * The FIFO of waiting items, as parallel arrays (no object per item) with a moving head.
 *
 * Every item has a sequence number: how many items were pushed before it. Arrival times are kept
 * as runs (`runSeq[i]` is the first item that arrived at `runTime[i]`): items submitted in the same
 * tick share one clock reading, so a burst of any size costs one entry.
 *
 * Push and take are O(1) amortised: taken slots stay in place until the queue empties (the arrays
 * are then reset) or they are most of the array (then spliced off once).
 */
export class ItemQueue<T> {
  #items: T[] = [];
  #settles: Settle[] = [];
  /** Index in the arrays of the oldest waiting item. */
  #head = 0;
  /** Sequence number of `#items[0]`. */
  #base = 0;
  #runSeq: number[] = [];
  #runTime: number[] = [];
  #runHead = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Sequence number of the oldest waiting item (or of the next one pushed, when empty). */
  get headSeq(): number {
    return this.#base + this.#head;
  }

  /** Sequence number the next pushed item will get. */
  get tailSeq(): number {
    return this.#base + this.#items.length;
  }

  push(item: T, settle: Settle, arrival: number): void {
    const runs = this.#runTime.length;
    if (runs === this.#runHead || this.#runTime[runs - 1] !== arrival) {
      this.#runSeq.push(this.tailSeq);
      this.#runTime.push(arrival);
    }
    this.#items.push(item);
    this.#settles.push(settle);
  }

  /** Arrival time of the oldest waiting item. Only call when `size > 0`. */
  headArrival(): number {
    const head = this.headSeq;
    const runSeq = this.#runSeq;
    let run = this.#runHead;
    while (run + 1 < runSeq.length && (runSeq[run + 1] as number) <= head) run++;
    this.#runHead = run;
    return this.#runTime[run] as number;
  }

  /**
   * Removes the `count` oldest items (`0 < count <= size`) and returns them with their settle
   * functions, in order.
   */
  take(count: number): { items: T[]; settles: Settle[] } {
    const head = this.#head;
    const end = head + count;
    const length = this.#items.length;
    let items: T[];
    let settles: Settle[];
    if (end === length) {
      // Everything left goes: hand the arrays over whole when we can, and start afresh.
      if (head === 0) {
        items = this.#items;
        settles = this.#settles;
        this.#items = [];
        this.#settles = [];
      } else {
        items = this.#items.slice(head);
        settles = this.#settles.slice(head);
        this.#items.length = 0;
        this.#settles.length = 0;
      }
      this.#base += length;
      this.#head = 0;
      this.#runSeq.length = 0;
      this.#runTime.length = 0;
      this.#runHead = 0;
      return { items, settles };
    }
    items = this.#items.slice(head, end);
    settles = this.#settles.slice(head, end);
    this.#head = end;
    if (end >= COMPACT_AT && end * 2 >= length) {
      this.#items.splice(0, end);
      this.#settles.splice(0, end);
      this.#base += end;
      this.#head = 0;
      this.headArrival(); // advances #runHead past the runs that are gone
      this.#runSeq.splice(0, this.#runHead);
      this.#runTime.splice(0, this.#runHead);
      this.#runHead = 0;
    }
    return { items, settles };
  }

  /** Removes every waiting item and returns their settle functions, oldest first. */
  drain(): Settle[] {
    const size = this.size;
    return size === 0 ? [] : this.take(size).settles;
  }
}
