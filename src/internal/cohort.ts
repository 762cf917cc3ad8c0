import { ItemTimeoutError } from "../errors.js";
import { IndexedHeap } from "./heap.js";
import type { Lane } from "./lane.js";
import type { ItemQueue, Settle } from "./queue.js";
import { DeadlineTimer, EPSILON_MS, type TickClock } from "./timer.js";

/** Where a cohort's items are. */
export enum CohortState {
  /** One item waiting for room in the queue (`onQueueFull: "wait"`): `waiting` holds it. */
  Waiting = 0,
  /** Admitted: positions `start` to `end` of `queue`, or in batches cut from them. */
  Admitted = 1,
  /** Every item has settled, or the batcher was force-stopped: detached from signal and timer. */
  Done = 2,
}

/** The item of a cohort that waits for room, with what it will be admitted with. */
export interface Waiter {
  readonly item: unknown;
  readonly resolve: Settle;
  readonly priority: number;
  readonly key: string | number | undefined;
  readonly weight: number;
  /** The result key, with `keyOf`. */
  readonly resultKey: unknown;
}

/**
 * Items that can be cancelled together: submitted in one tick, in a row, into one queue, with the
 * same `signal` and the same timeout (hence the same deadline). A thousand calls sharing a
 * request's signal and the batcher's `itemTimeout` make one cohort, not a thousand objects: the
 * queue keeps each item's resolve function as usual and marks the run of positions with its
 * cohort, and a batch records which of its positions came from which cohort (`CohortRun`).
 *
 * A cohort listens to its signal (through its `SignalGroup`) and sits in the timeout schedule
 * until its last item settles (`live` reaches 0); then it is detached, and nothing outlives the
 * callers. Items with neither a signal nor a timeout belong to no cohort and pay nothing.
 */
export class Cohort {
  state = CohortState.Admitted;
  readonly signal: AbortSignal | undefined;
  /** The timeout of its items, in ms; `Infinity` for none. */
  readonly duration: number;
  /**
   * Clock time the timeout passes at. Starts as `undefined` on purpose: V8 then keeps the field
   * tagged, so cohorts of one tick share one boxed number instead of boxing one each.
   */
  deadline: number = undefined as unknown as number;
  /** Items not settled yet. */
  live = 0;
  /** No later item may join it: an admitted waiter, whose deadline counts from its own call. */
  sealed = false;

  lane: Lane<unknown> | undefined = undefined;
  queue: ItemQueue<unknown> | undefined = undefined;
  /** Positions in `queue`: from `start`, to `end` excluded. */
  start = 0;
  end = 0;
  waiting: Waiter | undefined = undefined;
  /** Set during a cancel round, to find the cohort's items in running batches. */
  cancelling = false;

  group: SignalGroup | undefined = undefined;
  groupPrev: Cohort | undefined = undefined;
  groupNext: Cohort | undefined = undefined;

  timeoutList: TimeoutList | undefined = undefined;
  timeoutPrev: Cohort | undefined = undefined;
  timeoutNext: Cohort | undefined = undefined;

  constructor(signal: AbortSignal | undefined, duration: number) {
    this.signal = signal;
    this.duration = duration;
  }

  /** Every item has settled (or is about to): stop listening, leave the timer. */
  detach(): void {
    this.state = CohortState.Done;
    this.live = 0;
    this.waiting = undefined;
    this.lane = undefined;
    this.queue = undefined;
    if (this.group !== undefined) this.group.remove(this);
    if (this.timeoutList !== undefined) this.timeoutList.schedule.remove(this);
  }
}

/** The positions `start` to `start + count` of a batch, which came from `cohort`. */
export interface CohortRun {
  readonly cohort: Cohort;
  readonly start: number;
  count: number;
  /** How many of them were cancelled while the batch ran. */
  cancelled: number;
}

/**
 * Cancels cohorts whose signal aborted or whose timeout passed, all of one abort (or one timer
 * tick) in one call: none of their items is admitted or batched while the others are still being
 * cancelled.
 */
export type Cancel = (
  cohorts: readonly Cohort[],
  reasonOf: (cohort: Cohort) => unknown,
  kind: "abort" | "timeout",
) => void;

// -----------------------------------------------------------------------------------------------
// Signals: one listener per signal, however many items share it.

/**
 * The cohorts that share one signal, in a linked list, behind a single `abort` listener (the group
 * itself, through `handleEvent`). Node warns past 10 listeners on one signal, and a listener per
 * item on a long-lived signal is a leak until it aborts; here the listener goes as soon as the
 * last item holding the signal settles.
 */
