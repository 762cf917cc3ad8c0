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

  get limit(): ResolvedRateLimit {
    return this.#limit;
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

  /**
   * When `allowance()` reaches `needed` (at most `limit.items`) again. Only call after it was
   * below that.
   */
  nextAt(needed = 1): number {
    const limit = this.#limit;
    const times = this.#times;
    const counts = this.#counts;
    const interval = limit.interval;
    let at = Number.NEGATIVE_INFINITY;
    const inWindow = times.length - this.#head;
    // Enough batches must leave the window that fewer than `batches` remain.
    if (inWindow >= limit.batches) {
      at = (times[times.length - limit.batches] as number) + interval;
    }
    // Enough items must leave that `needed` more fit.
    let items = this.#items;
    for (let i = this.#head; i < times.length && items > limit.items - needed; i++) {
      items -= counts[i] as number;
      at = Math.max(at, (times[i] as number) + interval);
    }
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
