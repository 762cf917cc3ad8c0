/**
 * `async-batcher/otel`: the metrics and spans `instrument()` reports, checked through the real
 * OpenTelemetry SDK (a metric reader collected on demand, spans in memory) and an
 * AsyncLocalStorage context manager for the callers' spans. Batches are driven by fake timers, so
 * every duration, wait and count is exact.
 */
import { readFileSync } from "node:fs";
import {
  type Attributes,
  context,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  DataPointType,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  type BatchStartEvent,
  captureContext,
  createBatcher,
  MissingResultError,
  type ProcessOptions,
} from "async-batcher";
import { instrument } from "async-batcher/otel";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SCOPE_NAME, SCOPE_VERSION } from "../../src/otel/version.js";
import { double, manualBatcher, runJobs } from "../helpers/manual.js";

/** A reader the test collects from when it wants, with no timer of its own. */
class TestReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

let reader: TestReader;
let meterProvider: MeterProvider;
let exporter: InMemorySpanExporter;
let tracerProvider: BasicTracerProvider;
let tracer: Tracer;

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  reader = new TestReader();
  meterProvider = new MeterProvider({ readers: [reader] });
  exporter = new InMemorySpanExporter();
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  tracer = tracerProvider.getTracer("test");
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});

afterEach(async () => {
  await exported();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
  context.disable();
  vi.useRealTimers();
});

/**
 * Lets the SDK's exports finish: InMemorySpanExporter reports each export done on a 0 ms timer,
 * which the fake clock runs, as Node.js does, 1 ms later, and only when asked.
 */
const exported = () => vi.advanceTimersByTimeAsync(1);

const providers = () => ({ meterProvider, tracerProvider });

/** The metrics of the `async-batcher` scope, by name. */
async function collect(): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const scopes = resourceMetrics.scopeMetrics.filter((s) => s.scope.name === SCOPE_NAME);
  return new Map(scopes.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
}

function metric(metrics: Map<string, MetricData>, name: string): MetricData {
  const found = metrics.get(name);
  if (found === undefined) throw new Error(`no metric ${name}`);
  return found;
}

/** The value of the point with exactly these attributes. */
function value(metrics: Map<string, MetricData>, name: string, attributes: Attributes): unknown {
  const points = metric(metrics, name).dataPoints as { attributes: Attributes; value: unknown }[];
  const found = points.find(
    (p) => JSON.stringify(sorted(p.attributes)) === JSON.stringify(sorted(attributes)),
  );
  if (found === undefined) {
    throw new Error(`no point of ${name} with ${JSON.stringify(attributes)}`);
  }
  return found.value;
}

function sorted(attributes: Attributes): [string, unknown][] {
  return Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b));
}

/** Count and sum of a histogram point, with its bucket boundaries. */
function histogram(metrics: Map<string, MetricData>, name: string, attributes: Attributes) {
  const point = value(metrics, name, attributes) as Histogram;
  return { count: point.count, sum: point.sum, boundaries: point.buckets.boundaries };
}

/** Every point of a metric as `attributes → value`, the attributes sorted into a string. */
function allPoints(metrics: Map<string, MetricData>, name: string): Record<string, unknown> {
  const points = metric(metrics, name).dataPoints as { attributes: Attributes; value: unknown }[];
  return Object.fromEntries(
    points.map((p) => [
      sorted(p.attributes)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(","),
      typeof p.value === "number" ? p.value : (p.value as Histogram).count,
    ]),
  );
}

/** The batch spans exported so far. */
async function batchSpans(): Promise<ReadableSpan[]> {
  await exported();
  await tracerProvider.forceFlush();
  return exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === SCOPE_NAME);
}

const REJECT_REASONS = [
  "error",
  "missing",
  "abort",
  "timeout",
  "queueFull",
  "stopped",
  "tooLarge",
  "invalid",
];
const BATCH_REASONS = ["size", "time", "flush", "weight", "stop", "retry", "split"];
const GAUGES = [
  "batcher.items.queued",
  "batcher.items.waiting",
  "batcher.items.in_flight",
  "batcher.batches.running",
];

