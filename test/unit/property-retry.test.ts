/**
 * Property test of the reliability options (issue 4): random timelines with result keys (`keyOf`,
 * random `dedupe`), retries with exponential backoff (`retryIf` takes transient errors only),
 * `splitOnError`, batch keys, aborts, timeouts and stops (none, graceful, graceful with a timeout,
 * force) at random times, on fake timers.
 *
 * The batch function is a deterministic model. Each result key is "good", "bad" (a batch holding
 * it throws the permanent `BadItem(key)`) or "flaky" (its result is a transient `ItemTransient`
 * the first `times` times a batch produces one for it, then its value); the `k`-th call of the
 * batch function first throws a transient `Transient` when the timeline says so. Results come
 * back as an array or as a `Map`.
 *
 * Checked: every caller settles once, with its own key's value or a reason it can have (its own
 * BadItem with splitOnError, a batch error only once its tries are spent, its signal's reason or
 * its timeout at its deadline, BatcherStoppedError after a force stop); calm timelines settle
 * exactly as the model says; no caller is tried (and, without dedupe, no item handed) more than
 * `attempts` times, split halves not counted; batch size, batch key, dedupe and concurrency
 * limits; event payloads (attempt, delay, parentId, callers) and stats agree with the calls; and
 * once stopped, no gauge, timer or abort listener is left.
 *
 * Callers are told apart in the events through the tracing hook: each caller's context is its
 * id, so `batchStart.contexts` names the callers of every batch, deduplicated ones included.
 * Every event and settlement is numbered in the order it is seen (`seq`) and stamped with the
 * fake clock; a settlement is seen through `then`, a little after it happened, so the checks only
 * conclude from a settlement seen before an event that it happened before it.
 */
import { getEventListeners } from "node:events";
import {
  type BatchContext,
  type BatchEndEvent,
  BatcherStoppedError,
  type BatchStartEvent,
  captureContext,
  createBatcher,
  ItemTimeoutError,
  type RetryEvent,
  type SplitEvent,
} from "async-batcher";
import fc from "fast-check";
import { afterEach, describe, it, vi } from "vitest";
import {
  count,
  perform,
  runTimeline,
  type Settlement,
  type Step,
  type StopMode,
  type Timing,
} from "../helpers/property.js";

// Kept before any test fakes the timers: lets every promise job run without firing a fake timer.
const realSetImmediate = globalThis.setImmediate;
const drain = () => new Promise<void>((resolve) => realSetImmediate(resolve));

const INF = Number.POSITIVE_INFINITY;

// ---------------------------------------------------------------------------------------------
// The model's errors and values.

/** A batch call failed for a passing reason: worth a retry. */
class Transient extends Error {
  override name = "Transient";
  readonly batchId: number;
  constructor(batchId: number) {
    super(`batch ${batchId} failed for now`);
    this.batchId = batchId;
  }
}

/** The transient error a batch returns for one flaky key. */
class ItemTransient extends Error {
  override name = "ItemTransient";
  readonly key: string;
  constructor(key: string) {
    super(`${key} failed for now`);
    this.key = key;
  }
}

/** The permanent error of any batch holding a bad key (the first one in the batch). */
class BadItem extends Error {
  override name = "BadItem";
  readonly key: string;
  constructor(key: string) {
    super(`${key} is bad`);
    this.key = key;
  }
}

const retryIf = (error: unknown): boolean =>
  error instanceof Transient || error instanceof ItemTransient;

const valueFor = (key: string) => `value of ${key}`;

/** Keys `batchKey` returns: strings and numbers. */
const GROUPS: readonly (string | number)[] = ["a", 1, "b"];

// ---------------------------------------------------------------------------------------------
// Scenarios.

type Kind =
  | { readonly kind: "good" }
  | { readonly kind: "bad" }
  | { readonly kind: "flaky"; readonly times: number };

interface SignalPlan {
  /** ms at which it aborts (at or before an arrival: aborted already); `undefined`: never. */
  readonly abortAt: number | undefined;
  /** Abort with a reason of ours, or with the default `AbortError`. */
  readonly customReason: boolean;
}

type CallerSignal =
  | { readonly kind: "none" }
  | { readonly kind: "shared"; readonly index: number }
  | { readonly kind: "own"; readonly plan: SignalPlan };

interface CallerSpec {
  readonly at: number;
  /** Index of its result key. */
  readonly key: number;
  readonly priority: number;
  readonly signal: CallerSignal;
  readonly timeout: number | undefined;
}

