import type { Clock } from "./clock.js";

/**
 * Clock readings are fractional, and `(t + 4) - t` may come out as 3.9999999999999996: a deadline
 * closer than this (ms) counts as reached. Without it, float rounding would cut a batch one timer
 * tick late, or re-arm a 0 ms timer forever on a clock that does not move by itself.
 */
export const EPSILON_MS = 1e-6;

/**
 * Host timers have 1 ms resolution and often fire up to a millisecond early. When less than a
 * millisecond is left, the timer waits on the next turns of the event loop instead of a whole
 * extra timer tick (which would make the batch up to 1 ms late); at most this many turns in a
 * row, so a clock that does not move (fake timers) cannot spin forever.
 */
const MAX_TURNS = 1000;

/**
 * The clock, read at most once per tick: every item submitted in one synchronous run shares one
 * reading (a clock read costs about as much as the rest of `process()`). The reading is forgotten
 * on the next microtask, and at every timer callback.
 */
export class TickClock {
  readonly clock: Clock;
  #now = Number.NaN;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  now(): number {
    if (!Number.isNaN(this.#now)) return this.#now;
    const now = this.clock.now();
    this.#now = now;
    queueMicrotask(this.forget);
    return now;
  }

  readonly forget = (): void => {
    this.#now = Number.NaN;
  };
}

/**
 * One timer for the earliest deadline asked for. Asking for a later deadline keeps the earlier
 * timer: it fires early and the owner asks again for what is left. Host timers have 1 ms
 * resolution and may fire a little before the deadline, so the owner checks the clock when it
 * fires.
 */
export class DeadlineTimer {
  readonly #time: TickClock;
  readonly #onFire: () => void;
  #handle: unknown = undefined;
  /** Whether `#handle` is an immediate rather than a timer. */
  #immediate = false;
  /** Immediates in a row for the deadline `#turnsFor`. */
  #turns = 0;
  #turnsFor = Number.NaN;
  /** Clock time the armed timer is due at; `Infinity` when none is armed. */
  #at = Number.POSITIVE_INFINITY;

  constructor(time: TickClock, onFire: () => void) {
    this.#time = time;
    this.#onFire = onFire;
  }

  arm(at: number): void {
    if (this.#at <= at) return;
    this.clear();
    const clock = this.#time.clock;
    this.#at = at;
    const left = at - this.#time.now();
    if (at !== this.#turnsFor) {
      this.#turnsFor = at;
      this.#turns = 0;
    }
    if (left < 1 && clock.setImmediate !== undefined && this.#turns < MAX_TURNS) {
      this.#turns++;
      this.#immediate = true;
      this.#handle = clock.setImmediate(this.#fire);
      return;
    }
    this.#immediate = false;
    this.#handle = clock.setTimeout(this.#fire, Math.max(Math.ceil(left - EPSILON_MS), 0));
  }

  clear(): void {
    if (this.#handle === undefined) return;
    const clock = this.#time.clock;
    if (this.#immediate) clock.clearImmediate?.(this.#handle);
    else clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }

  readonly #fire = (): void => {
    this.#handle = undefined;
    this.#at = Number.POSITIVE_INFINITY;
    this.#time.forget(); // a timer callback is a new tick, even under fake timers
    this.#onFire();
  };
}
