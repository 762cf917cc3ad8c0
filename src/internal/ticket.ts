import { ItemTimeoutError } from "../errors.js";
import type { Batch } from "./batch.js";
import { IndexedHeap } from "./heap.js";
import type { Lane } from "./lane.js";
import type { ItemQueue, Settle } from "./queue.js";
import { DeadlineTimer, EPSILON_MS, type TickClock } from "./timer.js";

/** Where a ticket's item is. */
export enum TicketState {
  /** Waiting for room in the queue (`onQueueFull: "wait"`): `waiting` holds the item. */
  Waiting = 0,
  /** Admitted: in its queue at `pos`, or in `batch` once that is set. */
  Admitted = 1,
  Settled = 2,
}

/**
 * Cancels items whose signal aborted or whose timeout passed. `cancel` takes each one out and
 * rejects its caller; `cancelled` then moves the batcher on (admits waiting callers, cuts
 * batches) once for all of them, so that none is admitted or batched while the others of the
 * same abort or the same timer tick are still being cancelled.
 */
export interface Canceller {
  cancel(ticket: Ticket, reason: unknown): void;
  cancelled(): void;
}

/** What a caller waiting for room will be admitted with. */
export interface Waiter {
  readonly item: unknown;
  readonly priority: number;
  readonly key: string | number | undefined;
  readonly weight: number;
}

/**
 * An item that needs more than its caller's resolve function: one with a signal or a timeout, or
 * one waiting for room in the queue. Items without these have no ticket and pay nothing.
 *
 * In the queue and in a batch, the ticket stands where the resolve function would (see `Entry`).
 * Settling it detaches it from its signal and its timeout, so nothing outlives the caller.
 */
export class Ticket {
  state = TicketState.Admitted;
  readonly #resolve: Settle;
  /** While waiting for room only. */
  waiting: Waiter | undefined = undefined;

  /** Once admitted: its lane and queue, and the item's position in that queue. */
  lane: Lane<unknown> | undefined = undefined;
  queue: ItemQueue<unknown> | undefined = undefined;
  pos = 0;
  /** Once its batch is cut. */
  batch: Batch<unknown> | undefined = undefined;

  group: SignalGroup | undefined = undefined;
  groupPrev: Ticket | undefined = undefined;
  groupNext: Ticket | undefined = undefined;

  timeoutList: TimeoutList | undefined = undefined;
  timeoutPrev: Ticket | undefined = undefined;
  timeoutNext: Ticket | undefined = undefined;
  /**
   * Clock time the timeout passes at; read only while `timeoutList` is set. Starts as `undefined`
   * on purpose: V8 then keeps the field tagged, and the tickets of one tick share one boxed
   * number, where a double field would box a number per ticket.
   */
  deadline: number = undefined as unknown as number;

  constructor(resolve: Settle) {
    this.#resolve = resolve;
  }

  get settled(): boolean {
    return this.state === TicketState.Settled;
  }

  /** Whether the item still waits in its queue (admitted and not yet in a batch). */
  get queued(): boolean {
    return this.state === TicketState.Admitted && this.batch === undefined;
  }

  /** Settles the caller with a result; ignored once settled (an aborted item's late result). */
  resolve(value: unknown): boolean {
    if (this.state === TicketState.Settled) return false;
    this.#finish();
    this.#resolve(value);
    return true;
  }

  /** Rejects the caller; ignored once settled. */
  reject(error: unknown): boolean {
    if (this.state === TicketState.Settled) return false;
    this.#finish();
    this.#resolve(Promise.reject(error));
    return true;
  }

  #finish(): void {
    this.state = TicketState.Settled;
    this.waiting = undefined;
    this.lane = undefined;
    this.queue = undefined;
    this.batch = undefined;
    if (this.group !== undefined) this.group.remove(this);
    if (this.timeoutList !== undefined) this.timeoutList.schedule.remove(this);
  }
}

/**
 * What the queue and a batch keep per item: the caller's resolve function, or its ticket.
 * `undefined` marks an item removed from the queue (aborted, timed out or dropped).
 */
export type Entry = Settle | Ticket;

export function resolveEntry(entry: Entry, value: unknown): boolean {
  if (typeof entry === "function") {
    entry(value);
    return true;
  }
  return entry.resolve(value);
}

export function rejectEntry(entry: Entry, error: unknown): boolean {
  if (typeof entry === "function") {
    entry(Promise.reject(error));
    return true;
  }
  return entry.reject(error);
}

// -----------------------------------------------------------------------------------------------
// Signals: one listener per signal, however many items share it.

/**
 * The tickets that share one signal, in a linked list, behind a single `abort` listener (the group
 * itself, through `handleEvent`). Node warns past 10 listeners on one signal, and a listener per
 * item on a long-lived signal is a leak until it aborts; here the listener goes as soon as the
 * last of its items settles.
 */
export class SignalGroup {
  readonly signal: AbortSignal;
  /** False once released: a new item with this signal needs a new group. */
  live = true;
  readonly #registry: SignalRegistry;
  #head: Ticket | undefined = undefined;
  #tail: Ticket | undefined = undefined;

  constructor(signal: AbortSignal, registry: SignalRegistry) {
    this.signal = signal;
    this.#registry = registry;
  }