interface Scenario {
  readonly options: {
    readonly maxBatchSize: number;
    readonly maxQueueTime: number;
    readonly concurrency: number;
    /** How many batch keys the result keys are spread over; 0: no `batchKey`. */
    readonly groups: number;
    readonly dedupe: boolean;
    readonly retry: {
      readonly attempts: number;
      readonly delay: number;
      readonly maxDelay?: number;
    };
    readonly splitOnError: boolean;
    /** How the batch function returns results: by position, by key, or by turns. */
    readonly results: "array" | "map" | "mixed";
  };
  /** The kind of each result key, `key0`, `key1`, ... */
  readonly kinds: readonly Kind[];
  /** Sorted by arrival; a caller's id is its index. */
  readonly callers: readonly CallerSpec[];
  readonly signals: readonly SignalPlan[];
  /** Call `k` of the batch function throws `Transient` when `transient[k]`. */
  readonly transient: readonly boolean[];
  /** Call `k` runs as `timings[k % length]`. */
  readonly timings: readonly Timing[];
  readonly stop:
    | { readonly at: number; readonly mode: StopMode; readonly timeout: number }
    | undefined;
  /**
   * No transient failure, abort, timeout or forced stop, and no flaky key that needs more tries
   * than `attempts` gives: the outcome of every caller is known in advance.
   */
  readonly calm: boolean;
}

const KEYS = 5;

const kindArb: fc.Arbitrary<Kind> = fc.oneof(
  { arbitrary: fc.constant<Kind>({ kind: "good" }), weight: 3 },
  { arbitrary: fc.constant<Kind>({ kind: "bad" }), weight: 1 },
  {
    arbitrary: fc.integer({ min: 1, max: 4 }).map((times): Kind => ({ kind: "flaky", times })),
    weight: 2,
  },
);

const signalPlanArb: fc.Arbitrary<SignalPlan> = fc.record({
  abortAt: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
  customReason: fc.boolean(),
});

const callerArb: fc.Arbitrary<CallerSpec> = fc.record({
  at: fc.oneof(fc.integer({ min: 0, max: 150 }), fc.constantFrom(0, 30, 80)),
  key: fc.integer({ min: 0, max: KEYS - 1 }),
  priority: fc.oneof(
    { arbitrary: fc.constant(0), weight: 4 },
    { arbitrary: fc.constant(1), weight: 1 },
  ),
  signal: fc.oneof(
    { arbitrary: fc.constant<CallerSignal>({ kind: "none" }), weight: 4 },
    {
      arbitrary: fc
        .integer({ min: 0, max: 2 })
        .map((index): CallerSignal => ({ kind: "shared", index })),
      weight: 1,
    },
    { arbitrary: signalPlanArb.map((plan): CallerSignal => ({ kind: "own", plan })), weight: 1 },
  ),
  timeout: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 5 },
    { arbitrary: fc.integer({ min: 0, max: 250 }), weight: 1 },
  ),
});

const timingArb: fc.Arbitrary<Timing> = fc.record({
  sync: fc.boolean(),
  duration: fc.integer({ min: 0, max: 60 }),
  honoursAbort: fc.boolean(),
});

const stopArb = fc.option(
  fc.record({
    at: fc.integer({ min: 0, max: 400 }),
    mode: fc.constantFrom<StopMode>("graceful", "timeout", "force"),
    timeout: fc.integer({ min: 0, max: 150 }),
  }),
  { nil: undefined },
);

const rawScenarioArb = fc.record({
  options: fc.record({
    maxBatchSize: count(5),
    maxQueueTime: fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: 40 }), weight: 4 },
      { arbitrary: fc.constant(0), weight: 1 },
      { arbitrary: fc.constant(INF), weight: 1 },
    ),
    concurrency: count(3),
    groups: fc.integer({ min: 0, max: 3 }),
    dedupe: fc.boolean(),
    retry: fc.record(
      {
        attempts: fc.integer({ min: 1, max: 4 }),
        delay: fc.integer({ min: 0, max: 50 }),
        maxDelay: fc.integer({ min: 0, max: 100 }),
      },
      { requiredKeys: ["attempts", "delay"] },
    ),
    splitOnError: fc.boolean(),
    results: fc.constantFrom<"array" | "map" | "mixed">("array", "map", "mixed"),
  }),
  kinds: fc.array(kindArb, { minLength: KEYS, maxLength: KEYS }),
  callers: fc.array(callerArb, { maxLength: 24, size: "max" }),
  signals: fc.array(signalPlanArb, { maxLength: 3 }),
  transient: fc.oneof(
    fc.constant<boolean[]>([]),
    fc.array(fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, fc.constant(true)), {
      maxLength: 20,
    }),
  ),
  timings: fc.array(timingArb, { minLength: 1, maxLength: 4 }),
  stop: stopArb,
  calm: fc.boolean(),
});

