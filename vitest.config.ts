import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Exact matches: a bare "async-batcher" key would also rewrite "async-batcher/worker".
    alias: [
      {
        find: /^async-batcher$/,
        replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)),
      },
      {
        find: /^async-batcher\/worker$/,
        replacement: fileURLToPath(new URL("./src/worker/index.ts", import.meta.url)),
      },
      {
        find: /^async-batcher\/onnx$/,
        replacement: fileURLToPath(new URL("./src/integrations/onnx/index.ts", import.meta.url)),
      },
      {
        find: /^async-batcher\/otel$/,
        replacement: fileURLToPath(new URL("./src/otel/index.ts", import.meta.url)),
      },
      {
        find: /^async-batcher\/pg$/,
        replacement: fileURLToPath(new URL("./src/integrations/pg/index.ts", import.meta.url)),
      },
      {
        find: /^async-batcher\/mysql$/,
        replacement: fileURLToPath(new URL("./src/integrations/mysql/index.ts", import.meta.url)),
      },
    ],
  },
  test: {
    include: ["test/unit/**/*.test.ts"],
    typecheck: {
      enabled: true,
      include: ["test/types/**/*.test-d.ts"],
      tsconfig: "./tsconfig.json",
    },
    // Every promise in every test must settle: a hung caller fails the test instead of passing.
    testTimeout: 10_000,
  },
});