  add(ticket: Ticket): void {
    ticket.group = this;
    ticket.groupPrev = this.#tail;
    if (this.#tail === undefined) this.#head = ticket;
    else this.#tail.groupNext = ticket;
    this.#tail = ticket;
  }

  remove(ticket: Ticket): void {
    const { groupPrev: prev, groupNext: next } = ticket;
    if (prev === undefined) this.#head = next;
    else prev.groupNext = next;
    if (next === undefined) this.#tail = prev;
    else next.groupPrev = prev;
    ticket.group = undefined;
    ticket.groupPrev = undefined;
    ticket.groupNext = undefined;
    if (this.#head === undefined) this.#registry.release(this);
  }

  /** The `abort` listener: cancels every item still holding this signal, oldest first. */
  handleEvent(): void {
    this.#registry.release(this);
    const tickets: Ticket[] = [];
    for (let t = this.#head; t !== undefined; t = t.groupNext) tickets.push(t);
    const reason: unknown = this.signal.reason;
    const canceller = this.#registry.canceller;
    for (const ticket of tickets) if (!ticket.settled) canceller.cancel(ticket, reason);
    canceller.cancelled();
  }
}

export class SignalRegistry {
  readonly #groups = new Map<AbortSignal, SignalGroup>();
  /** The group used last: items in a row usually share their signal. */
  #last: SignalGroup | undefined = undefined;
  readonly canceller: Canceller;

  constructor(canceller: Canceller) {
    this.canceller = canceller;
  }

  /** Distinct signals with a listener now. */
  get size(): number {
    return this.#groups.size;
  }

  /** Whether `signal` is the last one added and still has its listener: then it has not aborted. */
  listening(signal: unknown): boolean {
    const last = this.#last;
    return last !== undefined && last.signal === signal && last.live;
  }

  add(ticket: Ticket, signal: AbortSignal): void {
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
    group.add(ticket);
  }

  /** Called by a group that emptied or fired: forget it and drop its listener. */
  release(group: SignalGroup): void {
    if (!group.live) return;
    group.live = false;
    if (this.#last === group) this.#last = undefined;
    this.#groups.delete(group.signal);
    group.signal.removeEventListener("abort", group);
  }
}

// -----------------------------------------------------------------------------------------------
// Timeouts: one timer for all of them.

/**
 * The tickets with one timeout duration, in arrival order, so their deadlines only grow: adding
 * and removing are O(1), and the earliest deadline is the head's. (Node groups its own timers
 * by duration the same way.)
 */
class TimeoutList {
  heapIndex = -1;
  /** False once emptied and forgotten. */
  live = true;
  head: Ticket | undefined = undefined;
  tail: Ticket | undefined = undefined;
  readonly duration: number;
  readonly schedule: TimeoutSchedule;

  constructor(duration: number, schedule: TimeoutSchedule) {
    this.duration = duration;
    this.schedule = schedule;
  }
}

export type { TimeoutList };

/**
 * Every pending item timeout behind one `DeadlineTimer`: lists by duration, and a heap of the
 * lists by their earliest deadline. A uniform timeout is one list: O(1) per item, one timer.
 */
export class TimeoutSchedule {
  readonly #lists = new Map<number, TimeoutList>();
  /** The list used last: items in a row usually share their timeout. */
  #last: TimeoutList | undefined = undefined;
  /** The deadline computed last, for `#deadlineNow + #deadlineDuration`: one per tick, shared. */
  #deadline = 0;
  #deadlineNow = Number.NaN;
  #deadlineDuration = Number.NaN;
  readonly #heap = new IndexedHeap<TimeoutList>(
    (a, b) => (a.head as Ticket).deadline < (b.head as Ticket).deadline,
  );
  readonly #time: TickClock;
  readonly #timer: DeadlineTimer;
  readonly #canceller: Canceller;

  constructor(time: TickClock, canceller: Canceller) {
    this.#time = time;
    this.#canceller = canceller;
    this.#timer = new DeadlineTimer(time, () => this.#fire());
  }

  /** Tickets with a pending timeout. */
  size = 0;

  add(ticket: Ticket, duration: number): void {
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
    this.size++;
    const now = this.#time.now();
    if (now !== this.#deadlineNow || duration !== this.#deadlineDuration) {
      this.#deadlineNow = now;
      this.#deadlineDuration = duration;
      this.#deadline = now + duration;
    }
    ticket.deadline = this.#deadline;
    ticket.timeoutList = list;
    ticket.timeoutPrev = list.tail;
    if (list.tail === undefined) list.head = ticket;
    else list.tail.timeoutNext = ticket;
    list.tail = ticket;
    if (fresh) {
      this.#heap.push(list);
      this.#timer.arm(ticket.deadline);
    }
  }

  remove(ticket: Ticket): void {
    const list = ticket.timeoutList;
    if (list === undefined) return;
    const { timeoutPrev: prev, timeoutNext: next } = ticket;
    if (prev === undefined) list.head = next;
    else prev.timeoutNext = next;
    if (next === undefined) list.tail = prev;
    else next.timeoutPrev = prev;
    this.size--;
    ticket.timeoutList = undefined;
    ticket.timeoutPrev = undefined;
    ticket.timeoutNext = undefined;
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

  #fire(): void {
    const now = this.#time.now();
    let expired = false;
    for (;;) {
      const list = this.#heap.peek();
      if (list === undefined) break;
      const ticket = list.head as Ticket;
      if (ticket.deadline > now + EPSILON_MS) {
        this.#timer.arm(ticket.deadline);
        break;
      }
      this.remove(ticket);
      this.#canceller.cancel(ticket, new ItemTimeoutError(list.duration));
      expired = true;
    }
    if (expired) this.#canceller.cancelled();
  }
}
