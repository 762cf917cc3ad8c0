import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ResourceLimits } from "node:worker_threads";
import { WorkerPoolExecutor } from "async-batcher/worker";
import type { InferenceSession } from "onnxruntime-node";
import { AsyncBatcher } from "../../batcher.js";
import { InvalidInputError } from "../../errors.js";
import { type BatcherOptions, describe, resolveOptions } from "../../options.js";
import type { BatchResult } from "../../types.js";
import { exampleSize, type OnnxRunConfig, type RunnableSession, runStacked } from "./run.js";
import {
  type OnnxSignature,
  type OnnxValueInfo,
  signatureOfBytes,
  signatureOfSession,
} from "./signature.js";
import type { OnnxWorkerData } from "./worker.js";

// Defined in CommonJS only (the CJS build, tsx in CJS mode); `typeof` reads it safely in ESM.
declare const __filename: string | undefined;

/** One example: a `Float32Array`, or an array of numbers, of the model's input size. */
export type OnnxInput = Float32Array | readonly number[];

/** The model: a path or `file:` URL of an `.onnx` file, its bytes, or a loaded session. */
export type OnnxModel = string | URL | Uint8Array | InferenceSession;

/** Options of `OnnxBatcher`: the model's, the threads', and every batcher option. */
export interface OnnxBatcherOptions
  extends Omit<BatcherOptions<Float32Array, Float32Array>, "executor" | "closeExecutor"> {
  /**
   * A path (resolved against `process.cwd()`) or `file:` URL of an `.onnx` file, or its bytes:
   * each worker thread creates its own session from it. Or an `InferenceSession` you loaded: it
   * cannot move to another thread, so its batches run on the main thread (see the guide).
   */
  model: OnnxModel;
  /**
   * The input fed with the stacked batch. Its first dimension is the batch's (free, such as `N`);
   * the others must be fixed: an example has their product of values.
   * @default the model's only input
   */
  input?: string;
  /**
   * The output split back into one row per example: a float32 tensor whose first dimension is
   * the batch's.
   * @default the model's first output
   */
  output?: string;
  /**
   * Worker threads, each with its own session: so most batches running at once. Ignored (no
   * thread) when `model` is a session.
   * @default 1
   */
  threads?: number;
  /**
   * onnxruntime's threads inside one inference (`SessionOptions.intraOpNumThreads`), per worker
   * thread. `threads × intraOpNumThreads` should not exceed the cores left by the main thread.
   * Ignored when `model` is a session (it has its options already).
   * @default 1
   */
  intraOpNumThreads?: number;
  /**
   * Accept `NaN` and infinities in examples. By default an example holding one rejects its
   * caller with `InvalidInputError` (`reason: "value"`).
   * @default false
   */
  allowNonFinite?: boolean;
  /**
   * Node.js options of the worker threads. Under Vitest (which does not reach the threads) pass
   * `[...process.execArgv, "--import", "tsx"]`, as for any worker pool running `.ts` sources.
   * @default inherited
   */
  execArgv?: string[];
  /** Memory limits of each worker thread (see `WorkerPoolOptions.resourceLimits`). */
  resourceLimits?: ResourceLimits;
  /**
   * Most batches processed at once.
   * @default threads (1 for a session)
   */
  concurrency?: number;
  /**
   * Most examples in one batch: a positive integer or `Infinity`.
   * @default 64
   */
  maxBatchSize?: number;
}

/** The examples of one batch, as the batcher holds them: each copied into its own buffer. */
type Example = Float32Array;

const OWN_KEYS = [
  "model",
  "input",
  "output",
  "threads",
  "intraOpNumThreads",
  "allowNonFinite",
  "execArgv",
  "resourceLimits",
] as const satisfies readonly (keyof OnnxBatcherOptions)[];

const DEFAULT_MAX_BATCH_SIZE = 64;

/** The worker module beside this file, with this file's extension (`.js`, `.cjs`, `.ts`). */
function workerModule(): string {
  // In the CJS build, import.meta is an empty object: __filename must be read first.
  const here =
    typeof __filename === "string" ? pathToFileURL(__filename) : new URL(import.meta.url);
  const extension = /\.[cm]?[jt]s$/.exec(here.pathname)?.[0] ?? ".js";
  return fileURLToPath(new URL(`./worker${extension}`, here));
}

