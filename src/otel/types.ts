import type { Attributes, MeterProvider, TracerProvider } from "@opentelemetry/api";
import type { BatchScope, batchScope, captureContext } from "../batcher.js";
import type { BatcherEventName, BatcherEvents, BatcherStats } from "../events.js";

/**
 * What `instrument()` needs of a batcher: its name, its events, its stats and the tracing hooks. Every `AsyncBatcher<T, R>` fits, whatever `T` and `R` (none of these members mention them).
 */
export interface InstrumentableBatcher {
  readonly name: string;
  on<K extends BatcherEventName>(event: K, listener: (event: BatcherEvents[K]) => void): () => void;
  stats(): BatcherStats;
  [captureContext](capture: (() => unknown) | undefined): void;
  [batchScope](scope: BatchScope | undefined): void;
}

/** Options of `instrument()`. */
export interface InstrumentOptions {
  /**
   * Where the metrics go.
   * @default metrics.getMeterProvider(), the global one of `@opentelemetry/api`
   */
  meterProvider?: MeterProvider;
  /**
   * Where the spans go (with `spans`).
   * @default trace.getTracerProvider(), the global one of `@opentelemetry/api`
   */
  tracerProvider?: TracerProvider;
  /**
   * One span per batch, linked to the span that was active in each caller's `process()` call.
   * It makes every `process()` call capture the active context, which costs a little per item:
   * turn it off when only the metrics are wanted.
   * @default true
   */
  spans?: boolean;
  /**
   * Added to every metric point and span, for instance to tell apart two batchers of the same
   * name. The attributes this module sets itself (`batcher.name`, `batcher.reason`, ...) win over
   * these.
   * @default {}
   */
  attributes?: Attributes;
}
