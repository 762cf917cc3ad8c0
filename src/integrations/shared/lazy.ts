/**
 * A promise computed once and shared (concurrent callers get the same one), forgotten when it
 * rejects so that the next call tries again.
 */
export class Lazy<T> {
  #promise: Promise<T> | undefined;
  readonly #load: () => Promise<T>;

  constructor(load: () => Promise<T>) {
    this.#load = load;
  }

  get(): Promise<T> {
    let promise = this.#promise;
    if (promise === undefined) {
      promise = this.#load();
      this.#promise = promise;
      const current = promise;
      current.catch(() => {
        if (this.#promise === current) this.#promise = undefined;
      });
    }
    return promise;
  }

  /** Forgets the value: the next `get()` loads again. */
  reset(): void {
    this.#promise = undefined;
  }
}
