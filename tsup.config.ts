import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    // The core: no node:* import and no dependency, so it runs on any runtime.
    index: "src/index.ts",
    // `async-batcher/worker` (Node.js, piscina), and the script piscina runs in each thread.
    "worker/index": "src/worker/index.ts",
    "worker/entry": "src/worker/entry.ts",
    // `async-batcher/onnx` (Node.js, onnxruntime-node), and the worker module its threads run.
    "integrations/onnx/index": "src/integrations/onnx/index.ts",
    "integrations/onnx/worker": "src/integrations/onnx/worker.ts",
    // `async-batcher/otel` (any runtime, @opentelemetry/api).
    "otel/index": "src/otel/index.ts",
    // `async-batcher/pg` (pg) and `async-batcher/mysql` (mysql2): ready database batchers.
    "integrations/pg/index": "src/integrations/pg/index.ts",
    "integrations/mysql/index": "src/integrations/mysql/index.ts",
  },
  format: ["esm", "cjs"],
  // Types for the public entries only: the worker entry script is nobody's import.
  dts: {
    entry: {
      index: "src/index.ts",
      "worker/index": "src/worker/index.ts",
      "integrations/onnx/index": "src/integrations/onnx/index.ts",
      "integrations/pg/index": "src/integrations/pg/index.ts",
      "integrations/mysql/index": "src/integrations/mysql/index.ts",
      "otel/index": "src/otel/index.ts",
    },
  },
  tsconfig: "tsconfig.build.json",
  target: "node20",
  platform: "neutral",
  // node:* builtins are left to the runtime; piscina, onnxruntime-node and @opentelemetry/api are
  // (optional) peer dependencies. The ONNX subpath imports the worker pool as `async-batcher/worker` (the
  // package's own export, resolved by Node.js at run time), not through a shared chunk: the pool
  // finds its entry script beside its own module, which must stay dist/worker/index.*.
  external: [
    /^node:/,
    "piscina",
    "onnxruntime-node",
    "@opentelemetry/api",
    "pg",
    "mysql2",
    /^mysql2\//,
    "async-batcher/worker",
  ],
  // Shared chunks in both formats, so the core's classes exist once per format: without them the
  // CJS worker subpath would carry its own copy of AsyncBatcher and the errors, and `instanceof`
  // against the ones from `require("async-batcher")` would fail.
  splitting: true,
  // Keep `node:` in the worker subpath's imports (Deno and Bun need it). No shims: the worker
  // subpath finds its entry script through `__filename` in CJS and `import.meta.url` in ESM
  // itself (a shim would land in a shared chunk and point at the chunk's directory).
  removeNodeProtocol: false,
  shims: false,
  sourcemap: true,
  clean: true,
  treeshake: true,
});
