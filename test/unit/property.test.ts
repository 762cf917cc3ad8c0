import {
  type BatchContext,
  BatcherStoppedError,
  BatchResultError,
  createBatcher,
  QueueFullError,
} from "async-batcher";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BatchFailure,
  count,
  ItemFailure,
  itemFails,
  perform,
  runTimeline,
  type Step,
  type StopMode,
  type Timing,
} from "../helpers/property.js";

// Invariants over random scenarios, driven by fake timers. Always the Async timer variants: the
// engine reads the clock once per tick and forgets it in a microtask, and batches settle through
// promise jobs, so microtasks must run between timers.

type Outcome = "ok" | "undefined" | "itemErrors" | "throw" | "reject" | "wrongLength" | "notArray";

interface Behaviour extends Timing {
  readonly outcome: Outcome;
}

interface Scenario {
  /** Whole ms the fake clock is moved first (fractional clocks: see the last property). */
  readonly origin: number;
  readonly options: {
    readonly maxBatchSize: number;
    readonly maxQueueTime: number;
    readonly concurrency: number;
    readonly maxQueueSize: number;
  };
  /** Arrival time of each item in ms; the item's id is its index once sorted. */
  readonly arrivals: readonly number[];
  /** Batch `k` (in call order) behaves as `behaviours[k % length]`. */
  readonly behaviours: readonly Behaviour[];
  readonly flushAt: number | undefined;
  readonly stop:
    | { readonly at: number; readonly mode: StopMode; readonly timeout: number }
    | undefined;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  origin: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1e6 })),
  options: fc.record({
    maxBatchSize: count(8),
    maxQueueTime: fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: 50 }), weight: 4 },
      { arbitrary: fc.constant(0), weight: 1 },
      { arbitrary: fc.constant(Number.POSITIVE_INFINITY), weight: 1 },
    ),
    concurrency: count(4),
    maxQueueSize: count(20),
  }),
  arrivals: fc
    .array(
      fc.oneof(
        fc.integer({ min: 0, max: 200 }),
        // Bursts: several items in the same tick.
        fc.constantFrom(0, 40, 100),
      ),
      { maxLength: 30, size: "max" },
    )
    .map((times) => [...times].sort((a, b) => a - b)),
  behaviours: fc.array(
    fc.record({
      sync: fc.boolean(),
      duration: fc.integer({ min: 0, max: 100 }),
      honoursAbort: fc.boolean(),
      outcome: fc.oneof(
        { arbitrary: fc.constant<Outcome>("ok"), weight: 6 },
        {
          arbitrary: fc.constantFrom<Outcome>(
            "undefined",
            "itemErrors",
            "throw",
            "reject",
            "wrongLength",
            "notArray",
          ),
          weight: 4,
        },
      ),
    }),
    { minLength: 1, maxLength: 8 },
  ),
  flushAt: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
  stop: fc.option(
    fc.record({
      at: fc.integer({ min: 0, max: 300 }),
      mode: fc.constantFrom<StopMode>("graceful", "timeout", "force"),
      timeout: fc.integer({ min: 0, max: 150 }),
    }),
    { nil: undefined },
  ),
});

type Settlement = { ok: true; value: unknown } | { ok: false; reason: unknown };

interface ItemRecord {
  readonly id: number;
  /** What `process()` should do, judged from the batcher's state just before the call. */
  readonly expected: "accepted" | "full" | "stopped";
  readonly arrival: number;
  settlements: Settlement[];
  handed: number;
}

interface Call {
  readonly items: readonly number[];
  readonly context: BatchContext;
  readonly outcome: Outcome;
  readonly error: BatchFailure;
  /** ms when the batch function was called. */
  readonly start: number;
  /** ms when it returned, threw or settled its promise; `Infinity` while it runs. */
  end: number;
  /** Whether `stop()` had been called when it was called. */
  readonly afterStop: boolean;
}

