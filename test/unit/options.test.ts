/**
 * Options: every value is checked at construction (TypeError for a wrong type, RangeError for a
 * wrong number, naming the option and what it got), the defaults are frozen and in effect.
 */
import {
  AsyncBatcher,
  type BatcherOptions,
  BatcherStoppedError,
  createBatcher,
  DEFAULTS,
  type StopOptions,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class Echo extends AsyncBatcher<number, number> {
  processBatch(batch: number[]): number[] {
    return batch;
  }
}

const echo = (batch: number[]) => batch;

/** The error `construct` throws, checked to be an instance of `kind` naming `option`. */
function thrownBy(construct: () => unknown, kind: new (message?: string) => Error): Error {
  let caught: unknown;
  try {
    construct();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(kind);
  // a RangeError is not a TypeError and the other way round: the class says which rule broke
  expect(caught).not.toBeInstanceOf(kind === RangeError ? TypeError : RangeError);
  return caught as Error;
}

/** Both ways to build a batcher, so that each check runs against both. */
const constructors = [
  { via: "a subclass", make: (options: unknown) => new Echo(options as BatcherOptions) },
  {
    via: "createBatcher",
    make: (options: unknown) => createBatcher(echo, options as BatcherOptions),
  },
];

describe.each(constructors)("validation at construction, via $via", ({ make }) => {
  describe.each(["maxBatchSize", "concurrency", "maxQueueSize"])("%s", (option) => {
    it.each([0, -1, -Infinity, Number.NaN, 1.5, 0.5, -0.5, 1e-9])("RangeError for %s", (value) => {
      const error = thrownBy(() => make({ [option]: value }), RangeError);
      expect(error.message).toMatch(option);
      expect(error.message).toContain(String(value));
    });

    it.each([
      { value: "5", shows: '"5"' },
      { value: "Infinity", shows: '"Infinity"' },
      { value: null, shows: "null" },
      { value: {}, shows: "object" },
      { value: [3], shows: "array" },
      { value: true, shows: "true" },
      { value: 5n, shows: "5" },
      { value: () => 5, shows: "function" },
    ])("TypeError for $value", ({ value, shows }) => {
      const error = thrownBy(() => make({ [option]: value }), TypeError);
      expect(error.message).toMatch(option);
      expect(error.message).toContain(shows);
    });

    it.each([1, 2, 1000, Number.MAX_SAFE_INTEGER, Infinity, undefined])(
      "accepts %s",
      async (value) => {
        const batcher = make({ [option]: value });
        expect(batcher).toBeInstanceOf(AsyncBatcher);
        await batcher.stop();
      },
    );
  });

  describe("maxQueueTime", () => {
    it.each([-1, -0.5, -Infinity, Number.NaN])("RangeError for %s", (value) => {
      const error = thrownBy(() => make({ maxQueueTime: value }), RangeError);
      expect(error.message).toMatch(/maxQueueTime/);
      expect(error.message).toContain(String(value));
    });

    it.each([
      { value: "10", shows: '"10"' },
      { value: null, shows: "null" },
      { value: {}, shows: "object" },
      { value: false, shows: "false" },
      { value: 10n, shows: "10" },
    ])("TypeError for $value", ({ value, shows }) => {
      const error = thrownBy(() => make({ maxQueueTime: value }), TypeError);
      expect(error.message).toMatch(/maxQueueTime/);
      expect(error.message).toContain(shows);
    });

    it.each([0, 0.5, 1, 10, 2000, Infinity, undefined])("accepts %s", async (value) => {
      const batcher = make({ maxQueueTime: value });
      expect(batcher).toBeInstanceOf(AsyncBatcher);
      await batcher.stop();
    });
  });

  describe.each([
    { option: "name", bad: [42, null, {}, true, Symbol("name")] },
    { option: "logger", bad: ["console.log", 42, null, {}, true] },
    {
      option: "clock",
      bad: [
        42,
        "clock",
        null,
        {},
        () => 0,
        { now: () => 0, setTimeout: () => 0 },
        { now: 0, setTimeout: () => 0, clearTimeout: () => {} },
      ] as unknown[],
    },
  ])("$option", ({ option, bad }) => {
    it.each(bad.map((value) => ({ value })))("TypeError for $value", ({ value }) => {
      const error = thrownBy(() => make({ [option]: value }), TypeError);
      expect(error.message).toMatch(option);
    });
  });

  it("accepts a name, a logger and a clock of the right types", async () => {
    const batcher = make({
      name: "ok",
      logger: () => {},
      clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} },
    });
    expect(batcher.name).toBe("ok");
    await batcher.stop();
  });

  it.each([42, "maxBatchSize: 5", true])("TypeError when the options are %s", (value) => {
    const error = thrownBy(() => make(value), TypeError);
    expect(error.message).toMatch(/options/);
  });

  it("checks every option, not only the first", () => {
    // each bad option alone throws, whatever its neighbours are
    const good = { maxBatchSize: 2, maxQueueTime: 5, concurrency: 3, maxQueueSize: 100 };
    for (const option of Object.keys(good)) {
      const error = thrownBy(() => make({ ...good, [option]: -1 }), RangeError);
      expect(error.message).toMatch(option);
    }
  });
});

