/**
 * The libraries under test, each behind the same small interface: `process(key)` resolves with
 * that key's own result. Peers without per-item results get the smallest adapter that gives them
 * one, and the adapter is part of what is measured.
 *
 * Every peer is loaded with a dynamic import inside its child process, so a process loads only
 * the library it measures. Our library is loaded from the built `dist/index.js`, as users get it.
 */

/** What a scenario asks of a batcher; each subject maps it onto its own library's options. */
export interface BatchSettings {
  maxBatchSize: number;
  /**
   * Ms the oldest item may wait for a partial batch. `0`: as soon as the library can: the end of
   * the current tick where it has that (ours, DataLoader), its shortest timer otherwise.
   */
  maxQueueTime: number;
}

/** The batch function every subject runs: one result per key, in order. */
export type Work = (keys: readonly number[]) => Promise<number[]>;

/** One batcher, as a scenario drives it. */
export interface Instance {
  process(key: number): Promise<number>;
  /** Called between bursts, outside the timed region: drops a cache that would otherwise grow. */
  reset?(): void;
}

export type Factory = (work: Work, settings: BatchSettings) => Instance;

export type SubjectKind = "ours" | "peer" | "floor";

export type SubjectId =
  | "async-batcher"
  | "dataloader"
  | "dataloader-cache"
  | "batshit"
  | "bottleneck"
  | "promise-batcher"
  | "pacer"
  | "floor-promise"
  | "floor-async"
  | "ours-signal"
  | "ours-keys"
  | "ours-priority"
  | "ours-weigh"
  | "ours-keyof"
  | "ours-events";

/** What the report says about a subject; recorded in the results so the report needs nothing else. */
export interface SubjectInfo {
  id: SubjectId;
  label: string;
  kind: SubjectKind;
  /** The npm package measured, if any. */
  package?: string;
  /** What it cannot do, or what its adapter adds. */
  notes: string;
}

export interface Subject extends SubjectInfo {
  /** The options used for `settings`, as a user would write them (for the report). */
  describe(settings: BatchSettings): string;
  /** Loads the library and returns a factory of instances. `distUrl`: our built entry point. */
  load(distUrl: string): Promise<Factory>;
}

interface Deferred {
  key: number;
  resolve: (value: number) => void;
  reject: (error: unknown) => void;
}

/** Settles each deferred with its own result: the per-item results the library itself lacks. */
function settleEach(entries: readonly Deferred[], results: readonly unknown[]): void {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Deferred;
    const value = results[i];
    if (value instanceof Error) entry.reject(value);
    else entry.resolve(value as number);
  }
}

function rejectEach(entries: readonly Deferred[], error: unknown): void {
  for (const entry of entries) entry.reject(error);
}

function keysOf(entries: readonly Deferred[]): number[] {
  const keys = new Array<number>(entries.length);
  for (let i = 0; i < entries.length; i++) keys[i] = (entries[i] as Deferred).key;
  return keys;
}

const ours: Subject = {
  id: "async-batcher",
  label: "async-batcher (ours)",
  kind: "ours",
  notes:
    "Built `dist/index.js`. `concurrency: Infinity` wherever the peers have no concurrency limit (all of them here), so no batch waits for a slot.",
  describe: (s) =>
    `createBatcher(fn, { maxBatchSize: ${s.maxBatchSize}, maxQueueTime: ${s.maxQueueTime}, concurrency: Infinity })`,
  async load(distUrl) {
    const lib = (await import(distUrl)) as typeof import("async-batcher");
    return (work, s) => {
      const batcher = lib.createBatcher<number, number>(work, {
        maxBatchSize: s.maxBatchSize,
        maxQueueTime: s.maxQueueTime,
        concurrency: Number.POSITIVE_INFINITY,
      });
      return { process: (key) => batcher.process(key) };
    };
  },
};

