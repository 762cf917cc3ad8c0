/**
 * Writes the serving example's model (an MLP with seeded weights, see
 * examples/model-serving/model.ts) to .cache/models/, unless it is there already, and prints its
 * path. Tests, the server and the benchmark generate it on demand too.
 *
 * Usage: npm run model:generate [-- --small] [-- --force]
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  ensureModel,
  MODELS_DIR,
  modelFileName,
  SERVING_MLP,
  SMALL_MLP,
} from "../examples/model-serving/model.js";

const args = process.argv.slice(2);
const spec = args.includes("--small") ? SMALL_MLP : SERVING_MLP;
if (args.includes("--force")) rmSync(join(MODELS_DIR, modelFileName(spec)), { force: true });
const started = performance.now();
const path = ensureModel(spec);
console.log(`${path} (${(performance.now() - started).toFixed(0)} ms)`);
