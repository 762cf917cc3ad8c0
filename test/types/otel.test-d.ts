/**
 * Type tests of `async-batcher/otel`: `instrument()` takes any batcher, whatever its item and
 * result types, and the OpenTelemetry API's providers and attributes; it refuses what is not a
 * batcher.
 */
import type { Attributes, MeterProvider, TracerProvider } from "@opentelemetry/api";
import { MeterProvider as SdkMeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { AsyncBatcher, type BatchContext, type BatchResult, createBatcher } from "async-batcher";
import { type InstrumentableBatcher, type InstrumentOptions, instrument } from "async-batcher/otel";
import { createWorkerBatcher } from "async-batcher/worker";
import { describe, expectTypeOf, it } from "vitest";

class Embedder extends AsyncBatcher<string, Float32Array> {
  override processBatch(batch: string[], _context: BatchContext): BatchResult<Float32Array> {
    return batch.map(() => new Float32Array(2));
  }
}

describe("instrument()", () => {
  it("returns the function that undoes it", () => {
    expectTypeOf(instrument).parameter(0).toEqualTypeOf<InstrumentableBatcher>();
    expectTypeOf(instrument).parameter(1).toEqualTypeOf<InstrumentOptions | undefined>();
    expectTypeOf(instrument).returns.toEqualTypeOf<() => void>();
  });

  it("takes any AsyncBatcher<T, R>", () => {
    expectTypeOf<AsyncBatcher<number, string>>().toExtend<InstrumentableBatcher>();
    expectTypeOf<AsyncBatcher<unknown, unknown>>().toExtend<InstrumentableBatcher>();
    expectTypeOf<AsyncBatcher<{ id: number }, never>>().toExtend<InstrumentableBatcher>();
    const doubler = createBatcher((batch: number[]) => batch.map((x) => x * 2));
    expectTypeOf(instrument(doubler)).toEqualTypeOf<() => void>();
    const byKey = createBatcher(async (ids: readonly string[]) => new Map(ids.map((i) => [i, 1])), {
      keyOf: (id) => id,
    });
    instrument(byKey, { spans: false });
    instrument(new Embedder());
    instrument(createWorkerBatcher<(batch: number[]) => number[]>(new URL("file:///w.js")));
  });

  it("takes the API's providers, an SDK's, and attributes", () => {
    expectTypeOf<{ meterProvider: MeterProvider }>().toExtend<InstrumentOptions>();
    expectTypeOf<{ tracerProvider: TracerProvider }>().toExtend<InstrumentOptions>();
    expectTypeOf<{ attributes: Attributes; spans: false }>().toExtend<InstrumentOptions>();
    const batcher = createBatcher((batch: number[]) => batch);
    instrument(batcher, {
      meterProvider: new SdkMeterProvider(),
      tracerProvider: new BasicTracerProvider(),
      attributes: { "service.part": "search", shard: 3, hot: true, tags: ["a", "b"] },
    });
  });

  it("refuses what is not a batcher, and bad options", () => {
    // @ts-expect-error no events, no stats
    instrument({ name: "fake" });
    // @ts-expect-error a batch function is not a batcher
    instrument((batch: number[]) => batch);
    const batcher = createBatcher((batch: number[]) => batch);
    // @ts-expect-error spans is a boolean
    instrument(batcher, { spans: 1 });
    // @ts-expect-error attribute values are primitives or arrays of them
    instrument(batcher, { attributes: { nested: { a: 1 } } });
    // @ts-expect-error unknown option
    instrument(batcher, { meter: new SdkMeterProvider() });
  });
});