describe("createBatcher", () => {
  it.each([undefined, null, 42, "batch => batch", {}, { processBatch: echo }])(
    "throws a TypeError when processBatch is %s",
    (value) => {
      const error = thrownBy(() => createBatcher(value as never), TypeError);
      expect(error.message).toMatch(/processBatch/);
    },
  );

  it("does not touch the options object it is given", async () => {
    const options = Object.freeze({ maxBatchSize: 2, maxQueueTime: 5 });
    const batcher = createBatcher(echo, options);
    expect(options).toEqual({ maxBatchSize: 2, maxQueueTime: 5 });
    await batcher.stop();
  });
});

describe("stop() options", () => {
  it.each([
    { options: { force: "yes" }, kind: TypeError, names: /force/ },
    { options: { force: 1 }, kind: TypeError, names: /force/ },
    { options: { force: null }, kind: TypeError, names: /force/ },
    { options: { timeout: "10" }, kind: TypeError, names: /timeout/ },
    { options: { timeout: null }, kind: TypeError, names: /timeout/ },
    { options: { timeout: -1 }, kind: RangeError, names: /timeout/ },
    { options: { timeout: Number.NaN }, kind: RangeError, names: /timeout/ },
    { options: { timeout: -Infinity }, kind: RangeError, names: /timeout/ },
    { options: 42, kind: TypeError, names: /options/ },
    { options: "force", kind: TypeError, names: /options/ },
    { options: null, kind: TypeError, names: /options/ },
  ])(
    "stop($options) rejects with $kind.name, without throwing, and does not stop",
    async ({ options, kind, names }) => {
      const batcher = new Echo({ maxQueueTime: 0 });
      const pending = batcher.process(1);
      let stopping: Promise<void> | undefined;
      expect(() => {
        stopping = batcher.stop(options as StopOptions);
      }).not.toThrow();
      expect(stopping).toBeInstanceOf(Promise);
      const error = await (stopping as Promise<void>).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(kind);
      expect((error as Error).message).toMatch(names);
      // the bad call did not stop the batcher: it still serves, and a proper stop still works
      expect(batcher.isRunning).toBe(true);
      await expect(pending).resolves.toBe(1);
      await expect(batcher.process(2)).resolves.toBe(2);
      await batcher.stop();
      expect(batcher.isRunning).toBe(false);
      await expect(batcher.process(3)).rejects.toBeInstanceOf(BatcherStoppedError);
    },
  );

  it.each([
    {},
    { force: false },
    { force: true },
    { timeout: 0 },
    { timeout: Infinity },
    undefined,
  ])("accepts %o", async (options) => {
    const batcher = new Echo();
    await expect(batcher.stop(options)).resolves.toBeUndefined();
  });
});

describe("DEFAULTS", () => {
  it("holds the documented defaults", () => {
    expect(DEFAULTS).toEqual({
      maxBatchSize: Infinity,
      maxQueueTime: 10,
      concurrency: 1,
      maxQueueSize: Infinity,
      onQueueFull: "reject",
      itemTimeout: Infinity,
      maxBatchWeight: Infinity,
      onMissingResult: "reject",
      retryDelay: 100,
    });
  });

  it("is frozen", () => {
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    expect(() => {
      (DEFAULTS as { concurrency: number }).concurrency = 5;
    }).toThrow(TypeError);
    expect(DEFAULTS.concurrency).toBe(1);
  });
});

describe("the defaults in effect", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    { how: "no options", options: undefined },
    { how: "empty options", options: {} },
    { how: "every option undefined", options: { maxQueueTime: undefined, concurrency: undefined } },
  ])("maxQueueTime is 10 ms with $how", async ({ options }) => {
    const fn = vi.fn((batch: number[]) => batch);
    const batcher = createBatcher(fn, options);
    const first = batcher.process(1);
    await vi.advanceTimersByTimeAsync(5);
    const second = batcher.process(2); // joins the batch: the clock runs from the oldest item
    await vi.advanceTimersByTimeAsync(4);
    expect(fn).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(fn.mock.calls[0]?.[0]).toEqual([1, 2]);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    await batcher.stop();
  });

  it("concurrency is 1: one batch at a time", async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const batcher = createBatcher(
      async (batch: number[]) => {
        started.push(Date.now());
        running++;
        most = Math.max(most, running);
        await sleep(100);
        running--;
        return batch;
      },
      { maxBatchSize: 1 },
    );
    const results = Promise.all(range(0, 3).map((i) => batcher.process(i)));
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual([0]);
    await vi.advanceTimersByTimeAsync(300);
    expect(await results).toEqual([0, 1, 2]);
    expect(started).toEqual([0, 100, 200]);
    expect(most).toBe(1);
    await batcher.stop();
  });

  it("maxBatchSize and maxQueueSize are unbounded: 10 000 items, one batch", async () => {
    const fn = vi.fn((batch: number[]) => batch.map((x) => -x));
    const batcher = createBatcher(fn);
    const results = Promise.all(range(0, 10_000).map((i) => batcher.process(i)));
    expect(batcher.queueSize).toBe(10_000);
    await vi.advanceTimersByTimeAsync(10);
    expect(await results).toEqual(range(0, 10_000).map((i) => -i));
    expect(fn).toHaveBeenCalledTimes(1);
    expect(fn.mock.calls[0]?.[0]).toHaveLength(10_000);
    await batcher.stop();
  });
});
