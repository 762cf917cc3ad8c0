import { availableParallelism } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type ResourceLimits, SHARE_ENV } from "node:worker_threads";
import { describe, durationOption, functionOption } from "../options.js";
import type { Transferable } from "./protocol.js";

/**
 * Options of `WorkerPoolExecutor`. Times are in milliseconds.
 *
 * @typeParam T - the item type, for `transfer`
 */
export interface WorkerPoolOptions<T = unknown> {
  /**
   * The worker module: a path (resolved against `process.cwd()`), a `file:` URL string, or a
   * `URL`, best `new URL("./model.js", import.meta.url)`. It must export a function
   * `(batch: T[]) => R[] | Promise<R[]>`. A `.ts` file needs a TypeScript loader in the worker
   * threads: see `execArgv`.
   */
  filename: string | URL;
  /**
   * Which export of the module is the worker function.
   * @default "default"
   */
  exportName?: string;
  /**
   * Threads started at once and kept alive while idle: a non-negative integer.
   * @default piscina's: half the cores, at least 1 (at most `maxThreads`)
   */
  minThreads?: number;
  /**
   * Most threads, so most batches running at once: a positive integer.
   * @default `os.availableParallelism()` (at least `minThreads`)
   */
  maxThreads?: number;
  /**
   * Milliseconds an idle thread above `minThreads` lives before it is stopped; `Infinity` keeps it.
   * Each thread loads the worker module (a model, say) for itself: stopping one as soon as it
   * idles, as piscina's default of 0 does, would reload the module on the next burst.
   * @default 30_000
   */
  idleTimeout?: number;
  /**
   * Memory and stack limits of each thread. A thread that exceeds its heap limit dies, and the
   * items of the batch it was running reject with `WorkerCrashedError`.
   * @default the process's limits
   */
  resourceLimits?: ResourceLimits;
  /**
   * The threads' `process.env`: an object, or `SHARE_ENV` from `node:worker_threads` to share
   * the main thread's.
   * @default a copy of the main thread's `process.env`
   */
  env?: Record<string, string | undefined> | typeof SHARE_ENV;
  /** Cloned into each thread as `workerData` (from `node:worker_threads`). */
  workerData?: unknown;
  /**
   * Node.js options of the threads. A `.ts` worker module needs a TypeScript loader: under
   * `tsx` or `node --import tsx` the threads inherit it; elsewhere (Vitest, plain `node`) pass
   * `[...process.execArgv, "--import", "tsx"]`.
   * @default `process.execArgv` (inherited)
   */
  execArgv?: string[];
  /**
   * Returns the buffers of a batch to move into the worker thread instead of copying them, such
   * as `(batch) => batch.map((image) => image.buffer)`. They are detached on the main thread
   * once the batch is posted. `SharedArrayBuffer`s and duplicates are left out of the list.
   * Results come back moved when the worker returns `withTransfer()`.
   * @default undefined (everything is copied)
   */
  transfer?: (batch: T[]) => readonly Transferable[];
}

/** Options with every default applied and every value checked. */
export interface ResolvedWorkerPoolOptions<T> {
  /** `file:` URL of the worker module. */
  readonly module: string;
  readonly exportName: string;
  readonly minThreads: number | undefined;
  readonly maxThreads: number;
  readonly idleTimeout: number;
  readonly resourceLimits: ResourceLimits | undefined;
  readonly env: Record<string, string | undefined> | typeof SHARE_ENV | undefined;
  readonly workerData: unknown;
  readonly execArgv: string[] | undefined;
  readonly transfer: ((batch: T[]) => readonly Transferable[]) | undefined;
}

/** Keeps threads above `minThreads` between bursts (see `idleTimeout`), in ms. */
const DEFAULT_IDLE_TIMEOUT = 30_000;

/** The options a worker pool takes, apart from `filename`: `createWorkerBatcher` splits on them. */
export const WORKER_POOL_KEYS = [
  "exportName",
  "minThreads",
  "maxThreads",
  "idleTimeout",
  "resourceLimits",
  "env",
  "workerData",
  "execArgv",
  "transfer",
] as const satisfies readonly (keyof WorkerPoolOptions)[];