/** Lets promise jobs run: enough hops for a caller rejected through a resolve function. */
async function hops(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

const isInfinite = (n: number) => n === Number.POSITIVE_INFINITY;

async function runScenario(s: Scenario): Promise<void> {
  const { maxBatchSize, maxQueueTime, concurrency, maxQueueSize } = s.options;
  await vi.advanceTimersByTimeAsync(s.origin);
  const origin = performance.now();
  const now = () => performance.now() - origin;

  const items: ItemRecord[] = [];
  const calls: Call[] = [];
  let running = 0;
  let maxRunning = 0;
  let stopCalled = false;
  /** Items with a lower id were submitted before flush(), so may be cut before they are due. */
  let flushedUpTo = 0;
  /** Set while process(), flush() or stop() runs: none of them may call processBatch itself. */
  let inPublicCall: string | undefined;
  const violations: string[] = [];
  const check = (ok: boolean, message: () => string) => {
    if (!ok) violations.push(message());
  };

  const produce = (batch: readonly number[], outcome: Outcome, error: BatchFailure): unknown => {
    switch (outcome) {
      case "ok":
        return batch.map((id) => id * 2);
      case "undefined":
        return undefined;
      case "itemErrors":
        return batch.map((id) => (itemFails(id) ? new ItemFailure(id) : id * 2));
      case "throw":
        throw error;
      case "reject":
        return Promise.reject(error);
      case "wrongLength":
        return [...batch.map((id) => id * 2), -1];
      case "notArray":
        return { results: batch };
    }
  };

  const batcher = createBatcher<number, number>(
    (batch, context) => {
      const behaviour = s.behaviours[calls.length % s.behaviours.length] as Behaviour;
      const error = new BatchFailure(`batch ${calls.length} failed`);
      const call: Call = {
        items: [...batch],
        context,
        outcome: behaviour.outcome,
        error,
        start: now(),
        end: Number.POSITIVE_INFINITY,
        afterStop: stopCalled,
      };
      calls.push(call);
      check(
        inPublicCall === undefined,
        () => `processBatch called synchronously by ${inPublicCall}`,
      );
      for (const id of batch) {
        const item = items[id];
        if (item === undefined) violations.push(`processBatch got unknown item ${id}`);
        else item.handed++;
      }
      check(
        batch.length >= 1 && batch.length <= maxBatchSize,
        () => `batch of ${batch.length} items, maxBatchSize ${maxBatchSize}`,
      );
      check(
        batcher.queueSize <= maxQueueSize,
        () => `queueSize ${batcher.queueSize} > ${maxQueueSize}`,
      );
      running++;
      maxRunning = Math.max(maxRunning, running);
      check(running <= concurrency, () => `${running} batches running, concurrency ${concurrency}`);

      return perform(
        behaviour,
        () => context.signal,
        () => produce(batch, behaviour.outcome, error) as number[],
        (sync) => {
          running--;
          call.end = sync ? call.start : now();
        },
      );
    },
    { maxBatchSize, maxQueueTime, concurrency, maxQueueSize },
  );

  const checkState = (where: string) => {
    check(
      batcher.queueSize <= maxQueueSize,
      () => `${where}: queueSize ${batcher.queueSize} > ${maxQueueSize}`,
    );
    if (!stopCalled) {
      check(
        batcher.isRunning === items.length > 0,
        () => `${where}: isRunning ${batcher.isRunning} with ${items.length} items submitted`,
      );
    }
  };

  const submit = (id: number, arrival: number) => {
    const expected = stopCalled
      ? "stopped"
      : batcher.queueSize >= maxQueueSize
        ? "full"
        : "accepted";
    const item: ItemRecord = { id, expected, arrival, settlements: [], handed: 0 };
    items.push(item);
    inPublicCall = `process(${id})`;
    const promise = batcher.process(id);
    inPublicCall = undefined;
    promise.then(
      (value) => item.settlements.push({ ok: true, value }),
      (reason: unknown) => item.settlements.push({ ok: false, reason }),
    );
    checkState(`after process(${id})`);
  };

  /** Accepted items not settled yet, among the first `upTo`. */
  const unsettled = (upTo = items.length) =>
    items
      .slice(0, upTo)
      .filter((item) => item.expected === "accepted" && item.settlements.length === 0)
      .map((item) => item.id);

  let stopPromise: Promise<void> | undefined;
  let stopped = false;
  const stop = (mode: StopMode, timeout: number) => {
    stopCalled = true;
    const options =
      mode === "force" ? { force: true } : mode === "timeout" ? { timeout } : undefined;
    inPublicCall = "stop()";
    stopPromise = batcher.stop(options);
    inPublicCall = undefined;
    stopPromise.then(
      async () => {
        stopped = true;
        check(batcher.inFlight === 0, () => `inFlight ${batcher.inFlight} once stopped`);
        check(batcher.queueSize === 0, () => `queueSize ${batcher.queueSize} once stopped`);
        check(!batcher.isRunning, () => "isRunning once stopped");
        const submitted = items.length;
        await hops();
        const left = unsettled(submitted);
        check(left.length === 0, () => `items ${left} not settled when stop() resolved`);
      },
      (reason: unknown) => violations.push(`stop() rejected: ${String(reason)}`),
    );
  };

  const flush = () => {
    flushedUpTo = items.length;
    // flush() covers the items queued now, which are the newest accepted ones (FIFO); not the
    // ones already in flight.
    const waiting = batcher.queueSize;
    const accepted = items.filter((item) => item.expected === "accepted");
    const queued = waiting === 0 ? [] : accepted.slice(-waiting);
    inPublicCall = "flush()";
    const flushed = batcher.flush();
    inPublicCall = undefined;
    flushed.then(
      async () => {
        await hops();
        const left = queued.filter((item) => item.settlements.length === 0).map((item) => item.id);
        check(left.length === 0, () => `items ${left} not settled when flush() resolved`);
      },
      (reason: unknown) => violations.push(`flush() rejected: ${String(reason)}`),
    );
  };

  // The timeline: arrivals first at a given ms, then a flush, then the stop.
  const steps: Step[] = s.arrivals.map((at, id) => ({ at, order: 0, run: () => submit(id, at) }));
  if (s.flushAt !== undefined) steps.push({ at: s.flushAt, order: 1, run: flush });
  const plannedStop = s.stop;
  if (plannedStop !== undefined) {
    steps.push({
      at: plannedStop.at,
      order: 2,
      run: () => stop(plannedStop.mode, plannedStop.timeout),
    });
  }
  await runTimeline(steps, checkState, false);

  // Long enough for every batch: 30 items, one per batch, 100 ms each, one at a time.
  await vi.advanceTimersByTimeAsync(10_000);
  await hops();
  checkState("after the scenario");

  if (!stopCalled && !isInfinite(maxQueueTime)) {
    // The timer alone dispatches everything: nothing may be left waiting.
    const left = unsettled();
    check(left.length === 0, () => `items ${left} never settled without stop()`);
    check(batcher.queueSize === 0, () => `queueSize ${batcher.queueSize} when idle`);
    check(batcher.inFlight === 0, () => `inFlight ${batcher.inFlight} when idle`);
  }

  // Stop, or stop again (idempotent: the same promise), then drain whatever is left.
  if (stopPromise === undefined) stop("graceful", 0);
  else check(batcher.stop() === stopPromise, () => "a second stop() returned another promise");
  await vi.advanceTimersByTimeAsync(10_000);
  await hops();

  check(stopped, () => "stop() never resolved");
  check(batcher.inFlight === 0, () => `inFlight ${batcher.inFlight} after stop`);
  check(batcher.queueSize === 0, () => `queueSize ${batcher.queueSize} after stop`);
  check(!batcher.isRunning, () => "isRunning after stop");
  check(
    maxRunning <= concurrency,
    () => `${maxRunning} batches ran at once, concurrency ${concurrency}`,
  );

  // FIFO: batches in call order, each in submission order.
  const handedOrder = calls.flatMap((call) => call.items);
  for (let i = 1; i < handedOrder.length; i++) {
    const [a, b] = [handedOrder[i - 1] as number, handedOrder[i] as number];
    check(a < b, () => `item ${b} handed after item ${a}: order ${handedOrder}`);
  }
  for (let i = 1; i < calls.length; i++) {
    const [a, b] = [calls[i - 1] as Call, calls[i] as Call];
    check(
      a.context.batchId < b.context.batchId,
      () => `batch ${b.context.batchId} called after batch ${a.context.batchId}`,
    );
  }

  // Timing. Unless flush() or stop() covers it, a partial batch is never cut before its oldest item
  // has waited maxQueueTime. And no batch is cut after it is due unless every slot was busy then: due
  // when full (its last item came) or when its oldest item has waited maxQueueTime, and never
  // before the batch ahead of it was cut (cuts are FIFO).
  const busyAt = (t: number) => calls.filter((call) => call.start <= t && t < call.end).length;
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i] as Call;
    const size = call.items.length;
    const oldestId = call.items[0] as number;
    const oldest = (items[oldestId] as ItemRecord).arrival;
    const newest = (items[call.items[size - 1] as number] as ItemRecord).arrival;
    if (!call.afterStop && oldestId >= flushedUpTo && size < maxBatchSize) {
      check(
        call.start - oldest >= maxQueueTime,
        () => `batch [${call.items}] cut early at ${call.start} ms, oldest item came at ${oldest}`,
      );
    }
    const due = Math.max(
      i === 0 ? 0 : (calls[i - 1] as Call).start,
      Math.min(size === maxBatchSize ? newest : Number.POSITIVE_INFINITY, oldest + maxQueueTime),
    );
    if (call.start > due) {
      check(
        busyAt(due) >= concurrency,
        () =>
          `batch [${call.items}] cut at ${call.start} ms, due at ${due} ms when ${busyAt(due)} ` +
          `of ${concurrency} slots were busy`,
      );
    }
  }

  // Each item's fate.
  const callOf = new Map<number, Call>();
  for (const call of calls) for (const id of call.items) callOf.set(id, call);
  const forced = calls.some((call) => call.context.signal.aborted);
  for (const item of items) {
    const { id, settlements } = item;
    check(settlements.length === 1, () => `item ${id} settled ${settlements.length} times`);
    const settled = settlements[0];
    if (settled === undefined) continue;
    const reason = settled.ok ? undefined : settled.reason;

    if (item.expected !== "accepted") {
      check(item.handed === 0, () => `item ${id} rejected at once but handed ${item.handed} times`);
      const expectedClass = item.expected === "full" ? QueueFullError : BatcherStoppedError;
      check(
        reason instanceof expectedClass,
        () => `item ${id}: expected ${expectedClass.name}, got ${show(settled)}`,
      );
      continue;
    }

    check(!(reason instanceof QueueFullError), () => `accepted item ${id} got QueueFullError`);
    const call = callOf.get(id);
    if (call === undefined || item.handed === 0) {
      // Only a force stop (or a graceful stop's timeout) rejects an item that never ran.
      check(
        reason instanceof BatcherStoppedError &&
          stopCalled &&
          (s.stop?.mode === "force" || s.stop?.mode === "timeout"),
        () => `item ${id} never handed to processBatch, settled with ${show(settled)}`,
      );
      continue;
    }
    check(item.handed === 1, () => `item ${id} handed to processBatch ${item.handed} times`);

    // A force stop rejects exactly the items of the batches it aborted.
    if (call.context.signal.aborted) {
      check(
        reason instanceof BatcherStoppedError && reason === call.context.signal.reason,
        () => `item ${id} of an aborted batch settled with ${show(settled)}`,
      );
      continue;
    }
    const ok = (value: unknown) =>
      check(
        settled.ok && settled.value === value,
        () => `item ${id} (${call.outcome}): expected ${String(value)}, got ${show(settled)}`,
      );
    const fails = (test: (e: unknown) => boolean, what: string) =>
      check(
        !settled.ok && test(reason),
        () => `item ${id} (${call.outcome}): expected ${what}, got ${show(settled)}`,
      );
    switch (call.outcome) {
      case "ok":
        ok(id * 2);
        break;
      case "undefined":
        ok(undefined);
        break;
      case "itemErrors":
        if (itemFails(id)) fails((e) => e instanceof ItemFailure && e.id === id, "its own error");
        else ok(id * 2);
        break;
      case "throw":
      case "reject":
        fails((e) => e === call.error, "the batch's error");
        break;
      case "wrongLength":
      case "notArray":
        fails(
          (e) => e instanceof BatchResultError && e.expected === call.items.length,
          "BatchResultError",
        );
        break;
    }
  }
  if (forced) {
    check(
      s.stop?.mode === "force" || s.stop?.mode === "timeout",
      () => "a batch signal was aborted without a force stop",
    );
  }

  if (violations.length > 0) {
    throw new Error(
      `${violations.length} violation(s):\n  ${violations.slice(0, 10).join("\n  ")}\nbatches: ${JSON.stringify(calls.map((c) => c.items))}`,
    );
  }
}

