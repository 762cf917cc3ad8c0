/**
 * Flow-control features together (issue 3): a keyed, weighted, prioritised, rate-limited batcher
 * with aborts and timeouts under stop() (graceful, graceful with a timeout, forced), and other
 * realistic combinations. Each scenario is deterministic under fake timers and asserts exactly
 * which items each batch got, how every caller settled, and that the limits held throughout.
 */
import { getEventListeners } from "node:events";
import {
  type BatchContext,
  type BatcherOptions,
  BatcherStoppedError,
  createBatcher,
  ItemTimeoutError,
  ItemTooLargeError,
  QueueFullError,
} from "async-batcher";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { runJobs, track } from "../helpers/manual.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** An item: its key is the letters of its id ("a7" -> "a"), its weight is `w`. */
interface Item {
  id: string;
  w: number;
}

interface Limits {
  maxBatchSize: number;
  maxBatchWeight: number;
  concurrency: number;
  rate?: { batches?: number; items?: number; interval: number };
}

interface FlowCall {
  ids: string[];
  key: string | number | undefined;
  at: number;
  signal: AbortSignal;
  context: BatchContext;
  /** Settles the batch with `done:<id>` for each item. */
  finish(): void;
}

const keyOf = (item: Item) => item.id.replace(/\d+$/, "");

/**
 * A keyed, weighted batcher whose batches stay in flight until the test finishes them. Every
 * batch is checked against `limits` when it starts; what breaks them lands in `violations`.
 * `submit()` records how each caller settled, and when.
 */
function flowBatcher(options: BatcherOptions<Item, string>, limits: Limits) {
  const calls: FlowCall[] = [];
  const violations: string[] = [];
  const outcomes = new Map<string, { value?: string; error?: unknown; at: number }>();
  /** Times at which an item's caller was cancelled (aborted or timed out) on purpose. */
  const cancelledAt = new Map<string, number>();
  let running = 0;
  const batcher = createBatcher<Item, string>((items, context) => {
    const now = Date.now();
    const ids = items.map((i) => i.id);
    running++;
    if (running > limits.concurrency) violations.push(`concurrency ${running} at ${now}`);
    if (items.length > limits.maxBatchSize) violations.push(`size ${ids} at ${now}`);
    const weight = items.reduce((sum, i) => sum + i.w, 0);
    if (weight > limits.maxBatchWeight) violations.push(`weight ${weight} ${ids} at ${now}`);
    for (const item of items) {
      const key = options.batchKey === undefined ? undefined : keyOf(item);
      if (key !== context.key) violations.push(`key ${item.id} in ${context.key}`);
      if (outcomes.has(item.id)) violations.push(`${item.id} settled before its batch`);
      const cancelled = cancelledAt.get(item.id);
      if (cancelled !== undefined && now >= cancelled) {
        violations.push(`${item.id} cancelled at ${cancelled}, batched at ${now}`);
      }
    }
    const rate = limits.rate;
    if (rate !== undefined) {
      const window = calls.filter((c) => c.at > now - rate.interval);
      if (window.length + 1 > (rate.batches ?? Number.POSITIVE_INFINITY)) {
        violations.push(`rate: ${window.length + 1} batches in the window at ${now}`);
      }
      const inWindow = window.reduce((sum, c) => sum + c.ids.length, 0) + ids.length;
      if (inWindow > (rate.items ?? Number.POSITIVE_INFINITY)) {
        violations.push(`rate: ${inWindow} items in the window at ${now}`);
      }
    }
    return new Promise<string[]>((resolve) => {
      let finished = false;
      calls.push({
        ids,
        key: context.key,
        at: now,
        signal: context.signal,
        context,
        finish: () => {
          if (finished) return;
          finished = true;
          running--;
          resolve(ids.map((id) => `done:${id}`));
        },
      });
    });
  }, options);

  const submit = (
    id: string,
    w: number,
    processOptions?: Parameters<typeof batcher.process>[1],
  ) => {
    const promise = batcher.process({ id, w }, processOptions);
    promise.then(
      (value) => outcomes.set(id, { value, at: Date.now() }),
      (error: unknown) => outcomes.set(id, { error, at: Date.now() }),
    );
    return promise;
  };

  /** How each caller settled: "ok", or the error's class with its details, or "pending". */
  const outcome = (id: string): string => {
    const o = outcomes.get(id);
    if (o === undefined) return "pending";
    if (o.error === undefined) return o.value === `done:${id}` ? "ok" : `wrong value ${o.value}`;
    const error = o.error;
    if (error instanceof ItemTimeoutError) {
      return error.code === "ERR_ITEM_TIMEOUT" ? `timeout(${error.timeout})` : "bad code";
    }
    if (error instanceof ItemTooLargeError) {
      return error.code === "ERR_ITEM_TOO_LARGE"
        ? `too-large(${error.weight}/${error.maxBatchWeight})`
        : "bad code";
    }
    if (error instanceof QueueFullError) {
      return error.code === "ERR_QUEUE_FULL" ? `queue-full(${error.maxQueueSize})` : "bad code";
    }
    if (error instanceof BatcherStoppedError) {
      return error.code === "ERR_BATCHER_STOPPED" ? "stopped" : "bad code";
    }
    return error instanceof Error ? error.message : String(error);
  };

  const outcomesOf = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, outcome(id)]));

  return {
    batcher,
    calls,
    violations,
    outcomes,
    cancelledAt,
    submit,
    outcome,
    outcomesOf,
    batches: () => calls.map((c) => ({ key: c.key, ids: c.ids, at: c.at })),
  };
}

