import type { ResolvedRateLimit } from "../options.js";
import { EPSILON_MS } from "./timer.js";

/**
 * A rolling-window quota: the batches started in the last `interval` ms, with their sizes. A
 * dispatch at time `t` counts until `t + interval` (excluded).
 */
export class RateWindow {
  #limit: ResolvedRateLimit;
  #times: number[] = [];
  #counts: number[] = [];
  #head = 0;
  /** Items in the batches of the window. */
  #items = 0;

  constructor(limit: ResolvedRateLimit) {
    this.#limit = limit;
  }

  set limit(limit: ResolvedRateLimit) {
    this.#limit = limit;
  }

  /** How many items a batch started at `now` may hold: 0 when no batch may start. */
  allowance(now: number): number {
    this.#prune(now);
    const limit = this.#limit;
    if (this.#times.length - this.#head >= limit.batches) return 0;
    return Math.max(limit.items - this.#items, 0);
  }

  record(now: number, count: number): void {
    this.#times.push(now);
    this.#counts.push(count);
    this.#items += count;
  }

  /** When `allowance()` turns positive again. Only call after it returned 0. */
  nextAt(): number {
    const limit = this.#limit;
    const times = this.#times;
    const interval = limit.interval;
    let at = Number.NEGATIVE_INFINITY;
    const inWindow = times.length - this.#head;
    // Enough batches must leave the window that fewer than `batches` remain.
    if (inWindow >= limit.batches) {
      at = (times[times.length - limit.batches] as number) + interval;
    }
    // Items: every entry holds at least one, so the first to leave frees some.
    if (this.#items >= limit.items) at = Math.max(at, (times[this.#head] as number) + interval);
    return at;
  }

  #prune(now: number): void {
    const times = this.#times;
    const counts = this.#counts;
    const start = now - this.#limit.interval + EPSILON_MS;
    let head = this.#head;
    while (head < times.length && (times[head] as number) <= start) {
      this.#items -= counts[head] as number;
      head++;
    }
    if (head === times.length) {
      times.length = 0;
      counts.length = 0;
      head = 0;
      this.#items = 0;
    } else if (head >= 1024 && head * 2 >= times.length) {
      times.splice(0, head);
      counts.splice(0, head);
      head = 0;
    }
    this.#head = head;
  }
}