function dataLoader(cache: boolean): Subject {
  return {
    id: cache ? "dataloader-cache" : "dataloader",
    label: cache ? "DataLoader (cache)" : "DataLoader (cache: false)",
    kind: "peer",
    package: "dataloader",
    notes: cache
      ? "Default memoizing cache. Keys are unique per run, so it pays for the cache without cache hits; the cache is cleared between bursts (outside the timed region), as a loader per request would be. No time window of its own (a `batchScheduleFn` with `setTimeout` gives one), no concurrency limit."
      : "The leanest peer. No time window of its own (a `batchScheduleFn` with `setTimeout` gives one), no concurrency limit, no queue bound.",
    describe: (s) =>
      `new DataLoader(fn, { maxBatchSize: ${s.maxBatchSize}${cache ? "" : ", cache: false"}${
        s.maxQueueTime > 0 ? `, batchScheduleFn: (cb) => setTimeout(cb, ${s.maxQueueTime})` : ""
      } })`,
    async load() {
      const { default: DataLoader } = await import("dataloader");
      return (work, s) => {
        const loader = new DataLoader<number, number>(work, {
          maxBatchSize: s.maxBatchSize,
          cache,
          ...(s.maxQueueTime > 0
            ? { batchScheduleFn: (callback: () => void) => setTimeout(callback, s.maxQueueTime) }
            : {}),
        });
        return cache
          ? { process: (key) => loader.load(key), reset: () => loader.clearAll() }
          : { process: (key) => loader.load(key) };
      };
    },
  };
}

const batshit: Subject = {
  id: "batshit",
  label: "@yornaath/batshit",
  kind: "peer",
  package: "@yornaath/batshit",
  notes:
    "Results are found by key, not position: the fetcher returns a `Map` key → result and the resolver reads it (counted). Queries are deduplicated through a `Set`, so keys are unique. Every `fetch()` re-arms a `setTimeout` (1 ms resolution, `Date.now()` window); no end-of-tick window, no concurrency limit.",
  describe: (s) =>
    `create({ fetcher, resolver: (map, key) => map.get(key), scheduler: windowedFiniteBatchScheduler({ windowMs: ${s.maxQueueTime}, maxBatchSize: ${s.maxBatchSize} }) })`,
  async load() {
    const { create, windowedFiniteBatchScheduler } = await import("@yornaath/batshit");
    return (work, s) => {
      const batcher = create<Map<number, number>, number, number>({
        fetcher: async (keys) => {
          const results = await work(keys);
          const byKey = new Map<number, number>();
          for (let i = 0; i < keys.length; i++) byKey.set(keys[i] as number, results[i] as number);
          return byKey;
        },
        resolver: (byKey, key) => byKey.get(key) as number,
        scheduler: windowedFiniteBatchScheduler({
          windowMs: s.maxQueueTime,
          maxBatchSize: s.maxBatchSize,
        }),
      });
      return { process: (key) => batcher.fetch(key) };
    };
  },
};

const bottleneck: Subject = {
  id: "bottleneck",
  label: "Bottleneck Batcher + adapter",
  kind: "peer",
  package: "bottleneck",
  notes:
    "`Batcher.add()` resolves when the batch is flushed, with no result. The adapter (counted) wraps each item in a `new Promise` with its resolve/reject, runs the batch function in the `batch` event and settles each caller. No end-of-tick window (`maxTime: 0` is a 1 ms timer), no concurrency limit, no error path to callers.",
  describe: (s) =>
    `new Bottleneck.Batcher({ maxSize: ${s.maxBatchSize}, maxTime: ${s.maxQueueTime} }) + per-item adapter`,
  async load() {
    const { default: Bottleneck } = await import("bottleneck");
    return (work, s) => {
      const batcher = new Bottleneck.Batcher({ maxSize: s.maxBatchSize, maxTime: s.maxQueueTime });
      batcher.on("batch", (entries: Deferred[]) => {
        work(keysOf(entries)).then(
          (results) => settleEach(entries, results),
          (error: unknown) => rejectEach(entries, error),
        );
      });
      return {
        process: (key) =>
          new Promise<number>((resolve, reject) => {
            void batcher.add({ key, resolve, reject });
          }),
      };
    };
  },
};

const promiseBatcher: Subject = {
  id: "promise-batcher",
  label: "promise-batcher",
  kind: "peer",
  package: "promise-batcher",
  notes:
    "Per-item results and errors by position. Partial batches wait for a `setTimeout` (`queuingDelay`, 1 ms at least; no end-of-tick window). Concurrency is shaped by `queuingThresholds`, not bounded.",
  describe: (s) =>
    `new Batcher({ batchingFunction: fn, maxBatchSize: ${s.maxBatchSize}, queuingDelay: ${s.maxQueueTime} })`,
  async load() {
    const { Batcher } = await import("promise-batcher");
    return (work, s) => {
      const batcher = new Batcher<number, number>({
        batchingFunction: work,
        maxBatchSize: s.maxBatchSize,
        queuingDelay: s.maxQueueTime,
      });
      return { process: (key) => batcher.getResult(key) };
    };
  },
};

