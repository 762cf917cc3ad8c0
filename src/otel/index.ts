/**
 * `async-batcher/otel`: OpenTelemetry metrics and spans for a batcher, through
 * `@opentelemetry/api` alone (an optional peer dependency): the application registers or passes
 * the SDK. Imports nothing from `node:*`, so it runs wherever the API runs.
 */
export { instrument } from "./instrument.js";
export type { InstrumentableBatcher, InstrumentOptions } from "./types.js";