/** A calm scenario drops what makes outcomes unpredictable; the others keep everything. */
const scenarioArb: fc.Arbitrary<Scenario> = rawScenarioArb.map((raw): Scenario => {
  const callers = [...raw.callers].sort((a, b) => a.at - b.at);
  if (!raw.calm) return { ...raw, callers };
  const attempts = raw.options.retry.attempts;
  return {
    ...raw,
    kinds: raw.kinds.map((kind): Kind => {
      if (kind.kind !== "flaky") return kind;
      const times = Math.min(kind.times, attempts - 1);
      return times === 0 ? { kind: "good" } : { kind: "flaky", times };
    }),
    callers: callers.map((caller) => ({ ...caller, signal: { kind: "none" }, timeout: undefined })),
    signals: [],
    transient: [],
    stop:
      raw.stop === undefined || raw.stop.mode === "graceful"
        ? raw.stop
        : { ...raw.stop, mode: "graceful" },
  };
});

// ---------------------------------------------------------------------------------------------
// What happens.

/** The reason our signals abort with, unless they use the default one. */
class AbortReason extends Error {
  override name = "AbortReason";
}

interface SignalState {
  readonly name: string;
  readonly plan: SignalPlan;
  readonly controller: AbortController;
  /** `Infinity` until it aborts. */
  abortSeq: number;
  /** The callers using it that were pending (every promise job run) when it aborted. */
  pendingAtAbort: CallerRecord[];
}

interface CallerRecord {
  readonly id: number;
  readonly spec: CallerSpec;
  readonly key: string;
  readonly kind: Kind;
  readonly group: string | number | undefined;
  readonly signal: SignalState | undefined;
  /** Its timeout in ms (`Infinity` for none), and the fake-clock ms it passes at. */
  readonly timeout: number;
  readonly deadline: number;
  processSeq: number;
  /** Called after `stop()`: refused at once. */
  afterStop: boolean;
  settlements: Settlement[];
  /** Batches (ids) whose `batchStart` named it, in order. */
  batches: number[];
  /** Calls of the batch function, by reason other than "split", that named it. */
  tries: number;
}

interface Call {
  readonly index: number;
  readonly batchId: number;
  readonly items: readonly number[];
  readonly keys: readonly string[];
  readonly context: BatchContext;
  readonly start: BatchStartEvent | undefined;
  readonly seq: number;
  readonly time: number;
  /** What it throws, if it throws. */
  readonly thrown: Error | undefined;
  /** Its result per key, if it does not throw. */
  readonly results: ReadonlyMap<string, string | Error> | undefined;
  /** Each caller's try number in this batch, from the events. */
  readonly triesOf: ReadonlyMap<number, number>;
  endSeq: number;
}

interface Stamped<E> {
  readonly event: E;
  readonly seq: number;
  readonly time: number;
}

