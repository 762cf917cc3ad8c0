import { type Attributes, metrics, trace } from "@opentelemetry/api";
import { captureContext } from "../batcher.js";
import { describe } from "../options.js";
import { recordMetrics } from "./metrics.js";
import { traceBatches } from "./spans.js";
import type { InstrumentableBatcher, InstrumentOptions } from "./types.js";
import { SCOPE_NAME, SCOPE_VERSION } from "./version.js";

function isObject(value: unknown): value is Record<string | symbol, unknown> {
  return typeof value === "object" && value !== null;
}

/** Has a method called `name`: providers are duck-typed, as every SDK's are its own classes. */
function hasMethod(value: unknown, name: string | symbol): boolean {
  return isObject(value) && typeof value[name] === "function";
}

function checkOptions(options: InstrumentOptions | undefined): void {
  if (options === undefined) return;
  if (!isObject(options)) {
    throw new TypeError(`instrument options must be an object, got ${describe(options)}`);
  }
  const { meterProvider, tracerProvider, spans, attributes } = options;
  if (meterProvider !== undefined && !hasMethod(meterProvider, "getMeter")) {
    throw new TypeError(
      `meterProvider must be a MeterProvider (with getMeter()), got ${describe(meterProvider)}`,
    );
  }
  if (tracerProvider !== undefined && !hasMethod(tracerProvider, "getTracer")) {
    throw new TypeError(
      `tracerProvider must be a TracerProvider (with getTracer()), got ${describe(tracerProvider)}`,
    );
  }
  if (spans !== undefined && typeof spans !== "boolean") {
    throw new TypeError(`spans must be a boolean, got ${describe(spans)}`);
  }
  if (attributes !== undefined && !isObject(attributes)) {
    throw new TypeError(`attributes must be an object, got ${describe(attributes)}`);
  }
}

/**
 * Reports a batcher to OpenTelemetry: metrics (counters and gauges read from `stats()` at each
 * collection, histograms of batch size, queue wait and batch duration) and, with `spans`, one
 * span per batch linked to the span of each of its callers. Every point and span carries
 * `batcher.name`.
 *
 * Returns the function that undoes it all (idempotent): listeners, observable callbacks and the
 * context capture go, and spans still open end.
 *
 * One batcher may be instrumented more than once (say, towards two providers): each
 * instrumentation records on its own, so two of them on one provider count every batch twice.
 * Batchers sharing a provider are told apart by `batcher.name` (or `attributes`): give them
 * distinct names. Tracing installs the batcher's context capture (`captureContext`); a capture
 * installed by anything else is replaced, and removed when the last tracing instrumentation of
 * the batcher goes.
 *
 * @example
 * ```ts
 * import { instrument } from "async-batcher/otel";
 * const uninstrument = instrument(batcher, { attributes: { "service.part": "search" } });
 * // ...
 * uninstrument();
 * ```
 */
export function instrument(
  batcher: InstrumentableBatcher,
  options?: InstrumentOptions,
): () => void {
  if (!hasMethod(batcher, "on") || !hasMethod(batcher, "stats")) {
    throw new TypeError(`batcher must be an AsyncBatcher, got ${describe(batcher)}`);
  }
  checkOptions(options);
  const spans = options?.spans ?? true;
  if (spans && !hasMethod(batcher, captureContext)) {
    throw new TypeError("batcher must have the [captureContext] method of AsyncBatcher for spans");
  }
  // Ours last: a user attribute cannot rename the batcher or blur a reason.
  const base: Attributes = { ...options?.attributes, "batcher.name": batcher.name };
  // Both asked for before anything is installed, so that a provider that throws leaves nothing.
  const meter = (options?.meterProvider ?? metrics.getMeterProvider()).getMeter(
    SCOPE_NAME,
    SCOPE_VERSION,
  );
  const tracer = spans
    ? (options?.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE_NAME, SCOPE_VERSION)
    : undefined;
  const undo = [recordMetrics(batcher, meter, base)];
  if (tracer !== undefined) {
    try {
      undo.push(traceBatches(batcher, tracer, base));
    } catch (error) {
      undo[0]?.();
      throw error;
    }
  }
  let installed = true;
  return () => {
    if (!installed) return;
    installed = false;
    for (const stop of undo) stop();
  };
}
