import { defineConfig } from "vitest/config";
import unit from "./vitest.config.js";

// The integration tests: real servers on loopback (the model-serving example in a child
// process), slower than the unit tests, run by `npm run test:integration`. Same aliases as the
// unit tests.
export default defineConfig({
  resolve: unit.resolve,
  test: {
    include: ["test/integration/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
