/**
 * The two small internals behind issue 4's observability, tested directly: the fixed-memory
 * log-linear `Histogram` that feeds `stats()` (exact count, sum, min and max; percentiles within
 * 1/32 of the exact nearest-rank value; integer percentiles for batch sizes; bounded memory), and
 * the typed `Emitter` behind `on()` (validation, order, isolation, unsubscribing mid-emit).
 */
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { Emitter } from "../../src/internal/emitter.js";
import { HISTOGRAM_BUCKETS, Histogram } from "../../src/internal/histogram.js";

const PERCENTILES = [
  ["p50", 50],
  ["p90", 90],
  ["p99", 99],
] as const;

/** The exact nearest-rank percentile `p` (in %) of `values`: the ceil(p·n/100)-th smallest. */
function nearestRank(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  // p·n is an integer, so the division is exact whenever the rank is a whole number.
  const rank = Math.max(1, Math.ceil((p * sorted.length) / 100));
  return sorted[rank - 1] as number;
}

function filled(values: readonly number[], integers = false): Histogram {
  const histogram = new Histogram(integers);
  for (const value of values) histogram.record(value);
  return histogram;
}

/** Smallest and largest value with its own buckets: below and above, values share one bucket. */
const LOWEST = 2 ** -10;
const HIGHEST = 2 ** 40;

/** Values from about a microsecond to about 12 days (in ms), spread over every power of two. */
const inRange = fc.oneof(
  fc.double({ min: LOWEST, max: HIGHEST, maxExcluded: true, noNaN: true }),
  // Log-uniform, so every magnitude is as likely as any other.
  fc
    .double({ min: -10, max: 40, maxExcluded: true, noNaN: true })
    .map((e) => Math.min(2 ** e, HIGHEST - 2 ** 20)),
  // Powers of two and their neighbours: where a value changes power.
  fc.tuple(fc.integer({ min: -10, max: 39 }), fc.constantFrom(-1, 0, 1)).map(([e, step]) => {
    const v = 2 ** e;
    const ulp = v * Number.EPSILON;
    return Math.min(Math.max(v + step * ulp, LOWEST), HIGHEST - 2 ** 20);
  }),
  fc.integer({ min: 1, max: 1_000_000 }),
);