const RESOURCE_LIMITS = [
  "maxOldGenerationSizeMb",
  "maxYoungGenerationSizeMb",
  "codeRangeSizeMb",
  "stackSizeMb",
] as const satisfies readonly (keyof ResourceLimits)[];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The worker module as a `file:` URL string. */
function moduleOption(value: unknown): string {
  const expected = "filename must be a path, a file: URL string or a URL of the worker module";
  let url: URL | undefined;
  if (value instanceof URL) {
    url = value;
  } else if (typeof value === "string") {
    if (value === "") throw new TypeError(`${expected}, got an empty string`);
    if (value.startsWith("file:")) {
      try {
        url = new URL(value);
      } catch (error) {
        throw new TypeError(`${expected}, got ${describe(value)}`, { cause: error });
      }
    } else {
      return pathToFileURL(isAbsolute(value) ? value : resolve(value)).href;
    }
  } else {
    throw new TypeError(`${expected}, got ${describe(value)}`);
  }
  if (url.protocol !== "file:") {
    throw new TypeError(`${expected}, got a ${url.protocol} URL: ${url.href}`);
  }
  return url.href;
}

function integerOption(name: string, value: unknown, min: 0 | 1): number | undefined {
  if (value === undefined) return undefined;
  const expected = min === 0 ? "a non-negative integer" : "a positive integer";
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be ${expected}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be ${expected}, got ${describe(value)}`);
  }
  return value;
}

function resourceLimitsOption(value: unknown): ResourceLimits | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    throw new TypeError(
      `resourceLimits must be an object of ${RESOURCE_LIMITS.join(", ")}, got ${describe(value)}`,
    );
  }
  for (const [key, limit] of Object.entries(value)) {
    if (!(RESOURCE_LIMITS as readonly string[]).includes(key)) {
      throw new TypeError(
        `resourceLimits.${key} is not a resource limit: expected ${RESOURCE_LIMITS.join(", ")}`,
      );
    }
    if (limit === undefined) continue;
    if (typeof limit !== "number") {
      throw new TypeError(
        `resourceLimits.${key} must be a positive number of MB, got ${describe(limit)}`,
      );
    }
    if (!(limit > 0 && Number.isFinite(limit))) {
      throw new RangeError(
        `resourceLimits.${key} must be a positive number of MB, got ${describe(limit)}`,
      );
    }
  }
  return { ...value };
}

function envOption(
  value: unknown,
): Record<string, string | undefined> | typeof SHARE_ENV | undefined {
  if (value === undefined || value === SHARE_ENV) return value;
  if (!isObject(value)) {
    throw new TypeError(
      `env must be an object of strings or SHARE_ENV from node:worker_threads, got ${describe(value)}`,
    );
  }
  return value as Record<string, string | undefined>;
}

function workerDataOption(value: unknown): unknown {
  if (value === undefined) return undefined;
  try {
    structuredClone(value);
  } catch (error) {
    throw new TypeError(
      `workerData must survive structured clone (no functions, symbols or class instances with private state), got ${describe(value)}`,
      { cause: error },
    );
  }
  return value;
}

function execArgvOption(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((arg) => typeof arg === "string")) {
    throw new TypeError(`execArgv must be an array of strings, got ${describe(value)}`);
  }
  return [...value];
}

/**
 * Applies the defaults and checks every value, naming the option, what it accepts and what came.
 * Nothing is started: a bad option throws before any thread exists.
 */
export function resolveWorkerPoolOptions<T>(
  options: WorkerPoolOptions<T> | undefined,
): ResolvedWorkerPoolOptions<T> {
  if (!isObject(options)) {
    throw new TypeError(`options must be an object with a filename, got ${describe(options)}`);
  }
  const module = moduleOption(options.filename);
  const exportName = options.exportName ?? "default";
  if (typeof exportName !== "string" || exportName === "") {
    throw new TypeError(`exportName must be a non-empty string, got ${describe(exportName)}`);
  }
  const minThreads = integerOption("minThreads", options.minThreads, 0);
  let maxThreads = integerOption("maxThreads", options.maxThreads, 1);
  if (maxThreads === undefined) {
    maxThreads = Math.max(availableParallelism(), minThreads ?? 1);
  } else if (minThreads !== undefined && minThreads > maxThreads) {
    throw new RangeError(
      `minThreads must not exceed maxThreads, got minThreads ${minThreads} and maxThreads ${maxThreads}`,
    );
  }
  return {
    module,
    exportName,
    minThreads,
    maxThreads,
    idleTimeout: durationOption("idleTimeout", options.idleTimeout, DEFAULT_IDLE_TIMEOUT),
    resourceLimits: resourceLimitsOption(options.resourceLimits),
    env: envOption(options.env),
    workerData: workerDataOption(options.workerData),
    execArgv: execArgvOption(options.execArgv),
    transfer: functionOption<(batch: T[]) => readonly Transferable[]>("transfer", options.transfer),
  };
}