/** Advances the fake clock to the absolute time `t`, 1 ms at a time, sampling `sample` after each. */
async function advanceTo(t: number, sample?: () => void) {
  while (Date.now() < t) {
    await vi.advanceTimersByTimeAsync(1);
    sample?.();
  }
}

const listeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

describe("keyed + weighted + prioritised + rate-limited, with aborts and timeouts, under stop()", () => {
  const limits: Limits = {
    maxBatchSize: 3,
    maxBatchWeight: 10,
    concurrency: 2,
    rate: { batches: 2, interval: 100 },
  };
  const options: BatcherOptions<Item, string> = {
    batchKey: keyOf,
    weigh: (item) => item.w,
    maxBatchWeight: 10,
    maxBatchSize: 3,
    maxQueueTime: 50,
    concurrency: 2,
    rateLimit: { batches: 2, interval: 100 },
  };
  const ALL = [
    "a1",
    "a2",
    "a3",
    "a4",
    "ax",
    "b1",
    "b2",
    "a5",
    "a6",
    "b3",
    "b4",
    "a7",
    "a8",
    "a9",
    "a10",
    "a11",
    "b5",
    "b6",
  ];

  /**
   * The common part, from t=0 to t=125 (just before the stop):
   *
   * - t=0: a1 (w4, signal), a2 (w4), a3 (w4, priority 1) fill key a to weight 12: batch #1 is
   *   cut at once by weight with the priority-1 item first, [a3, a1] (a2 would make 12). a4 (w1,
   *   signal) queues. b1 (w2, signal), b2 (w9, timeout 30) reach weight 11: batch #2 [b1]. That
   *   uses the rate limit (2 per 100 ms) and both slots. ax (w11) is too heavy on its own.
   * - t=10: a1 aborts while its batch runs: it rejects, batch #1 goes on (a3 still wants it).
   * - t=20: b1 aborts: every item of batch #2 is gone, so its context.signal aborts.
   * - t=25: a4 aborts while queued; t=30: b2 times out while queued.
   * - t=40: a5 (w3), a6 (w3, priority 2), b3 (w5), b4 (w1, priority -1, timeout 80) queue.
   * - t=60: batches #1 and #2 return; slots are free but the rate limit holds until t=100.
   * - t=100: batch #3 [a6, a2, a5] (key a waited longest; priority 2 first; size 3, weight
   *   10), batch #4 [b3, b4] (due by time since t=90).
   * - t=110: a7 (w2, shared signal), a8 (w2, timeout 100), a9 (w2, priority 3), a10 (w2, shared
   *   signal), a11 (w2), b5 (w8), b6 (w3, priority 1) queue, in that order; both slots and the
   *   rate are used. Key a stays first in line until it is empty: its oldest item arrived first.
   * - t=120: b4 times out while its batch runs.
   */
  async function common() {
    const flow = flowBatcher(options, limits);
    const { batcher, calls, submit, cancelledAt } = flow;
    const abortA1 = new AbortController();
    const abortA4 = new AbortController();
    const abortB1 = new AbortController();
    const shared = new AbortController(); // long-lived, never aborted
    const reasons = {
      a1: new Error("a1 cancelled"),
      a4: new Error("a4 cancelled"),
      b1: new Error("b1 cancelled"),
    };

    submit("a1", 4, { signal: abortA1.signal });
    submit("a2", 4);
    submit("a3", 4, { priority: 1 });
    submit("a4", 1, { signal: abortA4.signal });
    submit("b1", 2, { signal: abortB1.signal });
    submit("b2", 9, { timeout: 30 });
    submit("ax", 11);
    cancelledAt.set("b2", 30);
    expect(batcher.queueSize).toBe(3); // a2, a4, b2
    await runJobs();
    expect(flow.batches()).toEqual([
      { key: "a", ids: ["a3", "a1"], at: 0 },
      { key: "b", ids: ["b1"], at: 0 },
    ]);
    expect(flow.outcome("ax")).toBe("too-large(11/10)");
    expect(listeners(abortA1.signal)).toBe(1);

    await advanceTo(10);
    cancelledAt.set("a1", 10);
    abortA1.abort(reasons.a1);
    await runJobs();
    expect(flow.outcome("a1")).toBe("a1 cancelled");
    expect(flow.outcomes.get("a1")?.error).toBe(reasons.a1);
    expect(calls[0]?.signal.aborted).toBe(false);
    expect(listeners(abortA1.signal)).toBe(0);

    await advanceTo(20);
    cancelledAt.set("b1", 20);
    abortB1.abort(reasons.b1);
    await runJobs();
    expect(flow.outcome("b1")).toBe("b1 cancelled");
    expect(calls[1]?.signal.aborted).toBe(true);
    expect(calls[1]?.signal.reason).toBe(reasons.b1);
    expect(batcher.inFlight).toBe(3); // the slot is held until the batch function returns

    await advanceTo(25);
    cancelledAt.set("a4", 25);
    abortA4.abort(reasons.a4);
    expect(batcher.queueSize).toBe(2); // at once
    await runJobs();
    expect(flow.outcome("a4")).toBe("a4 cancelled");
    expect(listeners(abortA4.signal)).toBe(0);

    await advanceTo(30);
    expect(batcher.queueSize).toBe(1);
    expect(flow.outcome("b2")).toBe("timeout(30)");

    await advanceTo(40);
    submit("a5", 3);
    submit("a6", 3, { priority: 2 });
    submit("b3", 5);
    submit("b4", 1, { priority: -1, timeout: 80 });
    cancelledAt.set("b4", 120);
    expect(batcher.queueSize).toBe(5);

    await advanceTo(60);
    expect(calls).toHaveLength(2); // both slots busy
    calls[0]?.finish();
    calls[1]?.finish();
    await runJobs();
    expect(flow.outcomesOf(["a1", "a3", "b1"])).toEqual({
      a1: "a1 cancelled", // its result was dropped
      a3: "ok",
      b1: "b1 cancelled",
    });
    await advanceTo(99);
    expect(calls).toHaveLength(2); // slots free, but the rate limit holds
    await advanceTo(100);
    expect(flow.batches().slice(2)).toEqual([
      { key: "a", ids: ["a6", "a2", "a5"], at: 100 },
      { key: "b", ids: ["b3", "b4"], at: 100 },
    ]);

    await advanceTo(110);
    submit("a7", 2, { signal: shared.signal });
    submit("a8", 2, { timeout: 100 });
    submit("a9", 2, { priority: 3 });
    submit("a10", 2, { signal: shared.signal });
    submit("a11", 2);
    submit("b5", 8);
    submit("b6", 3, { priority: 1 });
    cancelledAt.set("a8", 210);
    expect(listeners(shared.signal)).toBe(1); // one listener for both items
    expect(batcher.queueSize).toBe(7);

    await advanceTo(120);
    expect(flow.outcome("b4")).toBe("timeout(80)");
    expect(calls[3]?.signal.aborted).toBe(false); // b3 still wants batch #4
    await advanceTo(125);
    expect(calls).toHaveLength(4);
    return {
      ...flow,
      shared: shared.signal,
      signals: [abortA1, abortA4, abortB1, shared].map((c) => c.signal),
    };
  }

  it("graceful stop: drains every key and priority under the rate limit and concurrency", async () => {
    const flow = await common();
    const { batcher, calls, shared } = flow;
    const stopped = track(batcher.stop());
    await expect(batcher.process({ id: "late1", w: 1 })).rejects.toBeInstanceOf(
      BatcherStoppedError,
    );

    await advanceTo(130);
    calls[2]?.finish();
    await advanceTo(150);
    calls[3]?.finish();
    await advanceTo(199);
    expect(calls).toHaveLength(4); // rate: 2 batches at t=100
    await advanceTo(200);
    // Key a first (a10 arrived before b5), priority 3 first, then FIFO, 3 at most.
    expect(flow.batches().slice(4)).toEqual([
      { key: "a", ids: ["a9", "a7", "a8"], at: 200 },
      { key: "a", ids: ["a10", "a11"], at: 200 },
    ]);
    await advanceTo(210);
    expect(flow.outcome("a8")).toBe("timeout(100)"); // while its batch runs
    expect(calls[4]?.signal.aborted).toBe(false);
    await advanceTo(215);
    calls[4]?.finish();
    await runJobs();
    expect(listeners(shared)).toBe(1); // a7 settled, a10 still holds it
    await advanceTo(220);
    calls[5]?.finish();
    await runJobs();
    expect(listeners(shared)).toBe(0);
    await advanceTo(299);
    expect(calls).toHaveLength(6);
    expect(stopped.settled).toBe(false);
    await advanceTo(300);
    expect(flow.batches().slice(6)).toEqual([
      { key: "b", ids: ["b6"], at: 300 }, // priority 1 first; b5 (w8) would make 11
      { key: "b", ids: ["b5"], at: 300 },
    ]);
    await advanceTo(310);
    expect(stopped.settled).toBe(false);
    calls[6]?.finish();
    calls[7]?.finish();
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeUndefined();

    expect(flow.outcomesOf(ALL)).toEqual({
      a1: "a1 cancelled",
      a2: "ok",
      a3: "ok",
      a4: "a4 cancelled",
      ax: "too-large(11/10)",
      b1: "b1 cancelled",
      b2: "timeout(30)",
      a5: "ok",
      a6: "ok",
      b3: "ok",
      b4: "timeout(80)",
      a7: "ok",
      a8: "timeout(100)",
      a9: "ok",
      a10: "ok",
      a11: "ok",
      b5: "ok",
      b6: "ok",
    });
    expect(flow.violations).toEqual([]);
    for (const signal of flow.signals) expect(listeners(signal)).toBe(0);
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    expect(batcher.isRunning).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("graceful stop with a timeout: drains under the limits, then forces what is left", async () => {
    const flow = await common();
    const { batcher, calls } = flow;
    const stopped = track(batcher.stop({ timeout: 150 })); // forced at t=275

    await advanceTo(130);
    calls[2]?.finish();
    await advanceTo(150);
    calls[3]?.finish();
    await advanceTo(200);
    expect(flow.batches().slice(4)).toEqual([
      { key: "a", ids: ["a9", "a7", "a8"], at: 200 },
      { key: "a", ids: ["a10", "a11"], at: 200 },
    ]);
    await advanceTo(220);
    calls[5]?.finish(); // batch #5 [a9, a7, a8] keeps running
    await advanceTo(274);
    expect(stopped.settled).toBe(false);
    expect(batcher.queueSize).toBe(2); // b5, b6: held by the rate limit
    const batch5 = calls[4] as FlowCall;
    expect(batch5.signal.aborted).toBe(false);

    await advanceTo(275);
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeUndefined();
    expect(batch5.signal.aborted).toBe(true);
    expect(batch5.signal.reason).toBeInstanceOf(BatcherStoppedError);
    expect(flow.outcomes.get("a9")?.error).toBe(batch5.signal.reason);
    batch5.finish(); // a late result: dropped
    await advanceTo(1000);
    expect(calls).toHaveLength(6);

    expect(flow.outcomesOf(ALL)).toEqual({
      a1: "a1 cancelled",
      a2: "ok",
      a3: "ok",
      a4: "a4 cancelled",
      ax: "too-large(11/10)",
      b1: "b1 cancelled",
      b2: "timeout(30)",
      a5: "ok",
      a6: "ok",
      b3: "ok",
      b4: "timeout(80)",
      a7: "stopped",
      a8: "timeout(100)", // timed out before the stop was forced: keeps its own error
      a9: "stopped",
      a10: "ok",
      a11: "ok",
      b5: "stopped",
      b6: "stopped",
    });
    for (const id of ["a7", "a9", "b5", "b6"]) {
      expect(flow.outcomes.get(id)?.at).toBe(275);
    }
    expect(flow.violations).toEqual([]);
    for (const signal of flow.signals) expect(listeners(signal)).toBe(0);
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("force stop: every queued and running item rejects at once; timed-out and aborted ones keep their error", async () => {
    const flow = await common();
    const { batcher, calls } = flow;
    await batcher.stop({ force: true });
    expect(Date.now()).toBe(125);
    await runJobs();
    expect(calls[2]?.signal.aborted).toBe(true);
    expect(calls[3]?.signal.aborted).toBe(true);
    expect(calls[2]?.signal.reason).toBeInstanceOf(BatcherStoppedError);
    for (const call of calls) call.finish(); // late results: dropped
    await advanceTo(1000);
    expect(calls).toHaveLength(4); // nothing started after the stop

    expect(flow.outcomesOf(ALL)).toEqual({
      a1: "a1 cancelled",
      a2: "stopped",
      a3: "ok",
      a4: "a4 cancelled",
      ax: "too-large(11/10)",
      b1: "b1 cancelled",
      b2: "timeout(30)",
      a5: "stopped",
      a6: "stopped",
      b3: "stopped",
      b4: "timeout(80)",
      a7: "stopped",
      a8: "stopped",
      a9: "stopped",
      a10: "stopped",
      a11: "stopped",
      b5: "stopped",
      b6: "stopped",
    });
    expect(flow.violations).toEqual([]);
    for (const signal of flow.signals) expect(listeners(signal)).toBe(0);
    expect(batcher.queueSize).toBe(0);
    expect(batcher.inFlight).toBe(0);
    expect(batcher.isRunning).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    await expect(batcher.process({ id: "late", w: 1 })).rejects.toBeInstanceOf(BatcherStoppedError);
  });

  it("force stop escalating a graceful one mid-drain", async () => {
    const flow = await common();
    const { batcher, calls } = flow;
    const graceful = track(batcher.stop());
    await advanceTo(130);
    calls[2]?.finish();
    await advanceTo(150);
    calls[3]?.finish();
    await advanceTo(200);
    expect(calls).toHaveLength(6);
    await advanceTo(205);
    const forced = batcher.stop({ force: true });
    await forced;
    await runJobs();
    expect(graceful.settled).toBe(true);
    expect(flow.outcomesOf(["a7", "a8", "a9", "a10", "a11", "b5", "b6"])).toEqual({
      a7: "stopped",
      a8: "stopped", // its timeout (t=210) had not passed yet
      a9: "stopped",
      a10: "stopped",
      a11: "stopped",
      b5: "stopped",
      b6: "stopped",
    });
    await advanceTo(1000);
    expect(calls).toHaveLength(6);
    expect(flow.violations).toEqual([]);
    for (const signal of flow.signals) expect(listeners(signal)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("onQueueFull 'wait' + keys + rateLimit (items), with an abort and a timeout while waiting", () => {
  it("admits waiters FIFO as rate-limited batches leave, never over maxQueueSize, and drains them on a graceful stop", async () => {
    const limits: Limits = {
      maxBatchSize: 2,
      maxBatchWeight: Number.POSITIVE_INFINITY,
      concurrency: Number.POSITIVE_INFINITY,
      rate: { items: 3, interval: 100 },
    };
    const flow = flowBatcher(
      {
        batchKey: keyOf,
        maxBatchSize: 2,
        maxQueueTime: 50,
        maxQueueSize: 3,
        onQueueFull: "wait",
        rateLimit: { items: 3, interval: 100 },
        concurrency: Number.POSITIVE_INFINITY,
      },
      limits,
    );
    const { batcher, calls, submit, cancelledAt } = flow;
    let maxQueued = 0;
    const sample = () => {
      maxQueued = Math.max(maxQueued, batcher.queueSize);
      for (const call of calls) call.finish(); // batches return at once
    };
    const abortB4 = new AbortController();
    const reason = new Error("b4 cancelled");

    submit("a1", 1);
    submit("b1", 1);
    submit("a2", 1); // key a full: [a1, a2] at once (2 of the 3 items per 100 ms)
    submit("b2", 1); // key b full, but 1 item of the quota left: [b1]
    submit("a3", 1);
    submit("b3", 1); // queue: b2, a3, b3 (full: 3)
    submit("a4", 1); // waits
    submit("b4", 1, { signal: abortB4.signal }); // waits
    submit("a5", 1, { timeout: 60 }); // waits
    cancelledAt.set("b4", 30);
    cancelledAt.set("a5", 60);
    expect(batcher.queueSize).toBe(3);
    expect(batcher.waiting).toBe(3);
    await runJobs();
    sample();
    expect(flow.batches()).toEqual([
      { key: "a", ids: ["a1", "a2"], at: 0 },
      { key: "b", ids: ["b1"], at: 0 },
    ]);

    await advanceTo(30, sample);
    abortB4.abort(reason);
    expect(batcher.waiting).toBe(2);
    await advanceTo(60, sample);
    expect(flow.outcome("a5")).toBe("timeout(60)"); // timed out while waiting
    expect(batcher.waiting).toBe(1);
    expect(batcher.queueSize).toBe(3);

    await advanceTo(99, sample);
    expect(calls).toHaveLength(2);
    await advanceTo(100, sample);
    // Key b waited longest: [b2, b3]; a4 is admitted; key a is full again ([a3, a4]) but only
    // 1 item of the quota is left: [a3].
    expect(flow.batches().slice(2)).toEqual([
      { key: "b", ids: ["b2", "b3"], at: 100 },
      { key: "a", ids: ["a3"], at: 100 },
    ]);
    expect(batcher.waiting).toBe(0);
    expect(batcher.queueSize).toBe(1); // a4

    await advanceTo(110, sample);
    submit("b5", 1);
    submit("b6", 1); // queue: a4, b5, b6
    submit("a6", 1); // waits
    expect(batcher.waiting).toBe(1);
    const stopped = track(batcher.stop()); // graceful: the waiter is still processed
    await advanceTo(199, sample);
    expect(calls).toHaveLength(4);
    await advanceTo(200, sample);
    expect(flow.batches().slice(4)).toEqual([
      { key: "a", ids: ["a4"], at: 200 },
      { key: "b", ids: ["b5", "b6"], at: 200 },
    ]);
    expect(batcher.waiting).toBe(0);
    expect(stopped.settled).toBe(false);
    await advanceTo(300, sample);
    await runJobs();
    sample();
    await runJobs();
    expect(flow.batches().slice(6)).toEqual([{ key: "a", ids: ["a6"], at: 300 }]);
    expect(stopped.settled).toBe(true);

    expect(
      flow.outcomesOf(["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3", "b4", "b5", "b6"]),
    ).toEqual({
      a1: "ok",
      a2: "ok",
      a3: "ok",
      a4: "ok",
      a5: "timeout(60)",
      a6: "ok",
      b1: "ok",
      b2: "ok",
      b3: "ok",
      b4: "b4 cancelled",
      b5: "ok",
      b6: "ok",
    });
    expect(flow.outcomes.get("b4")?.error).toBe(reason);
    expect(maxQueued).toBe(3);
    expect(flow.violations).toEqual([]);
    expect(listeners(abortB4.signal)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("force stop rejects waiting callers with BatcherStoppedError", async () => {
    const flow = flowBatcher(
      {
        batchKey: keyOf,
        maxBatchSize: 2,
        maxQueueSize: 2,
        onQueueFull: "wait",
        rateLimit: { batches: 1, interval: 100 },
      },
      { maxBatchSize: 2, maxBatchWeight: Number.POSITIVE_INFINITY, concurrency: 1 },
    );
    const { batcher, calls, submit } = flow;
    for (const id of ["a1", "a2", "b1", "a3", "b2", "a4"]) submit(id, 1);
    await runJobs();
    expect(flow.batches()).toEqual([{ key: "a", ids: ["a1", "a2"], at: 0 }]);
    expect(batcher.queueSize).toBe(2);
    expect(batcher.waiting).toBe(2);
    await batcher.stop({ force: true });
    await runJobs();
    expect(batcher.waiting).toBe(0);
    expect(flow.outcomesOf(["a1", "a2", "b1", "a3", "b2", "a4"])).toEqual({
      a1: "stopped",
      a2: "stopped",
      b1: "stopped",
      a3: "stopped",
      b2: "stopped",
      a4: "stopped",
    });
    await advanceTo(500);
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("onQueueFull 'dropOldest' + priorities + timeouts", () => {
  it("drops the oldest arrival whatever its priority, takes high priorities first, and a timed-out item frees its slot", async () => {
    const flow = flowBatcher(
      {
        maxBatchSize: 2,
        maxQueueTime: 100,
        maxQueueSize: 3,
        onQueueFull: "dropOldest",
        itemTimeout: 150,
        concurrency: 1,
      },
      { maxBatchSize: 2, maxBatchWeight: Number.POSITIVE_INFINITY, concurrency: 1 },
    );
    const { batcher, calls, submit, cancelledAt } = flow;

    submit("x1", 0);
    submit("x2", 0); // full: [x1, x2] at once, holding the only slot
    submit("q1", 0);
    submit("q2", 0, { priority: 5 });
    submit("q3", 0, { priority: 1 }); // queue full: q1, q2, q3
    submit("q4", 0, { priority: 9 }); // drops q1, the oldest
    submit("q5", 0); // drops q2: the oldest now, although its priority is 5
    await runJobs();
    expect(flow.batches()).toEqual([{ key: undefined, ids: ["x1", "x2"], at: 0 }]);
    expect(flow.outcomesOf(["q1", "q2"])).toEqual({ q1: "queue-full(3)", q2: "queue-full(3)" });
    expect(batcher.queueSize).toBe(3);

    await advanceTo(120);
    calls[0]?.finish();
    await runJobs();
    expect(flow.batches().slice(1)).toEqual([{ key: undefined, ids: ["q4", "q3"], at: 120 }]);

    await advanceTo(130);
    submit("q6", 0, { priority: 2, timeout: Number.POSITIVE_INFINITY });
    submit("q7", 0, { timeout: 10 }); // queue: q5, q6, q7
    cancelledAt.set("q7", 140);
    cancelledAt.set("q5", 150);
    expect(batcher.queueSize).toBe(3);
    await advanceTo(140);
    expect(flow.outcome("q7")).toBe("timeout(10)");
    expect(batcher.queueSize).toBe(2);
    await advanceTo(145);
    submit("q8", 0); // room: nothing dropped
    expect(batcher.queueSize).toBe(3);
    expect(flow.outcome("q5")).toBe("pending");

    // t=150: the default itemTimeout (150) passes for q5 (queued) and for q3 and q4, whose batch
    // is running: every item of that batch is gone, so its signal aborts with the last reason.
    await advanceTo(150);
    await runJobs();
    expect(flow.outcomesOf(["q3", "q4", "q5"])).toEqual({
      q3: "timeout(150)",
      q4: "timeout(150)",
      q5: "timeout(150)",
    });
    const batch2 = calls[1] as FlowCall;
    expect(batch2.signal.aborted).toBe(true);
    expect(batch2.signal.reason).toBeInstanceOf(ItemTimeoutError);
    // Same deadline: they time out in arrival order, so q4's is the last reason.
    expect(batch2.signal.reason).toBe(flow.outcomes.get("q4")?.error);
    expect(calls).toHaveLength(2); // the aborted batch still holds the slot
    expect(batcher.queueSize).toBe(2);

    await advanceTo(160);
    batch2.finish(); // results dropped; the slot frees: the rest, priority 2 first
    await runJobs();
    expect(flow.batches().slice(2)).toEqual([{ key: undefined, ids: ["q6", "q8"], at: 160 }]);
    calls[2]?.finish();
    await runJobs();
    expect(flow.outcomesOf(["x1", "x2", "q3", "q4", "q6", "q8"])).toEqual({
      x1: "ok",
      x2: "ok",
      q3: "timeout(150)",
      q4: "timeout(150)",
      q6: "ok",
      q8: "ok",
    });
    expect(flow.violations).toEqual([]);
    await batcher.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("setOptions() during a graceful stop", () => {
  it("relaxing the rate limit, maxBatchSize and concurrency mid-drain speeds the drain up", async () => {
    const flow = flowBatcher(
      {
        batchKey: keyOf,
        maxBatchSize: 4,
        maxQueueTime: 1000,
        concurrency: 1,
        rateLimit: { batches: 1, interval: 1000 },
      },
      { maxBatchSize: 4, maxBatchWeight: Number.POSITIVE_INFINITY, concurrency: 3 },
    );
    const { batcher, calls, submit } = flow;
    for (const id of ["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3"]) submit(id, 1);
    await runJobs();
    expect(flow.batches()).toEqual([{ key: "a", ids: ["a1", "a2", "a3", "a4"], at: 0 }]);

    await advanceTo(10);
    const stopped = track(batcher.stop());
    await advanceTo(20);
    calls[0]?.finish();
    await runJobs();
    expect(calls).toHaveLength(1); // the rate limit holds the drain until t=1000

    await advanceTo(30);
    batcher.setOptions({ maxBatchSize: 1, concurrency: 3 });
    await runJobs();
    expect(calls).toHaveLength(1);

    await advanceTo(40);
    batcher.setOptions({ rateLimit: { batches: 2, interval: 1000 } }); // one more now
    await runJobs();
    expect(flow.batches().slice(1)).toEqual([{ key: "a", ids: ["a5"], at: 40 }]);

    await advanceTo(50);
    batcher.setOptions({ rateLimit: undefined }); // no limit: fill the 3 slots
    await runJobs();
    expect(flow.batches().slice(2)).toEqual([
      { key: "a", ids: ["a6"], at: 50 },
      { key: "b", ids: ["b1"], at: 50 },
    ]);
    expect(batcher.queueSize).toBe(2);

    await advanceTo(60);
    batcher.setOptions({ maxBatchSize: 10, maxQueueSize: 1 }); // queued items stay
    calls[1]?.finish();
    await runJobs();
    expect(flow.batches().slice(4)).toEqual([{ key: "b", ids: ["b2", "b3"], at: 60 }]);
    await expect(batcher.process({ id: "late1", w: 1 })).rejects.toBeInstanceOf(
      BatcherStoppedError,
    );
    expect(stopped.settled).toBe(false);
    for (const call of calls) call.finish();
    await runJobs();
    expect(stopped.settled).toBe(true);
    expect(stopped.error).toBeUndefined();
    expect(flow.outcomesOf(["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3"])).toEqual({
      a1: "ok",
      a2: "ok",
      a3: "ok",
      a4: "ok",
      a5: "ok",
      a6: "ok",
      b1: "ok",
      b2: "ok",
      b3: "ok",
    });
    expect(flow.violations).toEqual([]);
    expect(() => batcher.setOptions({ concurrency: 1 })).not.toThrow();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("tightening the rate limit mid-drain slows the drain down; stop still resolves", async () => {
    const flow = flowBatcher(
      {
        maxBatchSize: 1,
        maxQueueTime: 1000,
        concurrency: Number.POSITIVE_INFINITY,
        rateLimit: { batches: 10, interval: 100 },
      },
      {
        maxBatchSize: 1,
        maxBatchWeight: Number.POSITIVE_INFINITY,
        concurrency: Number.POSITIVE_INFINITY,
      },
    );
    const { batcher, calls, submit } = flow;
    batcher.setOptions({ concurrency: 1 });
    for (const id of ["a1", "a2", "a3", "a4"]) submit(id, 1);
    await runJobs();
    expect(calls).toHaveLength(1);
    const stopped = track(batcher.stop());
    batcher.setOptions({ rateLimit: { batches: 1, interval: 100 }, concurrency: 10 });
    const sample = () => {
      for (const call of calls) call.finish();
    };
    await advanceTo(400, sample);
    await runJobs();
    expect(flow.batches().map((b) => b.at)).toEqual([0, 100, 200, 300]);
    expect(stopped.settled).toBe(true);
    expect(flow.violations).toEqual([]);
  });
});
