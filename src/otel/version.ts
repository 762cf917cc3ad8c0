/**
 * The instrumentation scope of every meter and tracer `instrument()` asks for. The version is
 * written here rather than read from package.json, which the build would otherwise inline whole;
 * test/unit/otel.test.ts fails when the two disagree.
 */
export const SCOPE_NAME = "async-batcher";
export const SCOPE_VERSION = "0.1.0";