async function runScenario(s: Scenario): Promise<void> {
  const o = s.options;
  const attempts = o.retry.attempts;
  let seq = 0;
  const next = () => ++seq;
  const now = () => Date.now();

  const violations: string[] = [];
  /** What happened, in order, for the failure message. */
  const trace: string[] = [];
  const note = (what: string) => trace.push(`${now()} ms: ${what}`);
  const check = (ok: boolean, message: () => string) => {
    if (!ok) violations.push(message());
  };

  const keyName = (index: number) => `key${index}`;
  const kindOf = new Map<string, Kind>(s.kinds.map((kind, i) => [keyName(i), kind]));
  const groupOf = (index: number) => (o.groups === 0 ? undefined : GROUPS[index % o.groups]);
  /** Results still to fail per flaky key. */
  const flakyLeft = new Map<string, number>();
  for (const [key, kind] of kindOf) if (kind.kind === "flaky") flakyLeft.set(key, kind.times);

  const sharedSignals: SignalState[] = s.signals.map((plan, i) => ({
    name: `shared signal ${i}`,
    plan,
    controller: new AbortController(),
    abortSeq: INF,
    pendingAtAbort: [],
  }));
  const ownSignals: SignalState[] = [];
  const callers: CallerRecord[] = s.callers.map((spec, id) => {
    let signal: SignalState | undefined;
    if (spec.signal.kind === "shared" && sharedSignals.length > 0) {
      signal = sharedSignals[spec.signal.index % sharedSignals.length];
    } else if (spec.signal.kind === "own") {
      signal = {
        name: `signal of caller ${id}`,
        plan: spec.signal.plan,
        controller: new AbortController(),
        abortSeq: INF,
        pendingAtAbort: [],
      };
      ownSignals.push(signal);
    }
    const timeout = spec.timeout ?? INF;
    return {
      id,
      spec,
      key: keyName(spec.key),
      kind: s.kinds[spec.key] as Kind,
      group: groupOf(spec.key),
      signal,
      timeout,
      deadline: spec.at + timeout,
      processSeq: INF,
      afterStop: false,
      settlements: [],
      batches: [],
      tries: 0,
    };
  });
  const allSignals = () => [...sharedSignals, ...ownSignals];

  const calls: Call[] = [];
  const callOf = new Map<number, Call>();
  const starts = new Map<number, Stamped<BatchStartEvent>>();
  const ends: Stamped<BatchEndEvent>[] = [];
  const retries: Stamped<RetryEvent>[] = [];
  const splits: Stamped<SplitEvent>[] = [];
  /** Without dedupe: calls each item was handed to, split halves not counted. */
  const handedTimes = new Map<number, number>();
  let running = 0;
  let stopCalled = false;
  let forceSeq = INF;
  let forceTime = INF;
  /** The caller whose `process()` runs now: what the tracing hook captures. */
  let current: number | undefined;

  const batcher = createBatcher<number, string>(
    (batch, context) => {
      const index = calls.length;
      const timing = s.timings[index % s.timings.length] as Timing;
      const keys = batch.map((id) => callers[id]?.key ?? "unknown");
      const start = starts.get(context.batchId);
      const name = `batch ${context.batchId} [${batch}]`;
      check(forceSeq === INF, () => `${name} called after a force stop`);
      check(start !== undefined, () => `${name} called without a batchStart`);

      // Each caller's try: its calls so far, split halves not counted (they are not retries).
      const triesOf = new Map<number, number>();
      const named = (start?.event.contexts ?? []) as number[];
      for (const id of named) {
        const caller = callers[id];
        if (caller === undefined) {
          violations.push(`${name}: batchStart names unknown caller ${id}`);
          continue;
        }
        caller.batches.push(context.batchId);
        if (start?.event.reason !== "split") caller.tries++;
        triesOf.set(id, caller.tries);
        check(
          caller.tries <= attempts,
          () => `caller ${id} tried ${caller.tries} times (${name}), attempts ${attempts}`,
        );
        check(caller.settlements.length === 0, () => `${name}: caller ${id} settled already`);
        check(keys.includes(caller.key), () => `${name}: caller ${id} (${caller.key}) has no item`);
      }
      if (start !== undefined) {
        const e = start.event;
        check(
          e.size === batch.length && e.callers === named.length && e.key === context.key,
          () =>
            `${name}: batchStart size ${e.size}, callers ${e.callers} (named ${named.length}), key ${String(e.key)}`,
        );
        const attempt = Math.max(1, ...triesOf.values());
        check(
          e.attempt === attempt,
          () => `${name}: batchStart attempt ${e.attempt}, expected ${attempt}`,
        );
        check(
          (e.reason === "split" || (e.reason === "retry" && e.parentId !== undefined)) ===
            (e.parentId !== undefined),
          () => `${name}: reason ${e.reason} with parentId ${String(e.parentId)}`,
        );
        if (e.parentId !== undefined) {
          check(
            e.queueWait === 0,
            () => `${name}: queueWait ${e.queueWait} for a ${e.reason} batch`,
          );
        }
      }

      // Limits.
      check(batch.length >= 1, () => `${name}: empty`);
      check(
        batch.length <= o.maxBatchSize,
        () => `${name}: ${batch.length} items, maxBatchSize ${o.maxBatchSize}`,
      );
      if (o.dedupe) {
        check(
          new Set(keys).size === keys.length,
          () => `${name}: a key twice with dedupe (${keys})`,
        );
      }
      const group = callers[batch[0] ?? -1]?.group;
      check(
        batch.every((id) => callers[id]?.group === group) && context.key === group,
        () => `${name}: mixes batch keys, or context.key ${String(context.key)}`,
      );
      // With dedupe an item outlives its first caller when others of its key stay.
      for (const id of o.dedupe ? [] : batch) {
        const caller = callers[id];
        check(
          caller !== undefined && caller.settlements.length === 0,
          () => `${name}: item ${id} whose caller settled already`,
        );
      }
      // Without dedupe an item is its caller's own; with it, one item stands for its key's callers.
      const same = o.dedupe
        ? sameSet(
            keys,
            named.map((id) => callers[id]?.key),
          )
        : sameSet(batch, named) && batch.length === named.length;
      check(same, () => `${name}: batchStart names callers ${named}`);
      if (!o.dedupe && start?.event.reason !== "split") {
        for (const id of batch) {
          const handed = (handedTimes.get(id) ?? 0) + 1;
          handedTimes.set(id, handed);
          check(
            handed <= attempts,
            () => `item ${id} handed ${handed} times, attempts ${attempts}`,
          );
        }
      }
      running++;
      check(
        running <= o.concurrency,
        () => `${running} batch functions running, concurrency ${o.concurrency}`,
      );

      // The model's outcome, decided now.
      let thrown: Error | undefined;
      let results: Map<string, string | Error> | undefined;
      if (s.transient[index] === true) {
        thrown = new Transient(context.batchId);
      } else {
        const bad = keys.find((key) => kindOf.get(key)?.kind === "bad");
        if (bad !== undefined) {
          thrown = new BadItem(bad);
        } else {
          results = new Map();
          for (const key of keys) {
            if (results.has(key)) continue;
            const left = flakyLeft.get(key) ?? 0;
            if (left > 0) {
              flakyLeft.set(key, left - 1);
              results.set(key, new ItemTransient(key));
            } else {
              results.set(key, valueFor(key));
            }
          }
        }
      }
      const call: Call = {
        index,
        batchId: context.batchId,
        items: [...batch],
        keys,
        context,
        start: start?.event,
        seq: next(),
        time: now(),
        thrown,
        results,
        triesOf,
        endSeq: INF,
      };
      calls.push(call);
      note(
        `call ${call.batchId} [${batch}] ${timing.sync ? "sync" : `${timing.duration} ms`}: ${thrown?.name ?? [...(results?.values() ?? [])].map((v) => (v instanceof Error ? v.name : "ok"))}`,
      );
      check(!callOf.has(call.batchId), () => `batch ${call.batchId} called twice`);
      callOf.set(call.batchId, call);

      const byKey = o.results === "map" || (o.results === "mixed" && index % 2 === 1);
      return perform<ReadonlyArray<string | Error> | ReadonlyMap<unknown, string | Error>>(
        timing,
        () => context.signal,
        () => {
          if (thrown !== undefined) throw thrown;
          const map = results as Map<string, string | Error>;
          return byKey ? map : keys.map((key) => map.get(key) as string | Error);
        },
        () => {
          running--;
          call.endSeq = next();
        },
      );
    },
    {
      maxBatchSize: o.maxBatchSize,
      maxQueueTime: o.maxQueueTime,
      concurrency: o.concurrency,
      keyOf: (id: number) => callers[id]?.key,
      dedupe: o.dedupe,
      retry: { ...o.retry, retryIf },
      splitOnError: o.splitOnError,
      ...(o.groups === 0
        ? {}
        : { batchKey: (id: number) => callers[id]?.group as string | number }),
      logger: (event) => {
        if (event.type === "stop" && event.force && forceSeq === INF) {
          forceSeq = next();
          forceTime = now();
        }
      },
    },
  );
  batcher[captureContext](() => current);
  batcher.on("batchStart", (event) => {
    note(
      `batchStart ${event.batchId} (${event.reason}, parent ${event.parentId}) callers ${String(event.contexts)}`,
    );
    check(!starts.has(event.batchId), () => `batchStart twice for batch ${event.batchId}`);
    starts.set(event.batchId, { event, seq: next(), time: now() });
  });
  batcher.on("batchEnd", (event) => {
    note(
      `batchEnd ${event.batchId}: resolved ${event.resolved}, rejected ${event.rejected}, retried ${event.retried}`,
    );
    ends.push({ event, seq: next(), time: now() });
  });
  batcher.on("retry", (event) => {
    note(`retry of ${event.batchId} (${event.scope}, attempt ${event.attempt}, ${event.delay} ms)`);
    retries.push({ event, seq: next(), time: now() });
  });
  batcher.on("split", (event) => {
    note(`split of ${event.batchId}`);
    splits.push({ event, seq: next(), time: now() });
  });
  batcher.on("drop", (event) => note(`drop ${event.count} (${event.reason})`));

  const submit = (caller: CallerRecord) => {
    const signal = caller.signal;
    if (signal !== undefined && caller.spec.signal.kind === "own") {
      const at = signal.plan.abortAt;
      if (at !== undefined && at <= caller.spec.at) abortNow(signal);
    }
    note(`process(${caller.id}) ${caller.key}`);
    caller.afterStop = stopCalled;
    caller.processSeq = next();
    const options = {
      ...(signal === undefined ? {} : { signal: signal.controller.signal }),
      ...(caller.spec.timeout === undefined ? {} : { timeout: caller.spec.timeout }),
      ...(caller.spec.priority === 0 ? {} : { priority: caller.spec.priority }),
    };
    current = caller.id;
    let promise: Promise<string>;
    try {
      promise =
        Object.keys(options).length === 0
          ? batcher.process(caller.id)
          : batcher.process(caller.id, options);
    } catch (error) {
      violations.push(`process(${caller.id}) threw ${String(error)}`);
      return;
    } finally {
      current = undefined;
    }
    promise.then(
      (value) =>
        caller.settlements.push({ ok: true, value, reason: undefined, seq: next(), time: now() }),
      (reason: unknown) =>
        caller.settlements.push({ ok: false, value: undefined, reason, seq: next(), time: now() }),
    );
  };

  const pending = (filter: (caller: CallerRecord) => boolean) =>
    callers.filter(
      (caller) =>
        caller.processSeq < INF &&
        !caller.afterStop &&
        caller.settlements.length === 0 &&
        filter(caller),
    );

  const abortNow = (signal: SignalState) => {
    if (signal.abortSeq !== INF) return;
    signal.pendingAtAbort = pending((caller) => caller.signal === signal);
    signal.abortSeq = next();
    note(`${signal.name} aborts`);
    signal.controller.abort(
      signal.plan.customReason ? new AbortReason(`${signal.name} aborted`) : undefined,
    );
  };

  let stopPromise: Promise<void> | undefined;
  let stopResolved = false;
  let pendingAtForce: CallerRecord[] = [];
  const stop = async (mode: StopMode, timeout: number) => {
    if (mode === "force") {
      await drain();
      pendingAtForce = pending(() => true);
    }
    stopCalled = true;
    const options = mode === "force" ? { force: true } : mode === "timeout" ? { timeout } : {};
    note(`stop(${JSON.stringify(options)})`);
    try {
      stopPromise = batcher.stop(options);
    } catch (error) {
      violations.push(`stop() threw ${String(error)}`);
      stopPromise = Promise.resolve();
      return;
    }
    stopPromise.then(
      async () => {
        stopResolved = true;
        await drain();
        const left = pending(() => true);
        check(
          left.length === 0,
          () => `callers ${left.map((c) => c.id)} not settled when stop() resolved`,
        );
      },
      (reason: unknown) => violations.push(`stop() rejected: ${String(reason)}`),
    );
  };

  // The timeline. At one ms: timers first, then arrivals, aborts, the stop.
  const steps: Step[] = callers.map((caller) => ({
    at: caller.spec.at,
    order: 0,
    run: () => submit(caller),
  }));
  for (const signal of allSignals()) {
    const at = signal.plan.abortAt;
    if (at === undefined) continue;
    steps.push({
      at,
      order: 1,
      run: async () => {
        await drain();
        abortNow(signal);
      },
    });
  }
  const planned = s.stop;
  if (planned !== undefined) {
    steps.push({ at: planned.at, order: 2, run: () => stop(planned.mode, planned.timeout) });
  }
  await runTimeline(steps, () => {}, true);

  // Long enough for everything: backoffs of 400 ms at most, batches of 60 ms, splits.
  await vi.advanceTimersByTimeAsync(20_000);
  await drain();
  if (stopPromise === undefined) await stop("graceful", 0);
  await vi.advanceTimersByTimeAsync(20_000);
  await drain();

  // ---- After everything settled.
  check(stopResolved, () => "stop() never resolved");
  check(running === 0, () => `${running} batch functions still running`);
  const stats = batcher.stats();
  const r = stats.rejected;
  check(
    stats.submitted === callers.length && stats.submitted === stats.resolved + r.total,
    () =>
      `stats: submitted ${stats.submitted} (${callers.length} calls), resolved ${stats.resolved}, rejected ${r.total}`,
  );
  check(
    stats.queued === 0 && stats.waiting === 0 && stats.inFlight === 0 && stats.runningBatches === 0,
    () =>
      `stats gauges: queued ${stats.queued}, waiting ${stats.waiting}, inFlight ${stats.inFlight}, runningBatches ${stats.runningBatches}`,
  );
  check(vi.getTimerCount() === 0, () => `${vi.getTimerCount()} timers left after stop`);
  for (const signal of allSignals()) {
    const listeners = getEventListeners(signal.controller.signal, "abort").length;
    check(listeners === 0, () => `${listeners} abort listeners left on ${signal.name}`);
  }

  // ---- Each caller's fate.
  const tally = { resolved: 0, error: 0, abort: 0, timeout: 0, stopped: 0 };
  const noBad = s.kinds.every((kind) => kind.kind !== "bad");
  const predictable = s.calm && (o.splitOnError || noBad);
  for (const caller of callers) {
    const { id, settlements } = caller;
    check(settlements.length === 1, () => `caller ${id} settled ${settlements.length} times`);
    const settled = settlements[0];
    if (settled === undefined) continue;
    const reason = settled.reason;
    const got = show(settled);
    const fail = (what: string) =>
      violations.push(`caller ${id} (${caller.key}): ${what}, got ${got}`);
    /** The call that named this caller and threw or returned `error`. */
    const source = (error: unknown) =>
      calls.find(
        (call) =>
          call.triesOf.has(id) &&
          (call.thrown === error || [...(call.results?.values() ?? [])].includes(error as Error)),
      );

    if (caller.afterStop) {
      if (!(reason instanceof BatcherStoppedError && reason.code === "ERR_BATCHER_STOPPED")) {
        fail("expected BatcherStoppedError, called after stop()");
      }
      check(caller.batches.length === 0, () => `caller ${id} called after stop() but batched`);
      tally.stopped++;
      continue;
    }
    if (predictable) {
      if (caller.kind.kind === "bad") {
        if (!(reason instanceof BadItem && reason.key === caller.key)) fail("expected its BadItem");
      } else if (!settled.ok || settled.value !== valueFor(caller.key)) {
        fail("expected its value");
      }
    }
    check(
      settled.time <= caller.deadline,
      () => `caller ${id} settled at ${settled.time} ms, its timeout passed at ${caller.deadline}`,
    );
    if (forceSeq < INF && caller.processSeq < forceSeq) {
      check(
        settled.time <= forceTime,
        () => `caller ${id} settled at ${settled.time} ms, after the force stop at ${forceTime}`,
      );
    }

    if (settled.ok) {
      tally.resolved++;
      if (settled.value !== valueFor(caller.key)) fail("resolved with another key's value");
      check(caller.batches.length > 0, () => `caller ${id} resolved without a batch`);
    } else if (reason instanceof BadItem) {
      tally.error++;
      const call = source(reason);
      if (call === undefined) fail("a BadItem no batch of it threw");
      else if (o.splitOnError && reason.key !== caller.key) fail("another key's BadItem");
    } else if (reason instanceof Transient) {
      tally.error++;
      const call = source(reason);
      if (call === undefined) fail("a Transient no batch of it threw");
      else {
        const tries = call.triesOf.get(id) ?? 0;
        if (tries !== attempts) fail(`rejected after ${tries} tries of ${attempts}`);
        // With splitOnError the callers out of tries reject as a whole only when one item is
        // left among them (the others' callers may have left while it ran).
        const stayed = [...call.triesOf].filter(([other, tries]) => {
          const them = callers[other] as CallerRecord;
          const sameItem = o.dedupe ? them.key === caller.key : other === id;
          return !sameItem && tries >= attempts && !leftEarly(them);
        });
        if (o.splitOnError && stayed.length > 0) {
          fail(`Transient with splitOnError, while callers ${stayed.map(([c]) => c)} stayed`);
        }
      }
    } else if (reason instanceof ItemTransient) {
      tally.error++;
      const call = source(reason);
      if (call === undefined || reason.key !== caller.key) fail("an ItemTransient not its own");
      else {
        const tries = call.triesOf.get(id) ?? 0;
        if (tries !== attempts) fail(`item rejected after ${tries} tries of ${attempts}`);
      }
    } else if (reason instanceof ItemTimeoutError) {
      tally.timeout++;
      check(
        reason.code === "ERR_ITEM_TIMEOUT" &&
          reason.timeout === caller.timeout &&
          settled.time === caller.deadline,
        () =>
          `caller ${id}: ItemTimeoutError(${reason.timeout}) at ${settled.time} ms, timeout ${caller.timeout} from ${caller.spec.at} ms`,
      );
    } else if (reason instanceof BatcherStoppedError) {
      tally.stopped++;
      check(
        reason.code === "ERR_BATCHER_STOPPED" && forceSeq < settled.seq,
        () => `caller ${id}: BatcherStoppedError without a force stop before it`,
      );
    } else if (
      caller.signal?.controller.signal.aborted === true &&
      reason === caller.signal.controller.signal.reason
    ) {
      tally.abort++;
      check(
        caller.signal.abortSeq < settled.seq,
        () => `caller ${id} rejected with its signal's reason before the signal aborted`,
      );
    } else fail("unexpected rejection");
  }
  for (const signal of allSignals()) {
    for (const caller of signal.pendingAtAbort) {
      const settled = caller.settlements[0];
      check(
        settled !== undefined && !settled.ok && settled.reason === signal.controller.signal.reason,
        () =>
          `caller ${caller.id} pending when ${signal.name} aborted, got ${settled === undefined ? "nothing" : show(settled)}`,
      );
    }
  }
  for (const caller of pendingAtForce) {
    const settled = caller.settlements[0];
    check(
      settled !== undefined && !settled.ok && settled.reason instanceof BatcherStoppedError,
      () =>
        `caller ${caller.id} pending at the force stop, got ${settled === undefined ? "nothing" : show(settled)}`,
    );
  }
  check(
    stats.resolved === tally.resolved &&
      r.error === tally.error &&
      r.abort === tally.abort &&
      r.timeout === tally.timeout &&
      r.stopped === tally.stopped &&
      r.missing + r.queueFull + r.tooLarge + r.invalid === 0,
    () =>
      `stats ${JSON.stringify({ resolved: stats.resolved, ...r })}, seen ${JSON.stringify(tally)}`,
  );

  // ---- Each batch: events and stats agree with the calls.
  const startReasons: Record<string, number> = {};
  for (const { event } of starts.values()) {
    startReasons[event.reason] = (startReasons[event.reason] ?? 0) + 1;
    check(callOf.has(event.batchId), () => `batchStart for batch ${event.batchId}, never called`);
  }
  for (const reason of Object.keys(stats.batches)) {
    if (reason === "total") continue;
    const counted = stats.batches[reason as keyof typeof stats.batches];
    check(
      counted === (startReasons[reason] ?? 0),
      () => `stats.batches.${reason} ${counted}, batchStart events ${startReasons[reason] ?? 0}`,
    );
  }
  check(
    stats.batches.total === calls.length,
    () => `stats.batches.total ${stats.batches.total}, ${calls.length} calls`,
  );
  check(
    stats.splits === splits.length,
    () => `stats.splits ${stats.splits}, ${splits.length} split events`,
  );
  const endsOf = new Map<number, Stamped<BatchEndEvent>[]>();
  for (const end of ends) {
    const list = endsOf.get(end.event.batchId) ?? [];
    list.push(end);
    endsOf.set(end.event.batchId, list);
  }
  for (const call of calls) {
    const name = `batch ${call.batchId}`;
    const list = endsOf.get(call.batchId) ?? [];
    // A batch force-stopped while its function ran ends with the stop.
    const cut = forceSeq < call.endSeq;
    check(list.length === 1, () => `${name}: ${list.length} batchEnd events`);
    const end = list[0]?.event;
    if (end !== undefined && call.start !== undefined) {
      check(
        end.resolved + end.rejected + end.retried <= call.start.callers,
        () =>
          `${name}: batchEnd ${end.resolved}+${end.rejected}+${end.retried} callers of ${call.start?.callers}`,
      );
      if (cut) {
        check(
          end.failed && end.error instanceof BatcherStoppedError && end.resolved === 0,
          () => `${name}: force-stopped, batchEnd ${String(end.error)}`,
        );
      } else if (call.thrown !== undefined) {
        check(end.failed, () => `${name}: threw, batchEnd not failed`);
      } else if (end.failed) {
        // It only fails otherwise by honouring its aborted signal.
        check(
          call.context.signal.aborted && end.error === call.context.signal.reason,
          () => `${name}: returned results, batchEnd failed with ${String(end.error)}`,
        );
      }
      if (call.thrown !== undefined && !call.context.signal.aborted) {
        check(end.error === call.thrown, () => `${name}: batchEnd error is not what it threw`);
      }
    }
  }
  for (const id of endsOf.keys()) {
    check(callOf.has(id), () => `batchEnd for batch ${id}, never called`);
  }
  for (const { event, time } of retries) {
    const call = callOf.get(event.batchId);
    const name = `retry of batch ${event.batchId}`;
    if (call === undefined) {
      violations.push(`${name}: never called`);
      continue;
    }
    check(
      event.attempt >= 2 && event.attempt <= attempts,
      () => `${name}: attempt ${event.attempt}, attempts ${attempts}`,
    );
    const expected = Math.min(o.retry.delay * 2 ** (event.attempt - 2), o.retry.maxDelay ?? INF);
    check(event.delay === expected, () => `${name}: delay ${event.delay}, expected ${expected}`);
    check(
      event.scope === "batch"
        ? event.error === call.thrown && event.error instanceof Transient
        : event.error instanceof ItemTransient,
      () => `${name}: scope ${event.scope} for ${String(event.error)}`,
    );
    if (event.scope === "batch") {
      // The retry runs its backoff after the failure, not before.
      const child = [...starts.values()].find(
        (start) => start.event.parentId === event.batchId && start.event.reason === "retry",
      );
      check(
        child === undefined || child.time >= time + event.delay,
        () => `${name}: retried at ${child?.time} ms, failed at ${time} ms, backoff ${event.delay}`,
      );
    }
  }
  for (const { event } of splits) {
    const call = callOf.get(event.batchId);
    check(
      o.splitOnError && call?.thrown !== undefined && event.error === call.thrown,
      () => `split of batch ${event.batchId}: not a batch that threw`,
    );
  }

  if (violations.length > 0) {
    throw new Error(
      `${violations.length} violation(s):\n  ${violations.slice(0, 12).join("\n  ")}\n` +
        `trace:\n  ${trace.slice(0, 80).join("\n  ")}`,
    );
  }
}