describe("metrics", () => {
  it("reports every metric, with its kind, unit and attributes, after a known workload", async () => {
    const { batcher, calls } = manualBatcher({
      name: "search",
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
    });
    instrument(batcher, providers());
    const results = [1, 2, 3].map((i) => batcher.process(i));
    results[2]?.catch(() => {}); // rejects below, checked at the end
    await runJobs();
    // [1, 2] is full and runs at once; 3 waits for the slot.
    expect(calls).toHaveLength(1);
    let metrics = await collect();
    const name = { "batcher.name": "search" };
    expect(value(metrics, "batcher.items.queued", name)).toBe(1);
    expect(value(metrics, "batcher.items.in_flight", name)).toBe(2);
    expect(value(metrics, "batcher.batches.running", name)).toBe(1);
    expect(value(metrics, "batcher.items.waiting", name)).toBe(0);

    await vi.advanceTimersByTimeAsync(100);
    double(calls[0]); // 100 ms
    // 3 has waited 100 ms of its 1000: it goes at 1000 ms, by time.
    await vi.advanceTimersByTimeAsync(900);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(50);
    calls[1]?.reject(new Error("boom")); // 50 ms
    const last = batcher.process(4);
    const flushed = batcher.flush();
    await runJobs();
    double(calls[2]); // 0 ms
    await flushed;
    const settled = await Promise.allSettled([...results, last]);
    expect(settled.map((s) => s.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);

    metrics = await collect();
    expect(metrics.size).toBe(13);
    const counters = {
      "batcher.items.submitted": ["{item}", { "batcher.name=search": 4 }],
      "batcher.items.resolved": ["{item}", { "batcher.name=search": 3 }],
      "batcher.items.rejected": [
        "{item}",
        Object.fromEntries(
          REJECT_REASONS.map((r) => [
            `batcher.name=search,batcher.reason=${r}`,
            r === "error" ? 1 : 0,
          ]),
        ),
      ],
      "batcher.batches": [
        "{batch}",
        Object.fromEntries(
          BATCH_REASONS.map((r) => [
            `batcher.name=search,batcher.reason=${r}`,
            ["size", "time", "flush"].includes(r) ? 1 : 0,
          ]),
        ),
      ],
      "batcher.retries": ["{item}", { "batcher.name=search": 0 }],
      "batcher.splits": ["{batch}", { "batcher.name=search": 0 }],
    } as const;
    for (const [metricName, [unit, points]] of Object.entries(counters)) {
      const data = metric(metrics, metricName);
      expect(data.descriptor.unit, metricName).toBe(unit);
      expect(data.dataPointType, metricName).toBe(DataPointType.SUM);
      expect(data.dataPointType === DataPointType.SUM && data.isMonotonic, metricName).toBe(true);
      expect(allPoints(metrics, metricName), metricName).toEqual(points);
    }
    for (const [metricName, unit] of [
      ["batcher.items.queued", "{item}"],
      ["batcher.items.waiting", "{item}"],
      ["batcher.items.in_flight", "{item}"],
      ["batcher.batches.running", "{batch}"],
    ] as const) {
      const data = metric(metrics, metricName);
      expect(data.descriptor.unit, metricName).toBe(unit);
      expect(data.dataPointType, metricName).toBe(DataPointType.GAUGE);
      expect(allPoints(metrics, metricName), metricName).toEqual({ "batcher.name=search": 0 });
    }

    const sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
    const seconds = [
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ];
    for (const [metricName, unit] of [
      ["batcher.batch.size", "{item}"],
      ["batcher.queue.wait", "s"],
      ["batcher.batch.duration", "s"],
    ] as const) {
      const data = metric(metrics, metricName);
      expect(data.descriptor.unit, metricName).toBe(unit);
      expect(data.dataPointType, metricName).toBe(DataPointType.HISTOGRAM);
    }
    const byReason = (reason: string) => ({ ...name, "batcher.reason": reason });
    expect(histogram(metrics, "batcher.batch.size", byReason("size"))).toEqual({
      count: 1,
      sum: 2,
      boundaries: sizes,
    });
    expect(histogram(metrics, "batcher.batch.size", byReason("time"))).toMatchObject({
      count: 1,
      sum: 1,
    });
    expect(histogram(metrics, "batcher.batch.size", byReason("flush"))).toMatchObject({
      count: 1,
      sum: 1,
    });
    expect(allPoints(metrics, "batcher.batch.size")).toEqual({
      "batcher.name=search,batcher.reason=size": 1,
      "batcher.name=search,batcher.reason=time": 1,
      "batcher.name=search,batcher.reason=flush": 1,
    });
    // Waits of 0, 1000 and 0 ms.
    expect(histogram(metrics, "batcher.queue.wait", name)).toEqual({
      count: 3,
      sum: 1,
      boundaries: seconds,
    });
    expect(allPoints(metrics, "batcher.queue.wait")).toEqual({ "batcher.name=search": 3 });
    expect(
      histogram(metrics, "batcher.batch.duration", { ...name, "batcher.outcome": "ok" }),
    ).toEqual({ count: 2, sum: 0.1, boundaries: seconds });
    expect(
      histogram(metrics, "batcher.batch.duration", { ...name, "batcher.outcome": "error" }),
    ).toMatchObject({ count: 1, sum: 0.05 });
    await batcher.stop();
  });

  it("reads the gauges at each collection: queued, waiting, in flight, running", async () => {
    const { batcher, calls } = manualBatcher({
      name: "g",
      maxBatchSize: 2,
      maxQueueTime: 1000,
      concurrency: 1,
      maxQueueSize: 2,
      onQueueFull: "wait",
    });
    instrument(batcher, { meterProvider, spans: false });
    const gauges = async () => {
      const metrics = await collect();
      return GAUGES.map((n) => value(metrics, n, { "batcher.name": "g" }));
    };
    expect(await gauges()).toEqual([0, 0, 0, 0]);
    const results = [1, 2, 3, 4, 5].map((i) => batcher.process(i));
    await runJobs();
    // [1, 2] runs; 3 and 4 fill the queue; 5 waits for room.
    expect(await gauges()).toEqual([2, 1, 2, 1]);
    double(calls[0]);
    await runJobs();
    // [3, 4] runs; 5 got in.
    expect(await gauges()).toEqual([1, 0, 2, 1]);
    double(calls[1]);
    await vi.advanceTimersByTimeAsync(1000);
    double(calls[2]);
    await Promise.all(results);
    expect(await gauges()).toEqual([0, 0, 0, 0]);
    await batcher.stop();
  });

  it("counts rejections by reason", async () => {
    const batcher = createBatcher(
      (items: number[]) => {
        if (items.includes(99)) throw new Error("boom");
        // No entry for 7: its caller rejects with MissingResultError.
        return new Map(items.filter((x) => x !== 7).map((x) => [x, x * 2]));
      },
      {
        name: "r",
        maxQueueTime: 1000,
        maxQueueSize: 3,
        keyOf: (x) => {
          if (x === 13) throw new TypeError("no key for 13");
          return x;
        },
        weigh: (x) => (x === 50 ? 50 : 1),
        maxBatchWeight: 10,
      },
    );
    instrument(batcher, providers());
    // Each outcome is taken at once, so that no rejection goes unhandled meanwhile.
    const outcomes: Promise<PromiseSettledResult<number>>[] = [];
    const submit = (item: number, options?: ProcessOptions) => {
      outcomes.push(
        batcher.process(item, options).then(
          (value): PromiseSettledResult<number> => ({ status: "fulfilled", value }),
          (reason: unknown): PromiseSettledResult<number> => ({ status: "rejected", reason }),
        ),
      );
    };
    submit(7); // missing
    submit(13); // invalid
    submit(50); // tooLarge
    submit(1, { signal: AbortSignal.abort() }); // abort
    submit(2, { timeout: 10 }); // timeout
    submit(3); // resolves
    submit(4); // queueFull: 7, 2 and 3 are queued
    await vi.advanceTimersByTimeAsync(10);
    await batcher.flush();
    submit(99); // error
    await batcher.flush();
    await batcher.stop();
    submit(5); // stopped
    const settled = await Promise.all(outcomes);
    expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
    expect((settled[0] as PromiseRejectedResult).reason).toBeInstanceOf(MissingResultError);

    const metrics = await collect();
    expect(allPoints(metrics, "batcher.items.rejected")).toEqual(
      Object.fromEntries(REJECT_REASONS.map((r) => [`batcher.name=r,batcher.reason=${r}`, 1])),
    );
    expect(value(metrics, "batcher.items.submitted", { "batcher.name": "r" })).toBe(9);
    expect(value(metrics, "batcher.items.resolved", { "batcher.name": "r" })).toBe(1);
  });

  it("counts retries, splits and batches by reason (retry, split)", async () => {
    const batcher = createBatcher(
      (items: number[]) => {
        if (items.includes(3)) throw new Error(`fails with 3: ${items.join()}`);
        return items.map((x) => x * 2);
      },
      { name: "rs", maxQueueTime: 1000, retry: { attempts: 2, delay: 10 }, splitOnError: true },
    );
    instrument(batcher, providers());
    const results = Promise.allSettled([1, 2, 3, 4].map((i) => batcher.process(i)));
    const flushed = batcher.flush();
    await vi.advanceTimersByTimeAsync(10);
    await flushed;
    expect((await results).map((s) => s.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);

    // [1,2,3,4] fails, is retried whole after 10 ms, fails again with its tries spent, splits
    // into [1,2] (ok) and [3,4], which fails and splits into [3] (rejects) and [4] (ok).
    const stats = batcher.stats();
    expect(stats.retries).toBe(4);
    expect(stats.splits).toBe(2);
    const metrics = await collect();
    const rs = { "batcher.name": "rs" };
    expect(value(metrics, "batcher.retries", rs)).toBe(4);
    expect(value(metrics, "batcher.splits", rs)).toBe(2);
    expect(allPoints(metrics, "batcher.batches")).toEqual(
      Object.fromEntries(
        BATCH_REASONS.map((r) => [
          `batcher.name=rs,batcher.reason=${r}`,
          { flush: 1, retry: 1, split: 4 }[r] ?? 0,
        ]),
      ),
    );
    const byReason = (reason: string) => ({ ...rs, "batcher.reason": reason });
    expect(histogram(metrics, "batcher.batch.size", byReason("flush"))).toMatchObject({
      count: 1,
      sum: 4,
    });
    expect(histogram(metrics, "batcher.batch.size", byReason("retry"))).toMatchObject({
      count: 1,
      sum: 4,
    });
    expect(histogram(metrics, "batcher.batch.size", byReason("split"))).toMatchObject({
      count: 4,
      sum: 6,
    });
    // Only the first try waited in the queue.
    expect(histogram(metrics, "batcher.queue.wait", rs)).toMatchObject({ count: 1, sum: 0 });
    expect(
      histogram(metrics, "batcher.batch.duration", { ...rs, "batcher.outcome": "error" }),
    ).toMatchObject({ count: 4 });
    expect(
      histogram(metrics, "batcher.batch.duration", { ...rs, "batcher.outcome": "ok" }),
    ).toMatchObject({ count: 2 });
    await batcher.stop();
  });

  it("tells two batchers on one provider apart by batcher.name", async () => {
    const a = manualBatcher({ name: "a", maxQueueTime: 1000 });
    const b = manualBatcher({ name: "b", maxQueueTime: 1000 });
    instrument(a.batcher, providers());
    instrument(b.batcher, providers());
    const results = [a.batcher.process(1), b.batcher.process(1), b.batcher.process(2)];
    const flushed = Promise.all([a.batcher.flush(), b.batcher.flush()]);
    await runJobs();
    double(a.calls[0]);
    double(b.calls[0]);
    await Promise.all([...results, flushed]);
    const metrics = await collect();
    expect(allPoints(metrics, "batcher.items.submitted")).toEqual({
      "batcher.name=a": 1,
      "batcher.name=b": 2,
    });
    expect(allPoints(metrics, "batcher.batch.size")).toEqual({
      "batcher.name=a,batcher.reason=flush": 1,
      "batcher.name=b,batcher.reason=flush": 1,
    });
    expect(
      histogram(metrics, "batcher.batch.size", { "batcher.name": "b", "batcher.reason": "flush" }),
    ).toMatchObject({ sum: 2 });
    expect((await batchSpans()).map((s) => s.name).sort()).toEqual(["batch a", "batch b"]);
  });

  it("adds `attributes` to every point and span; its own attributes win", async () => {
    const { batcher, calls } = manualBatcher({ name: "x", maxQueueTime: 1000 });
    instrument(batcher, {
      ...providers(),
      attributes: { "service.part": "search", "batcher.name": "renamed" },
    });
    const result = batcher.process(1);
    const flushed = batcher.flush();
    await runJobs();
    double(calls[0]);
    await Promise.all([result, flushed]);
    const metrics = await collect();
    const base = { "batcher.name": "x", "service.part": "search" };
    for (const [metricName, data] of metrics) {
      for (const point of data.dataPoints as { attributes: Attributes }[]) {
        expect(point.attributes, metricName).toMatchObject(base);
      }
    }
    expect(value(metrics, "batcher.items.submitted", base)).toBe(1);
    expect(
      histogram(metrics, "batcher.batch.size", { ...base, "batcher.reason": "flush" }),
    ).toMatchObject({ count: 1 });
    const [span] = await batchSpans();
    expect(span?.attributes).toMatchObject(base);
  });

  it("uses the meter and tracer `async-batcher` at the package's version", async () => {
    const manifest = JSON.parse(
      readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
    ) as { name: string; version: string };
    expect(SCOPE_NAME).toBe(manifest.name);
    expect(SCOPE_VERSION).toBe(manifest.version);
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    instrument(batcher, providers());
    const result = batcher.process(1);
    const flushed = batcher.flush();
    await runJobs();
    double(calls[0]);
    await Promise.all([result, flushed]);
    const { resourceMetrics } = await reader.collect();
    const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === SCOPE_NAME)?.scope;
    expect(scope?.version).toBe(manifest.version);
    const [span] = await batchSpans();
    expect(span?.instrumentationScope).toMatchObject({
      name: manifest.name,
      version: manifest.version,
    });
  });
});

describe("spans", () => {
  it("makes one root span per batch, linked once to each distinct caller span", async () => {
    const { batcher, calls } = manualBatcher({ name: "search", maxQueueTime: 1000 });
    instrument(batcher, providers());
    const results: Promise<number>[] = [];
    const callers = [
      tracer.startActiveSpan("request a", (span) => {
        results.push(batcher.process(1), batcher.process(2)); // one link for both
        span.end();
        return span.spanContext();
      }),
      tracer.startActiveSpan("request b", (span) => {
        results.push(batcher.process(3));
        span.end();
        return span.spanContext();
      }),
    ];
    results.push(batcher.process(4)); // outside any span: no link
    // Cut inside yet another span, which must not become the batch's parent.
    const flushed = tracer.startActiveSpan("flusher", (span) => {
      const promise = batcher.flush();
      span.end();
      return promise;
    });
    await runJobs();
    await vi.advanceTimersByTimeAsync(20);
    double(calls[0]);
    expect(await Promise.all(results)).toEqual([2, 4, 6, 8]);
    await flushed;

    const spans = await batchSpans();
    expect(spans).toHaveLength(1);
    const span = spans[0] as ReadableSpan;
    expect(span.name).toBe("batch search");
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.parentSpanContext).toBeUndefined();
    expect(callers.map((c) => c.traceId)).not.toContain(span.spanContext().traceId);
    expect(span.links.map((link) => link.context)).toEqual(callers);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes).toEqual({
      "batcher.name": "search",
      "batcher.batch.id": 1,
      "batcher.batch.size": 4,
      "batcher.batch.callers": 4,
      "batcher.batch.reason": "flush",
      "batcher.batch.attempt": 1,
      "batcher.batch.resolved": 4,
      "batcher.batch.rejected": 0,
      "batcher.batch.retried": 0,
    });
    expect(span.ended).toBe(true);
  });

  it("runs the batch function inside its batch's span: spans it starts are children", async () => {
    const children: { traceId: string; parent: string | undefined }[] = [];
    const batcher = createBatcher(
      (items: number[]) =>
        tracer.startActiveSpan("query", (span) => {
          children.push({
            traceId: span.spanContext().traceId,
            parent: (span as unknown as ReadableSpan).parentSpanContext?.spanId,
          });
          span.end();
          return items.map((x) => x * 2);
        }),
      { name: "scoped", maxQueueTime: 1000 },
    );
    const uninstrument = instrument(batcher, providers());
    const done = tracer.startActiveSpan("request", (span) => {
      const result = batcher.process(1);
      span.end();
      return result;
    });
    await batcher.flush();
    expect(await done).toBe(2);
    const [batchSpan] = await batchSpans();
    expect(children).toEqual([
      { traceId: batchSpan?.spanContext().traceId, parent: batchSpan?.spanContext().spanId },
    ]);
    // Without the instrumentation the function runs in the context that cut the batch.
    uninstrument();
    children.length = 0;
    await Promise.all([batcher.process(2), batcher.flush()]);
    expect(children[0]?.parent).toBeUndefined();
  });

  it("has no link when no caller had a span", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    instrument(batcher, providers());
    const results = [batcher.process(1), batcher.process(2)];
    const flushed = batcher.flush();
    await runJobs();
    double(calls[0]);
    await Promise.all([...results, flushed]);
    const [span] = await batchSpans();
    expect(span?.links).toEqual([]);
  });

  it("marks a failed batch ERROR, recording an Error as an exception", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    instrument(batcher, providers());
    const first = batcher.process(1);
    const flushed = batcher.flush();
    await runJobs();
    calls[0]?.reject(new RangeError("boom"));
    await expect(first).rejects.toThrow(RangeError);
    await flushed;
    const second = batcher.process(2);
    const flushedAgain = batcher.flush();
    await runJobs();
    calls[1]?.reject("not an error");
    await expect(second).rejects.toBe("not an error");
    await flushedAgain;

    const [failed, failedWithString] = await batchSpans();
    expect(failed?.status).toEqual({ code: SpanStatusCode.ERROR, message: "boom" });
    expect(failed?.events.map((e) => [e.name, e.attributes?.["exception.type"]])).toEqual([
      ["exception", "RangeError"],
    ]);
    expect(failed?.attributes).toMatchObject({
      "batcher.batch.resolved": 0,
      "batcher.batch.rejected": 1,
    });
    expect(failedWithString?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: "not an error",
    });
    expect(failedWithString?.events).toEqual([]);
  });

  it("gives retries and split halves their attempt and parent", async () => {
    const batcher = createBatcher(
      (items: number[]) => {
        if (items.includes(3)) throw new Error("fails with 3");
        return items;
      },
      { maxQueueTime: 1000, retry: { attempts: 2, delay: 10 }, splitOnError: true },
    );
    instrument(batcher, providers());
    const results = Promise.allSettled([1, 2, 3].map((i) => batcher.process(i)));
    const flushed = batcher.flush();
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all([results, flushed]);
    const spans = (await batchSpans()).map((s) => ({
      id: s.attributes["batcher.batch.id"],
      parent: s.attributes["batcher.batch.parent_id"],
      reason: s.attributes["batcher.batch.reason"],
      attempt: s.attributes["batcher.batch.attempt"],
      size: s.attributes["batcher.batch.size"],
      retried: s.attributes["batcher.batch.retried"],
      error: s.status.code === SpanStatusCode.ERROR,
    }));
    // [1,2,3] fails, retries as [1,2,3], fails with its tries spent, splits into [1,2] and [3].
    expect(spans.sort((a, b) => Number(a.id) - Number(b.id))).toEqual([
      { id: 1, parent: undefined, reason: "flush", attempt: 1, size: 3, retried: 3, error: true },
      { id: 2, parent: 1, reason: "retry", attempt: 2, size: 3, retried: 3, error: true },
      { id: 3, parent: 2, reason: "split", attempt: 2, size: 2, retried: 0, error: false },
      { id: 4, parent: 2, reason: "split", attempt: 2, size: 1, retried: 0, error: true },
    ]);
    await batcher.stop();
  });

  it("spans: false installs no capture and makes no span; the metrics still flow", async () => {
    const { batcher, calls } = manualBatcher({ name: "m", maxQueueTime: 1000 });
    const starts: BatchStartEvent[] = [];
    batcher.on("batchStart", (event) => starts.push(event));
    instrument(batcher, { ...providers(), spans: false });
    const result = tracer.startActiveSpan("request", (span) => {
      const promise = batcher.process(1);
      span.end();
      return promise;
    });
    const flushed = batcher.flush();
    await runJobs();
    double(calls[0]);
    await Promise.all([result, flushed]);
    expect(starts.map((s) => s.contexts)).toEqual([undefined]);
    expect(await batchSpans()).toEqual([]);
    expect(value(await collect(), "batcher.items.resolved", { "batcher.name": "m" })).toBe(1);
  });

  it("replaces a capture installed before it; ignores what a later foreign one captures", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    batcher[captureContext](() => "theirs");
    const starts: BatchStartEvent[] = [];
    batcher.on("batchStart", (event) => starts.push(event));
    instrument(batcher, providers());
    const run = async (capture: boolean) => {
      const result = tracer.startActiveSpan("request", (span) => {
        const promise = batcher.process(1);
        span.end();
        return promise;
      });
      const flushed = batcher.flush();
      await runJobs();
      double(calls[calls.length - 1]);
      await Promise.all([result, flushed]);
      return capture;
    };
    await run(true);
    expect(starts[0]?.contexts).toEqual([expect.objectContaining({ traceId: expect.any(String) })]);
    // The last capture installed wins: values that are no span context make no link.
    batcher[captureContext](() => ({ traceId: "nope" }));
    await run(false);
    expect(starts[1]?.contexts).toEqual([{ traceId: "nope" }]);
    const spans = await batchSpans();
    expect(spans.map((s) => s.links.length)).toEqual([1, 0]);
  });

  // The core emits no batchEnd for a batch that a force stop cuts short (Engine#forceStop marks
  // running batches done without #finish), although the spec says batchEnd comes once for every
  // started batch: the span stays open until uninstrument(). Passes once the core emits it.
  it("ends the span of a batch a force stop cuts short", async () => {
    const { batcher } = manualBatcher({ maxQueueTime: 1000 });
    instrument(batcher, providers());
    const result = batcher.process(1).catch(() => {});
    void batcher.flush();
    await runJobs();
    await batcher.stop({ force: true });
    await result;
    expect(await batchSpans()).toHaveLength(1);
  });
});

