import type { Cohort, CohortRun } from "./cohort.js";

/** Settles one caller's promise. Rejection goes through it too: see `rejectCaller`. */
export type Settle = (value: unknown) => void;

/** What the queue and a batch keep per item: its caller's resolve function. */
export type Entry = Settle;

/** Past this many consumed slots at the front, and over half the array, the arrays are compacted. */
const COMPACT_AT = 4096;

/**
 * What a cut takes off the queues, filled queue by queue. `items` (and `weights`) are per item
 * handed to the batch function; `entries` (and `keys`, `slots`, `tries`) per caller. They are
 * the same but with `dedupe`, where callers whose key was taken already share its item.
 */
export interface Taken<T> {
  items: T[];
  entries: Entry[];
  /** Total weight of `items` (0 without `weigh`). */
  weight: number;
  /** Which positions of `entries` came from which cohort, if any did. */
  cohorts: CohortRun[] | undefined;
  /** Each caller's result key, with `keyOf`. */
  keys: unknown[] | undefined;
  /** With `dedupe`: each caller's index in `items`; and the key of each item taken so far. */
  slots: number[] | undefined;
  seen: Map<unknown, number> | undefined;
  /** Tries each caller's item has had, when some had any (retried items). */
  tries: number[] | undefined;
  /** Each item's weight, with `weigh` (to weigh what is left of a batch later). */
  weights: number[] | undefined;
  /** With `dedupe` and `weigh`: each caller's weight, for the lane's count of keys. */
  callerWeights?: number[] | undefined;
}

/**
 * One FIFO of waiting items (one priority of one key), as parallel arrays with a moving head: no
 * object per item.
 *
 * Positions: `base + index` is an item's position, fixed for its life in the queue (a cohort
 * keeps its range, to take its items out on abort). Sequence numbers are the batcher's global arrival
 * order, across all queues. Arrival times and sequence numbers are kept as runs (`runPos[i]` is
 * the position of the first item of a run, `runSeq[i]` its sequence number and `runTime[i]` its
 * arrival time): consecutive items with consecutive sequence numbers and one clock reading (one
 * tick) share a run, so a burst of any size costs one entry. Queues whose items interleave with
 * other keys' keep a sequence number per item instead (a run per item would cost more).
 *
 * Runs also break where the cohort changes (`runCohort[i]`: the items' `Cohort`, for those with
 * a signal or a timeout), so a run's items share one.
 *
 * An item that leaves early (aborted, timed out, dropped) leaves a hole (`undefined` entry) that
 * later takes skip; the head never rests on a hole. Push and take are O(1) amortised: taken slots
 * stay in place until the queue empties (the arrays are then reset) or they are most of the array
 * (then spliced off once).
 */
export class ItemQueue<T> {
  readonly priority: number;
  #items: (T | undefined)[] = [];
  #entries: (Entry | undefined)[] = [];
  /** Per-item weights, with `weigh` only. */
  #weights: number[] | undefined;
  /** Per-item result keys, with `keyOf` only. */
  #keys: unknown[] | undefined;
  /** Per-item tries so far, in the queue of retried items only. */
  #tries: number[] | undefined;
  /** Index in the arrays of the oldest waiting item. */
  #head = 0;
  /** Position of `#items[0]`. */
  #base = 0;
  /** Holes between the head and the end. */
  #holes = 0;
  /** Total weight of the waiting items. */
  weight = 0;
  #runPos: number[] = [];
  #runSeq: number[] = [];
  #runTime: number[] = [];
  #runCohort: (Cohort | undefined)[] = [];
  /**
   * Runs in use: the run arrays are kept across resets and overwritten (a reset per batch would
   * otherwise allocate four arrays per batch), so their `length` may be larger.
   */
  #runs = 0;
  /** Whether `#runCohort` holds a cohort below `#runs`: a reset must then let go of it. */
  #cohortRuns = false;
  #runHead = 0;
  #lastSeq = Number.NaN;
  /**
   * Per-item sequence numbers, for queues whose items interleave with other queues' (one per key):
   * one number per item costs less than a run per item.
   */
  #seqs: number[] | undefined;

