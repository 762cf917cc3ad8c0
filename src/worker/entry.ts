/**
 * The script piscina runs in every worker thread (built to `dist/worker/entry.js` and `.cjs`).
 * For each batch it imports the user's module (once per thread and export), calls the exported
 * function, and answers with a `WorkerReply`. It never throws: an error of the user's module
 * (at import or in the call) is serialized into the reply, so that on the main thread a rejected
 * task can only mean that the thread died or the task was aborted.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { move, transferableSymbol, valueSymbol } from "piscina";
import {
  isTransferResults,
  kTransfer,
  transferListOf,
  type WorkerReply,
  type WorkerTask,
} from "./protocol.js";
import { isError, type SerializedError, serializeError, serializeThrown } from "./serialize.js";
import type { WorkerBatchInfo } from "./types.js";

type WorkerFunction = (batch: unknown[], info: WorkerBatchInfo) => unknown;

/** Keyed by module URL and export name; holds the promise so concurrent first calls share it. */
const functions = new Map<string, Promise<WorkerFunction>>();

function pick(namespace: Record<string, unknown>, exportName: string): unknown {
  const value = namespace[exportName];
  if (typeof value === "function") return value;
  // A CommonJS module seen through import(): `module.exports` is the namespace's `default`, so
  // `exports.default = fn` (compiled TypeScript) and `exports.name = fn` sit one level down.
  const commonjs = namespace.default;
  if (typeof commonjs === "object" && commonjs !== null) {
    const inner = (commonjs as Record<string, unknown>)[exportName];
    if (typeof inner === "function") return inner;
  }
  return value;
}

/**
 * Loads the user's module. A TypeScript file goes through `require` when a CommonJS hook for
 * its extension is registered (tsx registers one in every thread it runs in), because on Node.js
 * 20 the ESM loader hooks of tsx do not reach worker threads: `import()` of a `.ts` file fails
 * there while `require()` works. Everything else, and TypeScript under Node's own type stripping,
 * goes through `import()`.
 */
async function importModule(module: string): Promise<Record<string, unknown>> {
  const extension = /\.[cm]?ts$/.exec(module)?.[0];
  if (extension !== undefined) {
    const require = createRequire(module);
    if (require.extensions[extension] !== undefined) {
      return require(fileURLToPath(module)) as Record<string, unknown>;
    }
  }
  return (await import(module)) as Record<string, unknown>;
}

async function load(module: string, exportName: string): Promise<WorkerFunction> {
  const namespace = await importModule(module);
  const fn = pick(namespace, exportName);
  if (typeof fn !== "function") {
    const exported = Object.keys(namespace).join(", ") || "nothing";
    throw new TypeError(
      `${module} has no function export named ${JSON.stringify(exportName)} (it exports ${exported})`,
    );
  }
  return fn as WorkerFunction;
}

function workerFunction(module: string, exportName: string): Promise<WorkerFunction> {
  const key = `${exportName}\0${module}`;
  let fn = functions.get(key);
  if (fn === undefined) {
    fn = load(module, exportName);
    // A failed import is retried by the next batch (the file may be fixed or appear meanwhile).
    fn.catch(() => functions.delete(key));
    functions.set(key, fn);
  }
  return fn;
}

/** Runs one batch; piscina posts the returned value (or what `move()` wraps) back. */
export default async function runBatch(task: WorkerTask<unknown>): Promise<unknown> {
  let output: unknown;
  try {
    const fn = await workerFunction(task.module, task.exportName);
    output = await fn(task.batch, { batchId: task.batchId, key: task.key });
  } catch (thrown) {
    const reply: WorkerReply = { ok: false, error: serializeThrown(thrown) };
    return reply;
  }
  let transferList: unknown[] | undefined;
  if (isTransferResults(output)) {
    transferList = transferListOf(output[kTransfer].transferList);
    output = output[kTransfer].results;
  }
  let errors: [number, SerializedError][] | undefined;
  if (Array.isArray(output)) {
    let results: unknown[] = output;
    for (let i = 0; i < results.length; i++) {
      const value: unknown = results[i];
      if (!isError(value)) continue;
      if (errors === undefined) {
        errors = [];
        results = results.slice(); // the function's own array is left alone
      }
      errors.push([i, serializeError(value)]);
      results[i] = undefined;
    }
    output = results;
  }
  const reply: WorkerReply =
    errors === undefined ? { ok: true, results: output } : { ok: true, results: output, errors };
  if (transferList === undefined || transferList.length === 0) return reply;
  // piscina's documented way to post a value with a transfer list: an object implementing its
  // Transferable interface, passed through move().
  return move({ [transferableSymbol]: transferList, [valueSymbol]: reply } as never);
}