/** Whether the caller left by abort or timeout. */
function leftEarly(caller: CallerRecord): boolean {
  const reason = caller.settlements[0]?.reason;
  return (
    reason instanceof ItemTimeoutError ||
    (caller.signal !== undefined && reason === caller.signal.controller.signal.reason)
  );
}

function sameSet(a: readonly unknown[], b: readonly unknown[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((x) => right.has(x));
}

function show(settled: Settlement): string {
  if (settled.ok) return `value ${String(settled.value)}`;
  const reason = settled.reason;
  return reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason);
}

describe("property: keyed, deduplicating, retrying, splitting batcher under aborts, timeouts and stops", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const runs = Number(process.env.PROPERTY_RUNS ?? 300);

  it(
    "settles every caller once with its own outcome, within attempts, limits and without leaks",
    async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (scenario) => {
          vi.useFakeTimers({ now: 0 });
          try {
            await runScenario(scenario);
          } finally {
            vi.useRealTimers();
          }
        }),
        // About 1 s; PROPERTY_RUNS=20000 for a longer hunt. PROPERTY_SEED and PROPERTY_PATH
        // replay a counterexample fast-check reported.
        {
          numRuns: runs,
          ...(process.env.PROPERTY_SEED === undefined
            ? {}
            : { seed: Number(process.env.PROPERTY_SEED), path: process.env.PROPERTY_PATH }),
        },
      );
    },
    Math.max(60_000, runs * 20),
  );
});
