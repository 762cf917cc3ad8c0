import type { Batch } from "./batch.js";
import { IndexedHeap } from "./heap.js";
import type { Lane } from "./lane.js";
import type { ItemQueue, Settle } from "./queue.js";
import { DeadlineTimer, EPSILON_MS, type TickClock } from "./timer.js";

/** Where a ticket's item is. */
export enum TicketState {
  /** Waiting for room in the queue (`onQueueFull: "wait"`). */
  Waiting = 0,
  Queued = 1,
  /** In a batch that has been cut. */
  Running = 2,
  Settled = 3,
}

/** Cancels a ticket's item: called when its signal aborts or its timeout passes. */
export type Cancel = (ticket: Ticket, reason: unknown) => void;

/**
 * An item that needs more than its caller's resolve function: one with a signal or a timeout, or
 * one waiting for room in the queue. Items without these have no ticket and pay nothing.
 *
 * In the queue and in a batch, the ticket stands where the resolve function would (see `Entry`).
 * Settling it detaches it from its signal and its timeout, so nothing outlives the caller.
 */
export class Ticket {
  state = TicketState.Waiting;
  readonly #resolve: Settle;

  /** Held while waiting for room only; a queued item lives in its queue. */
  item: unknown;
  readonly priority: number;
  readonly key: string | number | undefined;
  readonly weight: number;

  /** While queued: its lane and queue, and the item's position in that queue. */
  lane: Lane<unknown> | undefined = undefined;
  queue: ItemQueue<unknown> | undefined = undefined;
  pos = 0;
  /** While running: its batch. */
  batch: Batch<unknown> | undefined = undefined;

  group: SignalGroup | undefined = undefined;
  groupPrev: Ticket | undefined = undefined;
  groupNext: Ticket | undefined = undefined;

  timeoutList: TimeoutList | undefined = undefined;
  timeoutPrev: Ticket | undefined = undefined;
  timeoutNext: Ticket | undefined = undefined;
  /** Clock time the timeout passes at. */
  deadline = Number.POSITIVE_INFINITY;

  constructor(
    resolve: Settle,
    item: unknown,
    priority: number,
    key: string | number | undefined,
    weight: number,
  ) {
    this.#resolve = resolve;
    this.item = item;
    this.priority = priority;
    this.key = key;
    this.weight = weight;
  }

  get settled(): boolean {
    return this.state === TicketState.Settled;
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
    this.item = undefined;
    this.lane = undefined;
    this.queue = undefined;
    this.batch = undefined;
    this.group?.remove(this);
    this.timeoutList?.schedule.remove(this);
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
    const cancel = this.#registry.cancel;
    for (const ticket of tickets) if (!ticket.settled) cancel(ticket, reason);
  }
}

export class SignalRegistry {
  readonly #groups = new Map<AbortSignal, SignalGroup>();
  readonly cancel: Cancel;

  constructor(cancel: Cancel) {
    this.cancel = cancel;
  }

  /** Distinct signals with a listener now. */
  get size(): number {
    return this.#groups.size;
  }

  add(ticket: Ticket, signal: AbortSignal): void {
    let group = this.#groups.get(signal);
    if (group === undefined) {
      group = new SignalGroup(signal, this);
      this.#groups.set(signal, group);
      signal.addEventListener("abort", group, { once: true });
    }
    group.add(ticket);
  }

  /** Called by a group that emptied or fired: forget it and drop its listener. */
  release(group: SignalGroup): void {
    if (this.#groups.get(group.signal) !== group) return;
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
  readonly #heap = new IndexedHeap<TimeoutList>(
    (a, b) => (a.head as Ticket).deadline < (b.head as Ticket).deadline,
  );
  readonly #time: TickClock;
  readonly #timer: DeadlineTimer;
  readonly #expire: (ticket: Ticket, duration: number) => void;

  constructor(time: TickClock, expire: (ticket: Ticket, duration: number) => void) {
    this.#time = time;
    this.#expire = expire;
    this.#timer = new DeadlineTimer(time, () => this.#fire());
  }

  /** Tickets with a pending timeout. */
  size = 0;

  add(ticket: Ticket, duration: number): void {
    let list = this.#lists.get(duration);
    const fresh = list === undefined;
    if (list === undefined) {
      list = new TimeoutList(duration, this);
      this.#lists.set(duration, list);
    }
    this.size++;
    ticket.deadline = this.#time.now() + duration;
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
      this.#heap.remove(list);
      this.#lists.delete(list.duration);
      if (this.#heap.size === 0) this.#timer.clear(); // hold no timer for nothing
    } else {
      this.#heap.update(list);
    }
  }

  #fire(): void {
    const now = this.#time.now();
    for (;;) {
      const list = this.#heap.peek();
      if (list === undefined) return;
      const ticket = list.head as Ticket;
      if (ticket.deadline > now + EPSILON_MS) {
        this.#timer.arm(ticket.deadline);
        return;
      }
      this.remove(ticket);
      this.#expire(ticket, list.duration);
    }
  }
}