describe("uninstrument", () => {
  it("stops every recording, removes the capture, ends open spans, and is idempotent", async () => {
    const { batcher, calls } = manualBatcher({ name: "u", maxQueueTime: 1000 });
    const starts: BatchStartEvent[] = [];
    batcher.on("batchStart", (event) => starts.push(event));
    const uninstrument = instrument(batcher, providers());
    const inSpan = () =>
      tracer.startActiveSpan("request", (span) => {
        const promise = batcher.process(1);
        span.end();
        return promise;
      });

    const first = inSpan();
    const flushed = batcher.flush();
    await runJobs();
    expect(starts[0]?.contexts).toHaveLength(1);
    const before = await collect();
    expect(await batchSpans()).toEqual([]);
    // Batch 1 is in flight: its span ends now, without its outcome.
    uninstrument();
    expect(await batchSpans()).toHaveLength(1);
    double(calls[0]);
    await Promise.all([first, flushed]);

    const second = inSpan();
    const flushedAgain = batcher.flush();
    await runJobs();
    expect(starts[1]?.contexts).toBeUndefined();
    double(calls[1]);
    await Promise.all([second, flushedAgain]);

    // Nothing recorded since: cumulative points unchanged, no new span, no observation.
    const after = await collect();
    expect(allPoints(after, "batcher.batch.size")).toEqual(allPoints(before, "batcher.batch.size"));
    expect(after.get("batcher.batch.duration")?.dataPoints ?? []).toEqual([]);
    // The SDK repeats the last observation (cumulative): 1, where the batcher has taken 2.
    expect(allPoints(before, "batcher.items.submitted")).toEqual({ "batcher.name=u": 1 });
    expect(allPoints(after, "batcher.items.submitted")).toEqual({ "batcher.name=u": 1 });
    const spans = await batchSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.attributes["batcher.batch.resolved"]).toBeUndefined();
    uninstrument();
    expect(batcher.stats().submitted).toBe(2);
  });

  it("leaves another instrumentation of the same batcher running, capture included", async () => {
    const { batcher, calls } = manualBatcher({ name: "twice", maxQueueTime: 1000 });
    const starts: BatchStartEvent[] = [];
    batcher.on("batchStart", (event) => starts.push(event));
    const otherReader = new TestReader();
    const otherMeters = new MeterProvider({ readers: [otherReader] });
    const otherExporter = new InMemorySpanExporter();
    const otherTracers = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(otherExporter)],
    });
    const first = instrument(batcher, providers());
    const second = instrument(batcher, {
      meterProvider: otherMeters,
      tracerProvider: otherTracers,
    });
    first();
    first(); // idempotent: the second keeps its capture
    const result = tracer.startActiveSpan("request", (span) => {
      const promise = batcher.process(1);
      span.end();
      return promise;
    });
    const flushed = batcher.flush();
    await runJobs();
    double(calls[0]);
    await Promise.all([result, flushed]);
    expect(starts[0]?.contexts).toHaveLength(1);
    expect(await batchSpans()).toEqual([]);
    await exported();
    await otherTracers.forceFlush();
    expect(otherExporter.getFinishedSpans().map((s) => s.links.length)).toEqual([1]);
    const { resourceMetrics } = await otherReader.collect();
    const names = resourceMetrics.scopeMetrics
      .filter((s) => s.scope.name === SCOPE_NAME)
      .flatMap((s) => s.metrics.map((m) => m.descriptor.name));
    expect(names).toContain("batcher.batch.duration");
    expect((await collect()).get("batcher.batch.duration")?.dataPoints ?? []).toEqual([]);
    second();
    expect(() => second()).not.toThrow();
    await exported();
    await otherMeters.shutdown();
    await otherTracers.shutdown();
  });
});

