import { describe } from "../options.js";

type Listener<E> = (event: E) => void;

/**
 * Typed events without `node:events`: the core runs on any runtime. Listener lists are replaced,
 * never changed in place, so an `emit` in progress calls exactly the listeners it started with
 * (minus those removed meanwhile). A listener that throws never reaches the batcher: what it
 * threw goes to `onError`, and the other listeners still run.
 */
export class Emitter<Events extends object> {
  readonly #names: readonly (keyof Events)[];
  readonly #onError: (error: unknown, name: keyof Events) => void;
  /** Listeners by event name; a name without listeners is absent, so `has` is one lookup. */
  #listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};
  /** Events with at least one listener: the engine checks this before building an event. */
  count = 0;

  constructor(
    names: readonly (keyof Events)[],
    onError: (error: unknown, name: keyof Events) => void,
  ) {
    this.#names = names;
    this.#onError = onError;
  }

  /** Subscribes; returns the function that unsubscribes (calling it again does nothing). */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    if (!this.#names.includes(name)) {
      throw new TypeError(
        `unknown event ${describe(name)}: the events are ${this.#names.join(", ")}`,
      );
    }
    if (typeof listener !== "function") {
      throw new TypeError(`listener must be a function, got ${describe(listener)}`);
    }
    // Each subscription is its own entry, so the same function subscribed twice runs twice.
    const entry: Listener<Events[K]> = (event) => listener(event);
    const list = this.#listeners[name];
    this.#listeners[name] = list === undefined ? [entry] : [...list, entry];
    this.count++;
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      const current = this.#listeners[name] as Listener<Events[K]>[];
      const rest = current.filter((l) => l !== entry);
      if (rest.length === 0) delete this.#listeners[name];
      else this.#listeners[name] = rest;
      this.count--;
    };
  }

  has(name: keyof Events): boolean {
    return this.#listeners[name] !== undefined;
  }

  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const list = this.#listeners[name];
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      const listener = list[i] as Listener<Events[K]>;
      // Removed by an earlier listener of this same emit: skip it.
      if (i > 0 && !this.#listeners[name]?.includes(listener)) continue;
      try {
        listener(event);
      } catch (error) {
        try {
          this.#onError(error, name);
        } catch {
          // Reporting must not break the batcher either.
        }
      }
    }
  }
}