function isSession(model: unknown): model is InferenceSession {
  return (
    typeof model === "object" &&
    model !== null &&
    typeof (model as { run?: unknown }).run === "function" &&
    Array.isArray((model as { inputNames?: unknown }).inputNames)
  );
}

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a positive integer, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/** The model as a session, or as what a worker thread loads (an absolute path, or bytes). */
function modelOption(
  value: unknown,
): { session: InferenceSession } | { source: string | Uint8Array; bytes: Uint8Array } {
  const expected =
    "model must be a path or file: URL of an .onnx file, its bytes, or an InferenceSession";
  if (isSession(value)) return { session: value };
  if (value instanceof Uint8Array) return { source: value, bytes: value };
  let path: string;
  if (value instanceof URL) {
    if (value.protocol !== "file:") throw new TypeError(`${expected}, got a ${value.protocol} URL`);
    path = fileURLToPath(value);
  } else if (typeof value === "string" && value !== "") {
    path = value.startsWith("file:") ? fileURLToPath(value) : value;
  } else {
    throw new TypeError(`${expected}, got ${describe(value)}`);
  }
  path = isAbsolute(path) ? path : resolve(path);
  // Read once on the main thread for the signature; each worker thread reads the file itself.
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new TypeError(`model: cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { source: path, bytes };
}

function pick(
  kind: "input" | "output",
  values: readonly OnnxValueInfo[],
  name: unknown,
): OnnxValueInfo {
  const names = values.map((v) => JSON.stringify(v.name)).join(", ") || "none";
  if (name === undefined) {
    const only = kind === "input" ? (values.length === 1 ? values[0] : undefined) : values[0];
    if (only === undefined) {
      throw new TypeError(`${kind} must name one of the model's ${kind}s (${names})`);
    }
    return only;
  }
  if (typeof name !== "string") {
    throw new TypeError(`${kind} must be the name of a model ${kind}, got ${describe(name)}`);
  }
  const found = values.find((v) => v.name === name);
  if (found === undefined) {
    throw new TypeError(`${kind} ${JSON.stringify(name)} is not a model ${kind}: it has ${names}`);
  }
  return found;
}

/** The run configuration: the input must be `[batch, ...fixed]` float32, the output float32. */
function runConfig(signature: OnnxSignature, input: unknown, output: unknown): OnnxRunConfig {
  const x = pick("input", signature.inputs, input);
  const y = pick("output", signature.outputs, output);
  const shape = `[${x.shape.map((d) => (d === null ? "?" : String(d))).join(", ")}]`;
  if (x.type !== "float32") {
    throw new TypeError(
      `input ${JSON.stringify(x.name)} is ${x.type}: OnnxBatcher feeds float32 inputs only`,
    );
  }
  if (y.type !== "float32" && y.type !== "unknown") {
    throw new TypeError(
      `output ${JSON.stringify(y.name)} is ${y.type}: OnnxBatcher splits float32 outputs only`,
    );
  }
  const [batch, ...example] = x.shape;
  if (batch === undefined || (typeof batch === "number" && batch !== -1)) {
    throw new TypeError(
      `input ${JSON.stringify(x.name)} has shape ${shape}: its first dimension must be a free batch dimension`,
    );
  }
  if (!example.every((d): d is number => typeof d === "number" && d > 0)) {
    throw new TypeError(
      `input ${JSON.stringify(x.name)} has shape ${shape}: every dimension but the first must be fixed`,
    );
  }
  return { input: x.name, output: y.name, exampleShape: example };
}

/** The example as the batcher holds it (a copy in a buffer of its own), or why it is refused. */
function toExample(
  item: unknown,
  size: number,
  allowNonFinite: boolean,
): Example | InvalidInputError {
  let example: Float32Array;
  if (item instanceof Float32Array) {
    if (item.length !== size) {
      return new InvalidInputError(
        "length",
        `expected ${size} values, got a Float32Array of ${item.length}`,
      );
    }
    example = item.slice();
  } else if (Array.isArray(item)) {
    if (item.length !== size) {
      return new InvalidInputError(
        "length",
        `expected ${size} values, got an array of ${item.length}`,
      );
    }
    example = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const value: unknown = item[i];
      if (typeof value !== "number") {
        return new InvalidInputError(
          "type",
          `value ${i} must be a number, got ${describe(value)}`,
          i,
        );
      }
      example[i] = value;
    }
  } else {
    return new InvalidInputError(
      "type",
      `an example must be a Float32Array or an array of numbers, got ${describe(item)}`,
    );
  }
  if (!allowNonFinite) {
    for (let i = 0; i < size; i++) {
      // Checked after the conversion: 1e39 is finite as a number and Infinity as a float32.
      if (!Number.isFinite(example[i])) {
        const value = Array.isArray(item) ? (item[i] as number) : (example[i] as number);
        return new InvalidInputError(
          "value",
          `value ${i} must be a finite float32, got ${String(value)}`,
          i,
        );
      }
    }
  }
  return example;
}

/**
 * Batched ONNX inference: `process(example)` takes one example and resolves with its output row;
 * the examples of a batch are stacked into one `[n, ...]` tensor, run once, and split back.
 *
 * With a model path or bytes, batches run in worker threads (`threads`, each with its own session
 * and `intraOpNumThreads`), because `session.run()` blocks the thread it runs on. With a loaded
 * `InferenceSession`, they run on the main thread. Each example is checked on `process()`: a
 * wrong type, a wrong length or a non-finite value rejects that caller alone with
 * `InvalidInputError`, before any batch runs.
 *
 * ```ts
 * const classifier = new OnnxBatcher({ model: "model.onnx", maxBatchSize: 64, maxQueueTime: 2 });
 * const probabilities = await classifier.process(features); // Float32Array
 * await classifier.stop(); // drains, then stops the threads
 * ```
 */