describe("instrument()", () => {
  it("refuses what is not a batcher, and bad options, with a TypeError", () => {
    const { batcher } = manualBatcher({});
    // @ts-expect-error not a batcher
    expect(() => instrument({})).toThrow(TypeError);
    // @ts-expect-error not a batcher
    expect(() => instrument(undefined)).toThrow(TypeError);
    // @ts-expect-error not an object
    expect(() => instrument(batcher, 1)).toThrow(TypeError);
    // @ts-expect-error not a boolean
    expect(() => instrument(batcher, { spans: "yes" })).toThrow(TypeError);
    // @ts-expect-error not a provider
    expect(() => instrument(batcher, { meterProvider: {} })).toThrow(TypeError);
    // @ts-expect-error not a provider
    expect(() => instrument(batcher, { tracerProvider: 1 })).toThrow(TypeError);
    // @ts-expect-error not attributes
    expect(() => instrument(batcher, { attributes: "a=b" })).toThrow(TypeError);
  });

  it("works on the global providers of @opentelemetry/api (no-ops when none is registered)", async () => {
    const { batcher, calls } = manualBatcher({ maxQueueTime: 1000 });
    const uninstrument = instrument(batcher);
    const result = batcher.process(1);
    const flushed = batcher.flush();
    await runJobs();
    double(calls[0]);
    await Promise.all([result, flushed]);
    uninstrument();
    expect(batcher.stats().resolved).toBe(1);
  });
});