function show(settled: Settlement): string {
  if (settled.ok) return `value ${String(settled.value)}`;
  const reason = settled.reason;
  return reason instanceof Error ? `${reason.name}: ${reason.message}` : `reason ${String(reason)}`;
}

describe("property: random arrivals, durations, failures, flushes and stops", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("settles every promise once, loses nothing, keeps every limit and FIFO order", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        vi.useFakeTimers();
        try {
          await runScenario(scenario);
        } finally {
          vi.useRealTimers();
        }
      }),
      // About 1 s; PROPERTY_RUNS=20000 for a longer hunt.
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 500) },
    );
  });

  // Real clocks read fractions of a ms (performance.now()), and the deadline arithmetic then
  // carries float noise: (t + 4) - t can be 3.9999999999999996 or 4.000000000000014. A batch must
  // still be cut when its oldest item has waited maxQueueTime, not 1 ms later.
  it("cuts a partial batch exactly when due on a fractional clock", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 0, max: 1000, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 5 }),
        async (origin, maxQueueTime, offsets) => {
          vi.useFakeTimers();
          try {
            await vi.advanceTimersByTimeAsync(origin);
            const start = performance.now();
            // Every event happens on a whole ms after start: rounding hides the test's own noise.
            const now = () => Math.round((performance.now() - start) * 1e6) / 1e6;
            const cuts: { at: number; batch: number[] }[] = [];
            const batcher = createBatcher<number, number>(
              (batch) => {
                cuts.push({ at: now(), batch: [...batch] });
                return batch;
              },
              { maxQueueTime, concurrency: Number.POSITIVE_INFINITY },
            );
            const arrivals = [...offsets].sort((a, b) => a - b);
            const settled: Promise<unknown>[] = [];
            let clock = 0;
            for (const [id, at] of arrivals.entries()) {
              if (at > clock) await vi.advanceTimersByTimeAsync(at - clock);
              clock = at;
              settled.push(batcher.process(id));
            }
            await vi.advanceTimersByTimeAsync(1000);
            await Promise.all(settled);
            await batcher.stop();
            for (const { at, batch } of cuts) {
              const oldest = arrivals[batch[0] as number] as number;
              expect(at, `batch [${batch}] of items from ${oldest} ms`).toBe(oldest + maxQueueTime);
            }
          } finally {
            vi.useRealTimers();
          }
        },
      ),
      {
        numRuns: 100,
        examples: [
          [0.056003, 4, [0]],
          [125.001681, 3, [0]],
        ],
      },
    );
  });
});