export class OnnxBatcher extends AsyncBatcher<Example, Float32Array> {
  /** The model's input fed with each batch. */
  readonly input: string;
  /** The model's output split into rows. */
  readonly output: string;
  /** The dimensions of one example (after the batch dimension). */
  readonly exampleShape: readonly number[];
  /** Values in one example: what `process()` accepts. */
  readonly exampleSize: number;
  /** The worker pool, for monitoring; `undefined` when batches run on the main thread. */
  readonly executor: WorkerPoolExecutor<Example, Float32Array> | undefined;
  readonly #session: InferenceSession | undefined;
  readonly #config: OnnxRunConfig;
  readonly #allowNonFinite: boolean;

  /**
   * Checks every option and reads the model's signature (a bad option, an unreadable model or an
   * unusable input throws a `TypeError`/`RangeError` before any thread starts), then starts the
   * worker threads.
   */
  constructor(options: OnnxBatcherOptions) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`options must be an object with a model, got ${describe(options)}`);
    }
    const model = modelOption(options.model);
    const session = "session" in model ? model.session : undefined;
    const config = runConfig(
      session === undefined
        ? signatureOfBytes((model as { bytes: Uint8Array }).bytes)
        : signatureOfSession(session),
      options.input,
      options.output,
    );
    const threads = positiveInteger("threads", options.threads, 1);
    const intraOpNumThreads = positiveInteger("intraOpNumThreads", options.intraOpNumThreads, 1);
    if (options.allowNonFinite !== undefined && typeof options.allowNonFinite !== "boolean") {
      throw new TypeError(
        `allowNonFinite must be a boolean, got ${describe(options.allowNonFinite)}`,
      );
    }
    for (const key of ["executor", "closeExecutor"]) {
      if (key in options) {
        throw new TypeError(`${key} cannot be set: OnnxBatcher runs its batches itself`);
      }
    }
    const batcherOptions: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(options)) {
      if (!(OWN_KEYS as readonly string[]).includes(key)) batcherOptions[key] = value;
    }
    batcherOptions.maxBatchSize ??= DEFAULT_MAX_BATCH_SIZE;
    batcherOptions.concurrency ??= session === undefined ? threads : 1;
    batcherOptions.name ??= "OnnxBatcher";
    resolveOptions(batcherOptions); // throws before any thread starts
    let executor: WorkerPoolExecutor<Example, Float32Array> | undefined;
    if (session === undefined) {
      const workerData: OnnxWorkerData = {
        ...config,
        model: (model as { source: string | Uint8Array }).source,
        intraOpNumThreads,
      };
      executor = new WorkerPoolExecutor<Example, Float32Array>({
        filename: workerModule(),
        // Every thread holds a session (the model's weights, loaded once): keep them all until
        // stop() rather than reloading the model after each idle spell.
        minThreads: threads,
        maxThreads: threads,
        idleTimeout: Number.POSITIVE_INFINITY,
        workerData,
        // Each example owns its buffer (a copy made by process()): move it, do not clone it.
        transfer: (batch) => batch.map((example) => example.buffer),
        ...(options.execArgv === undefined ? {} : { execArgv: options.execArgv }),
        ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
      });
      batcherOptions.executor = executor;
      batcherOptions.closeExecutor = true;
    }
    super(batcherOptions as BatcherOptions<Example, Float32Array>);
    this.input = config.input;
    this.output = config.output;
    this.exampleShape = config.exampleShape;
    this.exampleSize = exampleSize(config.exampleShape);
    this.executor = executor;
    this.#session = session;
    this.#config = config;
    this.#allowNonFinite = options.allowNonFinite ?? false;
  }

  /**
   * Queues one example and resolves with its output row. Rejects at once, alone, with
   * `InvalidInputError` when the example is not a `Float32Array` or an array of numbers
   * (`reason: "type"`), does not hold `exampleSize` values (`"length"`), or holds `NaN` or an
   * infinity (`"value"`, unless `allowNonFinite`). The example is copied: the caller may reuse it.
   */
  override process(example: OnnxInput): Promise<Float32Array> {
    const checked = toExample(example, this.exampleSize, this.#allowNonFinite);
    if (checked instanceof InvalidInputError) return Promise.reject(checked);
    return super.process(checked);
  }

  /** Runs a batch on the main thread, with the session given as `model`. */
  processBatch(batch: Example[]): Promise<BatchResult<Float32Array>> {
    // With a worker pool the engine hands every batch to the executor: no session here.
    const session = this.#session as unknown as RunnableSession;
    return runStacked(session, this.#config, batch);
  }
}