  constructor(priority: number, weighted: boolean, interleaved = false, keyed = false) {
    this.priority = priority;
    this.#weights = weighted ? [] : undefined;
    this.#seqs = interleaved ? [] : undefined;
    this.#keys = keyed ? [] : undefined;
    // Retried items rejoin their lane in a queue of their own, ahead of every priority.
    this.#tries = priority === Number.POSITIVE_INFINITY ? [] : undefined;
  }

  get size(): number {
    return this.#items.length - this.#head - this.#holes;
  }

  /** Position the next pushed item will get. */
  get tailPos(): number {
    return this.#base + this.#items.length;
  }

  push(
    item: T,
    entry: Entry,
    arrival: number,
    seq: number,
    weight: number,
    cohort: Cohort | undefined,
  ): void {
    const runs = this.#runs;
    const seqs = this.#seqs;
    if (
      runs === this.#runHead ||
      this.#runTime[runs - 1] !== arrival ||
      (seqs === undefined && seq !== this.#lastSeq + 1) ||
      this.#runCohort[runs - 1] !== cohort
    ) {
      this.#runPos[runs] = this.tailPos;
      this.#runSeq[runs] = seq;
      this.#runTime[runs] = arrival;
      this.#runCohort[runs] = cohort;
      if (cohort !== undefined) this.#cohortRuns = true;
      this.#runs = runs + 1;
    }
    this.#lastSeq = seq;
    if (seqs !== undefined) seqs.push(seq);
    this.#items.push(item);
    this.#entries.push(entry);
    if (this.#weights !== undefined) {
      this.#weights.push(weight);
      this.weight += weight;
    }
  }

  /**
   * `push` for a queue with result keys or tries (`keyOf`, retried items): the plain `push` stays
   * free of their checks.
   */
  pushWith(
    item: T,
    entry: Entry,
    arrival: number,
    seq: number,
    weight: number,
    cohort: Cohort | undefined,
    key: unknown,
    tries: number,
  ): void {
    this.push(item, entry, arrival, seq, weight, cohort);
    if (this.#keys !== undefined) this.#keys.push(key);
    if (this.#tries !== undefined) this.#tries.push(tries);
  }

  /**
   * The cohort an item pushed now (`arrival`, `seq`) would share its run with, if the last run is
   * still open to it: same tick, next in sequence.
   */
  openCohort(arrival: number, seq: number): Cohort | undefined {
    const runs = this.#runs;
    if (runs === this.#runHead || this.#runTime[runs - 1] !== arrival) return undefined;
    if (this.#seqs === undefined && seq !== this.#lastSeq + 1) return undefined;
    return this.#runCohort[runs - 1];
  }

  /** The cohort of the waiting item at `pos`, if any. */
  cohortAt(pos: number): Cohort | undefined {
    const runPos = this.#runPos;
    let lo = this.#runHead;
    let hi = this.#runs - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((runPos[mid] as number) <= pos) lo = mid;
      else hi = mid - 1;
    }
    return this.#runCohort[lo];
  }

  /** The run holding the head item. Only call when `size > 0`. */
  #headRun(): number {
    const pos = this.#base + this.#head;
    const runPos = this.#runPos;
    const runs = this.#runs;
    let run = this.#runHead;
    while (run + 1 < runs && (runPos[run + 1] as number) <= pos) run++;
    this.#runHead = run;
    return run;
  }

  /** Sequence number of the oldest waiting item. Only call when `size > 0`. */
  headSeq(): number {
    if (this.#seqs !== undefined) return this.#seqs[this.#head] as number;
    const run = this.#headRun();
    return (
      (this.#runSeq[run] as number) + (this.#base + this.#head - (this.#runPos[run] as number))
    );
  }

  /** Arrival time of the oldest waiting item. Only call when `size > 0`. */
  headArrival(): number {
    return this.#runTime[this.#headRun()] as number;
  }

  /** Position of the oldest waiting item. Only call when `size > 0`. */
  get headPos(): number {
    return this.#base + this.#head;
  }

  /** The entry at `pos`, or `undefined` if it left or was taken. */
  entryAt(pos: number): Entry | undefined {
    const index = pos - this.#base;
    return index >= this.#head ? this.#entries[index] : undefined;
  }

  /** The weight of the item at `pos`, which must still be waiting. */
  weightAt(pos: number): number {
    return this.#weights === undefined ? 0 : (this.#weights[pos - this.#base] as number);
  }

  /** The result key of the item at `pos`, which must still be waiting (with `keyOf`). */
  keyAt(pos: number): unknown {
    return this.#keys === undefined ? undefined : this.#keys[pos - this.#base];
  }

  /** Takes the item at `pos` out of the queue early and returns its entry. */
  remove(pos: number): Entry | undefined {
    const index = pos - this.#base;
    const entry = index >= this.#head ? this.#entries[index] : undefined;
    if (entry === undefined) return undefined;
    this.#items[index] = undefined;
    this.#entries[index] = undefined;
    if (this.#weights !== undefined) this.weight -= this.#weights[index] as number;
    this.#holes++;
    if (index === this.#head) this.#advance(index);
    return entry;
  }

  /**
   * Moves the oldest items to `taken`, at most until it holds `maxCount` items, and stopping before
   * the first item that would push `taken.weight` over `maxWeight` (unless `taken` is empty).
   */
  take(maxCount: number, maxWeight: number, taken: Taken<T>): void {
    const head = this.#head;
    const length = this.#items.length;
    if (
      taken.items.length === 0 &&
      this.#holes === 0 &&
      this.#weights === undefined &&
      this.#tries === undefined &&
      taken.seen === undefined
    ) {
      // The hot path: a FIFO without holes or weights, handed over by slice (or whole).
      const end = head + Math.min(length - head, maxCount);
      this.#collectCohorts(head, end, taken);
      if (end === length && head === 0) {
        taken.items = this.#items as T[];
        taken.entries = this.#entries as Entry[];
        if (this.#keys !== undefined) {
          taken.keys = this.#keys;
          this.#keys = [];
        }
        this.#items = [];
        this.#entries = [];
        this.#reset(length);
        return;
      }
      taken.items = this.#items.slice(head, end) as T[];
      taken.entries = this.#entries.slice(head, end) as Entry[];
      if (this.#keys !== undefined) taken.keys = this.#keys.slice(head, end);
      this.#advance(end);
      return;
    }
    if (taken.entries.length === 0) {
      taken.items = []; // not the caller's empty placeholders: they are shared
      taken.entries = [];
      if (this.#keys !== undefined) taken.keys = [];
    }
    const items = this.#items;
    const entries = this.#entries;
    const weights = this.#weights;
    const keys = this.#keys;
    const tries = this.#tries;
    const seen = taken.seen;
    const out = taken.items;
    const runPos = this.#runPos;
    const runs = this.#runs;
    let run = this.#headRun();
    let i = head;
    while (i < length && out.length < maxCount) {
      const entry = entries[i];
      if (entry === undefined) {
        this.#holes--;
        i++;
        continue;
      }
      const key = keys === undefined ? undefined : keys[i];
      // With `dedupe`: a caller whose key is in the batch already shares that item, for free.
      const slot = seen === undefined ? undefined : seen.get(key);
      const weight = weights === undefined ? 0 : (weights[i] as number);
      if (slot === undefined) {
        if (weights !== undefined) {
          if (out.length > 0 && taken.weight + weight > maxWeight) break;
          taken.weight += weight;
        }
        if (seen !== undefined) {
          seen.set(key, out.length);
          (taken.slots as number[]).push(out.length);
        }
        taken.weights?.push(weight);
        out.push(items[i] as T);
      } else {
        (taken.slots as number[]).push(slot);
      }
      if (weights !== undefined) this.weight -= weight;
      taken.callerWeights?.push(weight);
      const pos = this.#base + i;
      while (run + 1 < runs && (runPos[run + 1] as number) <= pos) run++;
      const cohort = this.#runCohort[run];
      if (cohort !== undefined) addToRun(taken, cohort, taken.entries.length, 1);
      if (tries !== undefined && (tries[i] as number) > 1) {
        taken.tries ??= new Array<number>(taken.entries.length).fill(1);
      }
      if (taken.tries !== undefined)
        taken.tries.push(tries === undefined ? 1 : (tries[i] as number));
      taken.entries.push(entry);
      taken.keys?.push(key);
      items[i] = undefined;
      entries[i] = undefined;
      i++;
    }
    this.#advance(i);
  }

  /** Records the cohorts of the items at indexes `from` to `to` (no holes), about to be taken. */
  #collectCohorts(from: number, to: number, taken: Taken<T>): void {
    if (!this.#cohortRuns) return;
    const runPos = this.#runPos;
    const runCohort = this.#runCohort;
    const runs = this.#runs;
    const base = this.#base;
    let run = this.#headRun();
    const offset = taken.entries.length - from;
    for (; run < runs; run++) {
      const start = Math.max((runPos[run] as number) - base, from);
      if (start >= to) break;
      const cohort = runCohort[run];
      if (cohort === undefined) continue;
      const end = run + 1 < runs ? Math.min((runPos[run + 1] as number) - base, to) : to;
      addToRun(taken, cohort, start + offset, end - start);
    }
  }

  /** Removes every waiting item and returns their entries, oldest first. */
  drain(): Entry[] {
    const entries: Entry[] = [];
    const all = this.#entries;
    for (let i = this.#head; i < all.length; i++) {
      const entry = all[i];
      if (entry !== undefined) entries.push(entry);
    }
    this.#items = [];
    this.#entries = [];
    if (this.#weights !== undefined) this.#weights = [];
    this.weight = 0;
    this.#reset(all.length);
    return entries;
  }

  /** The head moves to `index`, then past any holes there. */
  #advance(index: number): void {
    const entries = this.#entries;
    const length = entries.length;
    while (index < length && entries[index] === undefined) {
      index++;
      this.#holes--;
    }
    if (index === length) {
      this.#items = [];
      this.#entries = [];
      if (this.#weights !== undefined) this.#weights = [];
      this.weight = 0; // no float drift carried over
      this.#reset(length);
      return;
    }
    this.#head = index;
    if (index >= COMPACT_AT && index * 2 >= length) {
      this.#items.splice(0, index);
      this.#entries.splice(0, index);
      this.#weights?.splice(0, index);
      this.#keys?.splice(0, index);
      this.#tries?.splice(0, index);
      this.#seqs?.splice(0, index);
      this.#base += index;
      this.#head = 0;
      const run = this.#headRun(); // advances #runHead past the runs that are gone
      this.#runPos.splice(0, run);
      this.#runSeq.splice(0, run);
      this.#runTime.splice(0, run);
      this.#runCohort.splice(0, run);
      this.#runs -= run;
      this.#runHead = 0;
    }
  }

  /** The queue is empty: `length` slots were used since the arrays were last reset. */
  #reset(length: number): void {
    if (this.#seqs !== undefined) this.#seqs = [];
    if (this.#keys !== undefined && this.#keys.length > 0) this.#keys = [];
    if (this.#tries !== undefined) this.#tries = [];
    this.#base += length;
    this.#head = 0;
    this.#holes = 0;
    if (this.#cohortRuns) {
      this.#runCohort.fill(undefined, 0, this.#runs); // let the cohorts go
      this.#cohortRuns = false;
    }
    this.#runs = 0;
    this.#runHead = 0;
  }
}

/** Adds `count` positions from `start` of `taken` to `cohort`'s run there, or starts one. */
function addToRun<T>(taken: Taken<T>, cohort: Cohort, start: number, count: number): void {
  const runs = taken.cohorts;
  if (runs === undefined) {
    taken.cohorts = [{ cohort, start, count, cancelled: 0 }];
    return;
  }
  const last = runs[runs.length - 1] as CohortRun;
  if (last.cohort === cohort && last.start + last.count === start) last.count += count;
  else runs.push({ cohort, start, count, cancelled: 0 });
}