const pacer: Subject = {
  id: "pacer",
  label: "@tanstack/pacer AsyncBatcher + adapter",
  kind: "peer",
  package: "@tanstack/pacer",
  notes:
    "No per-item results: `addItem()` resolves with the whole batch's result for the item that triggered the batch and with `undefined` for the others (after the `wait` timer), and a failed batch reaches at most that one caller. The adapter (counted) wraps each item in a `new Promise` and settles it from the batch function. With `wait` set, every `addItem()` arms two timers and copies the item array and the store state. No end-of-tick window, no concurrency limit.",
  describe: (s) =>
    `new AsyncBatcher(fn, { maxSize: ${s.maxBatchSize}, wait: ${s.maxQueueTime}, throwOnError: false }) + per-item adapter`,
  async load() {
    const { AsyncBatcher } = await import("@tanstack/pacer/async-batcher");
    return (work, s) => {
      const batcher = new AsyncBatcher<Deferred>(
        async (entries) => {
          try {
            settleEach(entries, await work(keysOf(entries)));
          } catch (error) {
            rejectEach(entries, error);
          }
        },
        { maxSize: s.maxBatchSize, wait: s.maxQueueTime, throwOnError: false },
      );
      return {
        process: (key) =>
          new Promise<number>((resolve, reject) => {
            void batcher.addItem({ key, resolve, reject });
          }),
      };
    };
  },
};

/**
 * Floor 1: one pending `new Promise` per item, resolved later (on the next microtask) with the
 * same result the batch function computes. What any batcher must at least pay per item.
 */
const floorPromise: Subject = {
  id: "floor-promise",
  label: "floor: new Promise",
  kind: "floor",
  notes:
    "Not a batcher: N `new Promise`, their resolve functions kept in an array and called on the next microtask with each key's result. The per-item cost any batcher pays at least.",
  describe: () =>
    "new Promise((resolve) => resolvers.push(resolve)); resolved on the next microtask",
  async load() {
    return () => {
      let keys: number[] = [];
      let resolvers: ((value: number) => void)[] = [];
      let scheduled = false;
      const settle = (): void => {
        const k = keys;
        const r = resolvers;
        keys = [];
        resolvers = [];
        scheduled = false;
        for (let i = 0; i < r.length; i++) (r[i] as (value: number) => void)((k[i] as number) * 2);
      };
      return {
        process(key) {
          const promise = new Promise<number>((resolve) => {
            resolvers.push(resolve);
          });
          keys.push(key);
          if (!scheduled) {
            scheduled = true;
            queueMicrotask(settle);
          }
          return promise;
        },
      };
    };
  },
};

/** Floor 2: N calls of an async function; each promise is already resolved when returned. */
const floorAsync: Subject = {
  id: "floor-async",
  label: "floor: async function",
  kind: "floor",
  notes:
    "Not a batcher: N calls of `async (key) => key * 2`. Its promises are resolved on return, so nothing is pending: a lower bound on time, not a fair bound on memory in flight.",
  describe: () => "async (key) => key * 2",
  async load() {
    return () => ({ process: async (key: number) => key * 2 });
  },
};

/**
 * Our library with one flow-control feature on every item, for the feature-cost scenario: the
 * same batcher as `ours`, plus `extra` options and per-call options.
 */
