import {
  type Attributes,
  type BatchObservableCallback,
  type Meter,
  type Observable,
  ValueType,
} from "@opentelemetry/api";
import type { BatchEndEvent, BatchStartEvent } from "../events.js";
import { AttributeCache } from "./attributes.js";
import type { InstrumentableBatcher } from "./types.js";

/** Powers of two: a batch holds 1 item at least, and rarely more than a few thousand. */
const SIZE_BUCKETS = Array.from({ length: 13 }, (_, i) => 2 ** i); // 1 ... 4096

/** Seconds, from half a millisecond (an in-memory batch) to 10 s (a slow remote call). */
const SECONDS_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Records a batcher's metrics on `meter`: counters and gauges read from `stats()` when the SDK
 * collects, histograms recorded from the `batchStart` and `batchEnd` events. Returns the
 * function that stops it (idempotent).
 */
export function recordMetrics(
  batcher: InstrumentableBatcher,
  meter: Meter,
  base: Attributes,
): () => void {
  const byReason = new AttributeCache(base, "batcher.reason");
  const byOutcome = new AttributeCache(base, "batcher.outcome");
  const attributes = byReason.base;

  const items = { unit: "{item}", valueType: ValueType.INT };
  const batches = { unit: "{batch}", valueType: ValueType.INT };
  const submitted = meter.createObservableCounter("batcher.items.submitted", {
    ...items,
    description: "Items submitted with process(), including those refused at once.",
  });
  const resolved = meter.createObservableCounter("batcher.items.resolved", {
    ...items,
    description: "Callers resolved with their result.",
  });
  const rejected = meter.createObservableCounter("batcher.items.rejected", {
    ...items,
    description: "Callers rejected, by reason (batcher.reason).",
  });
  const started = meter.createObservableCounter("batcher.batches", {
    ...batches,
    description: "Batches started, by reason (batcher.reason); retries and split halves count.",
  });
  const retries = meter.createObservableCounter("batcher.retries", {
    ...items,
    description: "Items scheduled for another try.",
  });
  const splits = meter.createObservableCounter("batcher.splits", {
    ...batches,
    description: "Failed batches split in two (splitOnError).",
  });
  const queued = meter.createObservableGauge("batcher.items.queued", {
    ...items,
    description: "Items queued, not yet in a batch.",
  });
  const waiting = meter.createObservableGauge("batcher.items.waiting", {
    ...items,
    description: "Callers waiting for room in a full queue (onQueueFull: wait).",
  });
  const inFlight = meter.createObservableGauge("batcher.items.in_flight", {
    ...items,
    description: "Items in batches not yet settled, including those waiting for a retry.",
  });
  const running = meter.createObservableGauge("batcher.batches.running", {
    ...batches,
    description: "Batches whose batch function is running.",
  });
  const observables: Observable[] = [
    submitted,
    resolved,
    rejected,
    started,
    retries,
    splits,
    queued,
    waiting,
    inFlight,
    running,
  ];

  // One snapshot per collection, so that the points of one collection agree with each other.
  const observe: BatchObservableCallback = (result) => {
    const stats = batcher.stats();
    result.observe(submitted, stats.submitted, attributes);
    result.observe(resolved, stats.resolved, attributes);
    // By the reasons the batcher counts, whatever they are: `total` is their sum, which the
    // backend adds up itself.
    for (const [reason, count] of Object.entries(stats.rejected)) {
      if (reason !== "total") result.observe(rejected, count, byReason.with(reason));
    }
    for (const [reason, count] of Object.entries(stats.batches)) {
      if (reason !== "total") result.observe(started, count, byReason.with(reason));
    }
    result.observe(retries, stats.retries, attributes);
    result.observe(splits, stats.splits, attributes);
    result.observe(queued, stats.queued, attributes);
    result.observe(waiting, stats.waiting, attributes);
    result.observe(inFlight, stats.inFlight, attributes);
    result.observe(running, stats.runningBatches, attributes);
  };

  const size = meter.createHistogram("batcher.batch.size", {
    ...items,
    description: "Items handed to each batch function, by reason (batcher.reason).",
    advice: { explicitBucketBoundaries: SIZE_BUCKETS },
  });
  const wait = meter.createHistogram("batcher.queue.wait", {
    unit: "s",
    description: "How long each batch's oldest item waited in the queue (first tries only).",
    advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
  });
  const duration = meter.createHistogram("batcher.batch.duration", {
    unit: "s",
    description:
      "From the call of each batch function to the settling of its callers, by outcome (batcher.outcome).",
    advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
  });
  const ok = byOutcome.with("ok");
  const error = byOutcome.with("error");

  const onStart = (event: BatchStartEvent): void => {
    size.record(event.size, byReason.with(event.reason));
    // A retry or a split half did not wait in the queue (its queueWait is 0): counting it would
    // drag the distribution down. stats().queueWait skips them too.
    if (event.parentId === undefined) wait.record(event.queueWait / 1000, attributes);
  };
  const onEnd = (event: BatchEndEvent): void => {
    duration.record(event.duration / 1000, event.failed ? error : ok);
  };

  meter.addBatchObservableCallback(observe, observables);
  const offStart = batcher.on("batchStart", onStart);
  const offEnd = batcher.on("batchEnd", onEnd);
  let installed = true;
  return () => {
    if (!installed) return;
    installed = false;
    meter.removeBatchObservableCallback(observe, observables);
    offStart();
    offEnd();
  };
}