describe("Histogram", () => {
  it("reports all zeros when nothing was recorded", () => {
    expect(new Histogram().snapshot()).toStrictEqual({
      count: 0,
      sum: 0,
      min: 0,
      max: 0,
      mean: 0,
      p50: 0,
      p90: 0,
      p99: 0,
    });
    expect(new Histogram(true).snapshot()).toStrictEqual(new Histogram().snapshot());
    expect(new Histogram().quantile(0.5)).toBe(0);
  });

  it("keeps count, sum, min, max and mean exact", () => {
    const snapshot = filled([3, 1.5, 7, 0.25, 1000.125]).snapshot();
    expect(snapshot.count).toBe(5);
    expect(snapshot.sum).toBe(1011.875);
    expect(snapshot.min).toBe(0.25);
    expect(snapshot.max).toBe(1000.125);
    expect(snapshot.mean).toBe(1011.875 / 5);
  });

  it("gives the value itself as every percentile of a single value (clamped to min and max)", () => {
    for (const value of [0, 1e-9, 0.3, 10, 12345.678, 2 ** 45]) {
      const snapshot = filled([value]).snapshot();
      expect([snapshot.p50, snapshot.p90, snapshot.p99], String(value)).toEqual([
        value,
        value,
        value,
      ]);
    }
  });

  it("records a negative value or NaN as 0", () => {
    const snapshot = filled([-5, Number.NaN, -0.001]).snapshot();
    expect(snapshot).toStrictEqual({
      count: 3,
      sum: 0,
      min: 0,
      max: 0,
      mean: 0,
      p50: 0,
      p90: 0,
      p99: 0,
    });
    const mixed = filled([-1, Number.NaN, 4]).snapshot();
    expect([mixed.count, mixed.sum, mixed.min, mixed.max]).toEqual([3, 4, 0, 4]);
  });

  // A batch cut by size waits 0 ms, and a synchronous batch function takes 0 ms on a fake clock:
  // 0 is a common value, and its exact percentile is 0. Relative error 1/32 of 0 is 0.
  it("reports a percentile that falls on recorded zeros as 0, next to larger values", () => {
    const snapshot = filled([0, 0, 0, 4]).snapshot();
    expect(snapshot.p50).toBe(0);
    expect(snapshot.p90).toBe(4);
  });

  it("finds p50, p90 and p99 of 1..100 within 1/32", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    const snapshot = filled(values).snapshot();
    for (const [field, p] of PERCENTILES) {
      expect(Math.abs(snapshot[field] - p) / p, field).toBeLessThanOrEqual(1 / 32);
    }
  });

  it("keeps percentiles within 1/32 of the exact nearest-rank percentile, at any magnitude", () => {
    fc.assert(
      fc.property(fc.array(inRange, { minLength: 1, maxLength: 300 }), (values) => {
        const snapshot = filled(values).snapshot();
        for (const [field, p] of PERCENTILES) {
          const exact = nearestRank(values, p);
          const error = Math.abs(snapshot[field] - exact) / exact;
          // 1/32 plus float noise: a value a few ulps below 2^k may land in 2^k's first bucket.
          expect(error, `${field} of [${values}]`).toBeLessThanOrEqual((1 / 32) * (1 + 1e-12));
        }
        expect(snapshot.count).toBe(values.length);
        expect(snapshot.min).toBe(Math.min(...values));
        expect(snapshot.max).toBe(Math.max(...values));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps percentiles between min and max for values outside the bucketed range", () => {
    // Below 2^-10 and from 2^40 up, values share one bucket each: coarse, but never out of range.
    const tiny = filled([1e-9, 2e-9, 3e-9]).snapshot();
    for (const [field] of PERCENTILES) {
      expect(tiny[field]).toBeGreaterThanOrEqual(1e-9);
      expect(tiny[field]).toBeLessThanOrEqual(3e-9);
    }
    const huge = filled([2 ** 41, 2 ** 42, 2 ** 43]).snapshot();
    for (const [field] of PERCENTILES) {
      expect(huge[field]).toBeGreaterThanOrEqual(2 ** 41);
      expect(huge[field]).toBeLessThanOrEqual(2 ** 43);
    }
  });

  describe("integer mode (batch sizes)", () => {
    it("gives each integer below 32 exactly", () => {
      for (let n = 0; n < 32; n++) {
        const snapshot = filled([n, n, n, 31], true).snapshot();
        expect([snapshot.p50, snapshot.p90, snapshot.p99], `n = ${n}`).toEqual([n, 31, 31]);
      }
    });

    it("gives 1..10 exactly", () => {
      const snapshot = filled([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], true).snapshot();
      expect([snapshot.p50, snapshot.p90, snapshot.p99]).toEqual([5, 9, 10]);
      expect([snapshot.count, snapshot.sum, snapshot.min, snapshot.max, snapshot.mean]).toEqual([
        10, 55, 1, 10, 5.5,
      ]);
    });

    it("returns integers no larger than the exact percentile and within its bucket (1/16)", () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 200 }),
          (values) => {
            const snapshot = filled(values, true).snapshot();
            for (const [field, p] of PERCENTILES) {
              const exact = nearestRank(values, p);
              const value = snapshot[field];
              expect(Number.isInteger(value), `${field} ${value}`).toBe(true);
              expect(value, field).toBeLessThanOrEqual(exact);
              expect(exact - value, field).toBeLessThanOrEqual(exact / 16);
              if (exact < 32) expect(value, field).toBe(exact);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe("memory", () => {
    it("has at most 801 buckets, as documented", () => {
      expect(HISTOGRAM_BUCKETS).toBe(801);
    });

    /**
     * The counts array is private and there is no accessor: its length is observed by watching
     * `Array.prototype.push`, the only way it grows, while values are recorded.
     */
    function longestArrayWhile(run: () => void): number {
      const push = Array.prototype.push;
      let longest = 0;
      // Patched by hand: a vitest spy would push to its own arrays from inside the patch.
      Array.prototype.push = function (this: unknown[], ...items: unknown[]) {
        const length = push.apply(this, items);
        if (length > longest) longest = length;
        return length;
      };
      try {
        run();
      } finally {
        Array.prototype.push = push;
      }
      return longest;
    }

    it("never holds more than HISTOGRAM_BUCKETS counts, after a million values from 1e-6 to 1e12", () => {
      const histogram = new Histogram();
      // A fixed-seed generator: the test is the same every run.
      let seed = 42;
      const random = () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const values: number[] = [];
      for (let i = 0; i < 1_000_000; i++) values.push(10 ** (-6 + 18 * random()));
      const longest = longestArrayWhile(() => {
        for (const value of values) histogram.record(value);
      });
      expect(longest).toBeGreaterThan(0);
      expect(longest).toBeLessThanOrEqual(HISTOGRAM_BUCKETS);
      const snapshot = histogram.snapshot();
      expect(snapshot.count).toBe(1_000_000);
      expect(snapshot.min).toBe(values.reduce((a, b) => Math.min(a, b)));
      expect(snapshot.max).toBe(values.reduce((a, b) => Math.max(a, b)));
    });

    it("uses exactly HISTOGRAM_BUCKETS counts for the largest values, and no more beyond", () => {
      const histogram = new Histogram();
      const longest = longestArrayWhile(() => {
        for (const value of [2 ** 40, 1e15, Number.MAX_VALUE, Number.POSITIVE_INFINITY]) {
          histogram.record(value);
        }
      });
      expect(longest).toBe(HISTOGRAM_BUCKETS);
      expect(histogram.count).toBe(4);
    });

    it("allocates only up to the largest bucket used", () => {
      const longest = longestArrayWhile(() => {
        filled([0, 0.0001, 1]);
      });
      // 1 is in bucket 1 + 10·16 = 161: 162 counts.
      expect(longest).toBe(162);
    });
  });
});

// -------------------------------------------------------------------------------------------------

interface TestEvents {
  a: { n: number };
  b: string;
}

function emitter() {
  const errors: [unknown, keyof TestEvents][] = [];
  const events = new Emitter<TestEvents>(["a", "b"], (error, name) => errors.push([error, name]));
  return { events, errors };
}

describe("Emitter", () => {
  it("rejects an unknown name or a listener that is not a function with a TypeError", () => {
    const { events } = emitter();
    expect(() => events.on("c" as "a", () => {})).toThrow(TypeError);
    expect(() => events.on("a", 42 as unknown as () => void)).toThrow(TypeError);
    expect(() => events.on("a", undefined as unknown as () => void)).toThrow(TypeError);
    expect(events.count).toBe(0);
    expect(events.has("a")).toBe(false);
  });

  it("calls the listeners of one name, in subscription order, with the event itself", () => {
    const { events } = emitter();
    const seen: string[] = [];
    const event = { n: 1 };
    events.on("a", (e) => seen.push(`first ${e === event}`));
    events.on("b", (e) => seen.push(`b ${e}`));
    events.on("a", (e) => seen.push(`second ${e.n}`));
    events.emit("a", event);
    expect(seen).toEqual(["first true", "second 1"]);
    events.emit("b", "x");
    expect(seen).toEqual(["first true", "second 1", "b x"]);
  });

  it("does nothing when a name has no listener", () => {
    const { events, errors } = emitter();
    expect(() => events.emit("a", { n: 1 })).not.toThrow();
    expect(errors).toEqual([]);
  });

  it("counts subscriptions and knows which names have listeners", () => {
    const { events } = emitter();
    const offA = events.on("a", () => {});
    const offB = events.on("b", () => {});
    expect([events.count, events.has("a"), events.has("b")]).toEqual([2, true, true]);
    offA();
    expect([events.count, events.has("a"), events.has("b")]).toEqual([1, false, true]);
    offB();
    expect([events.count, events.has("a"), events.has("b")]).toEqual([0, false, false]);
  });

  it("unsubscribes once: calling the function again changes nothing", () => {
    const { events } = emitter();
    const seen: string[] = [];
    const off = events.on("a", () => seen.push("gone"));
    events.on("a", () => seen.push("kept"));
    off();
    off();
    off();
    expect(events.count).toBe(1);
    expect(events.has("a")).toBe(true);
    events.emit("a", { n: 1 });
    expect(seen).toEqual(["kept"]);
  });

  it("runs a function subscribed twice twice; unsubscribing one leaves the other", () => {
    const { events } = emitter();
    const listener = vi.fn();
    const offFirst = events.on("a", listener);
    events.on("a", listener);
    events.emit("a", { n: 1 });
    expect(listener).toHaveBeenCalledTimes(2);
    offFirst();
    offFirst();
    events.emit("a", { n: 2 });
    expect(listener).toHaveBeenCalledTimes(3);
    expect(listener).toHaveBeenLastCalledWith({ n: 2 });
  });

  it("reports what a listener throws to onError, with the name, and runs the others", () => {
    const { events, errors } = emitter();
    const boom = new Error("listener");
    const seen: string[] = [];
    events.on("b", () => {
      throw boom;
    });
    events.on("b", (e) => seen.push(e));
    events.emit("b", "x");
    expect(seen).toEqual(["x"]);
    expect(errors).toEqual([[boom, "b"]]);
  });

  it("survives an onError that throws", () => {
    const events = new Emitter<TestEvents>(["a", "b"], () => {
      throw new Error("reporting failed");
    });
    const seen: number[] = [];
    events.on("a", () => {
      throw new Error("listener");
    });
    events.on("a", (e) => seen.push(e.n));
    expect(() => events.emit("a", { n: 7 })).not.toThrow();
    expect(seen).toEqual([7]);
  });

  it("skips a listener removed by an earlier one during the same emit", () => {
    const { events } = emitter();
    const seen: string[] = [];
    let offThird: () => void = () => {};
    events.on("a", () => {
      seen.push("first");
      offThird();
    });
    events.on("a", () => seen.push("second"));
    offThird = events.on("a", () => seen.push("third"));
    events.emit("a", { n: 1 });
    expect(seen).toEqual(["first", "second"]);
    events.emit("a", { n: 2 });
    expect(seen).toEqual(["first", "second", "first", "second"]);
  });

  it("skips a listener removed during the emit even when it was the last one of its name", () => {
    const { events } = emitter();
    const seen: string[] = [];
    let offFirst: () => void = () => {};
    let offSecond: () => void = () => {};
    offFirst = events.on("a", () => {
      seen.push("first");
      offFirst();
      offSecond();
    });
    offSecond = events.on("a", () => seen.push("second"));
    events.emit("a", { n: 1 });
    expect(seen).toEqual(["first"]);
    expect([events.count, events.has("a")]).toEqual([0, false]);
  });

  it("does not call a listener added during an emit until the next emit", () => {
    const { events } = emitter();
    const seen: string[] = [];
    let added = false;
    events.on("a", () => {
      seen.push("first");
      if (!added) {
        added = true;
        events.on("a", () => seen.push("late"));
      }
    });
    events.emit("a", { n: 1 });
    expect(seen).toEqual(["first"]);
    events.emit("a", { n: 2 });
    expect(seen).toEqual(["first", "first", "late"]);
  });

  it("lets a listener unsubscribe itself without disturbing the others", () => {
    const { events } = emitter();
    const seen: string[] = [];
    const off = events.on("a", () => {
      seen.push("once");
      off();
    });
    events.on("a", () => seen.push("always"));
    events.emit("a", { n: 1 });
    events.emit("a", { n: 2 });
    expect(seen).toEqual(["once", "always", "always"]);
  });

  it("lets an emit run inside a listener (re-entrant emit)", () => {
    const { events } = emitter();
    const seen: string[] = [];
    events.on("a", (e) => {
      seen.push(`a${e.n}`);
      if (e.n === 1) events.emit("b", "inner");
    });
    events.on("b", (e) => seen.push(e));
    events.on("a", (e) => seen.push(`a'${e.n}`));
    events.emit("a", { n: 1 });
    expect(seen).toEqual(["a1", "inner", "a'1"]);
  });
});