function oursWith(
  id: SubjectId,
  label: string,
  notes: string,
  extra: string,
  options: (lib: typeof import("async-batcher")) => {
    batcher: Record<string, unknown>;
    call?: (key: number) => import("async-batcher").ProcessOptions;
  },
  setup?: (batcher: import("async-batcher").AsyncBatcher<number, number>) => unknown,
): Subject {
  return {
    id,
    label,
    kind: "ours",
    notes,
    describe: (s) =>
      `createBatcher(fn, { maxBatchSize: ${s.maxBatchSize}, maxQueueTime: ${s.maxQueueTime}, concurrency: Infinity, ${extra} })`,
    async load(distUrl) {
      const lib = (await import(distUrl)) as typeof import("async-batcher");
      return (work, s) => {
        const { batcher: extraOptions, call } = options(lib);
        const batcher = lib.createBatcher<number, number>(work, {
          maxBatchSize: s.maxBatchSize,
          maxQueueTime: s.maxQueueTime,
          concurrency: Number.POSITIVE_INFINITY,
          ...extraOptions,
        });
        setup?.(batcher);
        return call === undefined
          ? { process: (key) => batcher.process(key) }
          : { process: (key) => batcher.process(key, call(key)) };
      };
    },
  };
}

/** Variants of ours, measured only where a scenario asks for them (not in `ALL`). */
export const VARIANTS: readonly Subject[] = [
  oursWith(
    "ours-signal",
    "ours + signal + itemTimeout",
    "Every item passes one shared, long-lived `AbortSignal`, and `itemTimeout` (30 s) gives every item a timeout.",
    "itemTimeout: 30_000 }) with process(key, { signal })",
    () => {
      const signal = new AbortController().signal;
      const call = { signal };
      return { batcher: { itemTimeout: 30_000 }, call: () => call };
    },
  ),
  oursWith(
    "ours-keys",
    "ours + batchKey (10 keys)",
    "`batchKey: (key) => key % 10` spreads the items over 10 keys, each forming its own batches.",
    "batchKey: (key) => key % 10",
    () => ({ batcher: { batchKey: (key: number) => key % 10 } }),
  ),
  oursWith(
    "ours-priority",
    "ours + priority (3 levels)",
    "Every item passes `priority: key % 3`: three priorities, interleaved.",
    "}) with process(key, { priority: key % 3 })",
    () => {
      const calls = [{ priority: 0 }, { priority: 1 }, { priority: 2 }];
      return { batcher: {}, call: (key) => calls[key % 3] as { priority: number } };
    },
  ),
  oursWith(
    "ours-weigh",
    "ours + weigh",
    "`weigh: () => 1` with `maxBatchWeight: 1e9`: every item weighed, the weight never the limit.",
    "weigh: () => 1, maxBatchWeight: 1e9",
    () => ({ batcher: { weigh: () => 1, maxBatchWeight: 1e9 } }),
  ),
  oursWith(
    "ours-keyof",
    "ours + keyOf",
    "`keyOf: (key) => key`: every item's result key taken and kept (results still by position).",
    "keyOf: (key) => key",
    () => ({ batcher: { keyOf: (key: number) => key } }),
  ),
  oursWith(
    "ours-events",
    "ours + a listener on every event",
    "A listener on each of `batchStart`, `batchEnd`, `retry`, `split`, `drop` and `idle`, counting what it receives.",
    "}) with batcher.on(event, count) for every event",
    () => ({ batcher: {} }),
    (batcher) => {
      let seen = 0;
      const count = () => {
        seen++;
      };
      for (const event of ["batchStart", "batchEnd", "retry", "split", "drop", "idle"] as const) {
        batcher.on(event, count);
      }
      return () => seen;
    },
  ),
];

export const SUBJECTS: readonly Subject[] = [
  ours,
  dataLoader(false),
  dataLoader(true),
  batshit,
  bottleneck,
  promiseBatcher,
  pacer,
  floorPromise,
  floorAsync,
];

export function subject(id: SubjectId): Subject {
  const found = SUBJECTS.find((s) => s.id === id) ?? VARIANTS.find((s) => s.id === id);
  if (found === undefined) throw new Error(`unknown subject ${id}`);
  return found;
}

/** Every peer and both floors. */
export const ALL: readonly SubjectId[] = SUBJECTS.map((s) => s.id);
/** The batchers, without the floors. */
export const BATCHERS: readonly SubjectId[] = SUBJECTS.filter((s) => s.kind !== "floor").map(
  (s) => s.id,
);

/** The reference every "× DataLoader" ratio is taken against. */
export const DATALOADER: SubjectId = "dataloader";
/** The reference every feature-cost ratio is taken against. */
export const OURS: SubjectId = "async-batcher";
/** The reference every "× floor" ratio is taken against. */
export const FLOOR: SubjectId = "floor-promise";