export class SignalGroup {
  readonly signal: AbortSignal;
  /** False once released: a new item with this signal needs a new group. */
  live = true;
  readonly #registry: SignalRegistry;
  #head: Cohort | undefined = undefined;
  #tail: Cohort | undefined = undefined;

  constructor(signal: AbortSignal, registry: SignalRegistry) {
    this.signal = signal;
    this.#registry = registry;
  }

  add(cohort: Cohort): void {
    cohort.group = this;
    cohort.groupPrev = this.#tail;
    if (this.#tail === undefined) this.#head = cohort;
    else this.#tail.groupNext = cohort;
    this.#tail = cohort;
  }

  remove(cohort: Cohort): void {
    const { groupPrev: prev, groupNext: next } = cohort;
    if (prev === undefined) this.#head = next;
    else prev.groupNext = next;
    if (next === undefined) this.#tail = prev;
    else next.groupPrev = prev;
    cohort.group = undefined;
    cohort.groupPrev = undefined;
    cohort.groupNext = undefined;
    if (this.#head === undefined) this.#registry.release(this);
  }

  /** The `abort` listener: cancels every item still holding this signal. */
  handleEvent(): void {
    this.#registry.release(this);
    const cohorts: Cohort[] = [];
    for (let c = this.#head; c !== undefined; c = c.groupNext) cohorts.push(c);
    const reason: unknown = this.signal.reason;
    this.#registry.cancel(cohorts, () => reason, "abort");
  }
}

export class SignalRegistry {
  readonly #groups = new Map<AbortSignal, SignalGroup>();
  /** The group used last: items in a row usually share their signal. */
  #last: SignalGroup | undefined = undefined;
  readonly cancel: Cancel;

  constructor(cancel: Cancel) {
    this.cancel = cancel;
  }

  /** Whether `signal` is the last one added and still has its listener: then it has not aborted. */
  listening(signal: unknown): boolean {
    const last = this.#last;
    return last !== undefined && last.signal === signal && last.live;
  }

  add(cohort: Cohort, signal: AbortSignal): void {
    let group = this.#last;
    if (group === undefined || group.signal !== signal || !group.live) {
      group = this.#groups.get(signal);
      if (group === undefined) {
        group = new SignalGroup(signal, this);
        this.#groups.set(signal, group);
        signal.addEventListener("abort", group, { once: true });
      }
      this.#last = group;
    }
    group.add(cohort);
  }

  /** Called by a group that emptied or fired: forget it and drop its listener. */
  release(group: SignalGroup): void {
    if (!group.live) return;
    group.live = false;
    if (this.#last === group) this.#last = undefined;
    this.#groups.delete(group.signal);
    group.signal.removeEventListener("abort", group);
  }

  /** Drops every listener (a force stop: every item has settled). */
  clear(): void {
    for (const group of [...this.#groups.values()]) this.release(group);
  }
}

// -----------------------------------------------------------------------------------------------
// Timeouts: one timer for all of them.

/**
 * The cohorts with one timeout duration, in arrival order, so their deadlines only grow: adding
 * and removing are O(1), and the earliest deadline is the head's. (Node groups its own timers
 * by duration the same way.) An admitted waiter keeps the place it took when it called.
 */
class TimeoutList {
  heapIndex = -1;
  /** False once emptied and forgotten. */
  live = true;
  head: Cohort | undefined = undefined;
  tail: Cohort | undefined = undefined;
  readonly duration: number;
  readonly schedule: TimeoutSchedule;

  constructor(duration: number, schedule: TimeoutSchedule) {
    this.duration = duration;
    this.schedule = schedule;
  }
}

export type { TimeoutList };

/**
 * Every pending timeout behind one `DeadlineTimer`: lists by duration, and a heap of the lists by
 * their earliest deadline. A uniform timeout is one list: O(1) per cohort, one timer.
 */
export class TimeoutSchedule {
  readonly #lists = new Map<number, TimeoutList>();
  /** The list used last: cohorts in a row usually share their timeout. */
  #last: TimeoutList | undefined = undefined;
  /** The deadline computed last, for `#deadlineNow + #deadlineDuration`: one per tick, shared. */
  #deadline = 0;
  #deadlineNow = Number.NaN;
  #deadlineDuration = Number.NaN;
  readonly #heap = new IndexedHeap<TimeoutList>(
    (a, b) => (a.head as Cohort).deadline < (b.head as Cohort).deadline,
  );
  readonly #time: TickClock;
  readonly #timer: DeadlineTimer;
  readonly #cancel: Cancel;

  constructor(time: TickClock, cancel: Cancel) {
    this.#time = time;
    this.#cancel = cancel;
    this.#timer = new DeadlineTimer(time, () => this.#fire());
  }

  /** Schedules `cohort`'s timeout, counted from now. */
  add(cohort: Cohort): void {
    const duration = cohort.duration;
    let list = this.#last;
    let fresh = false;
    if (list === undefined || list.duration !== duration || !list.live) {
      list = this.#lists.get(duration);
      if (list === undefined) {
        list = new TimeoutList(duration, this);
        this.#lists.set(duration, list);
        fresh = true;
      }
      this.#last = list;
    }
    const now = this.#time.now();
    if (now !== this.#deadlineNow || duration !== this.#deadlineDuration) {
      this.#deadlineNow = now;
      this.#deadlineDuration = duration;
      this.#deadline = now + duration;
    }
    cohort.deadline = this.#deadline;
    cohort.timeoutList = list;
    cohort.timeoutPrev = list.tail;
    if (list.tail === undefined) list.head = cohort;
    else list.tail.timeoutNext = cohort;
    list.tail = cohort;
    if (fresh) {
      this.#heap.push(list);
      this.#timer.arm(cohort.deadline);
    }
  }

  /**
   * Schedules a cohort whose `deadline` is set already (retried items keep the deadline of their
   * first call): inserted in deadline order, searching from the tail (such cohorts are few).
   */
  readd(cohort: Cohort): void {
    const duration = cohort.duration;
    let list = this.#lists.get(duration);
    let fresh = false;
    if (list === undefined) {
      list = new TimeoutList(duration, this);
      this.#lists.set(duration, list);
      fresh = true;
    }
    let after = list.tail;
    while (after !== undefined && after.deadline > cohort.deadline) after = after.timeoutPrev;
    const before = after === undefined ? list.head : after.timeoutNext;
    cohort.timeoutList = list;
    cohort.timeoutPrev = after;
    cohort.timeoutNext = before;
    if (after === undefined) list.head = cohort;
    else after.timeoutNext = cohort;
    if (before === undefined) list.tail = cohort;
    else before.timeoutPrev = cohort;
    if (fresh) this.#heap.push(list);
    else if (after === undefined) this.#heap.update(list);
    this.#timer.arm(cohort.deadline);
  }

  remove(cohort: Cohort): void {
    const list = cohort.timeoutList;
    if (list === undefined) return;
    const { timeoutPrev: prev, timeoutNext: next } = cohort;
    if (prev === undefined) list.head = next;
    else prev.timeoutNext = next;
    if (next === undefined) list.tail = prev;
    else next.timeoutPrev = prev;
    cohort.timeoutList = undefined;
    cohort.timeoutPrev = undefined;
    cohort.timeoutNext = undefined;
    if (prev !== undefined) return; // the list's earliest deadline did not change
    if (list.head === undefined) {
      list.live = false;
      if (this.#last === list) this.#last = undefined;
      this.#heap.remove(list);
      this.#lists.delete(list.duration);
      if (this.#heap.size === 0) this.#timer.clear(); // hold no timer for nothing
    } else if (this.#heap.size > 1) {
      this.#heap.update(list);
    }
  }

  /** Forgets every timeout and clears the timer (a force stop: every item has settled). */
  clear(): void {
    for (const list of this.#heap.clear()) {
      list.live = false;
      for (let c = list.head; c !== undefined; ) {
        const next: Cohort | undefined = c.timeoutNext;
        c.timeoutList = undefined;
        c.timeoutPrev = undefined;
        c.timeoutNext = undefined;
        c = next;
      }
    }
    this.#lists.clear();
    this.#last = undefined;
    this.#timer.clear();
  }

  #fire(): void {
    const now = this.#time.now();
    const expired: Cohort[] = [];
    for (;;) {
      const list = this.#heap.peek();
      if (list === undefined) break;
      const cohort = list.head as Cohort;
      if (cohort.deadline > now + EPSILON_MS) {
        this.#timer.arm(cohort.deadline);
        break;
      }
      this.remove(cohort);
      expired.push(cohort);
    }
    if (expired.length > 0) {
      this.#cancel(expired, (c) => new ItemTimeoutError(c.duration), "timeout");
    }
  }
}
