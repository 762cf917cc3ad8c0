import type { Attributes } from "@opentelemetry/api";

/**
 * Attribute sets built once and reused: OpenTelemetry SDKs hash an attribute set on every
 * recording, and a new object per batch would be garbage as well. `extra` is one of a few values
 * (a reason, an outcome), so the cache stays small.
 */
export class AttributeCache {
  readonly base: Attributes;
  readonly #key: string;
  readonly #sets = new Map<string, Attributes>();

  /** `base` is shared by every set; `key` is the attribute that varies. */
  constructor(base: Attributes, key: string) {
    this.base = Object.freeze({ ...base });
    this.#key = key;
  }

  /** `base` plus `key` = `value`. */
  with(value: string): Attributes {
    let set = this.#sets.get(value);
    if (set === undefined) {
      set = Object.freeze({ ...this.base, [this.#key]: value });
      this.#sets.set(value, set);
    }
    return set;
  }
}
