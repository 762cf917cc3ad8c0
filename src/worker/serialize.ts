/**
 * Errors across the thread boundary. Structured clone keeps an error's message and stack but
 * drops its `code`, its other properties and its class (a `class NotFound extends Error` arrives
 * as a plain `Error`), so the worker side turns every error into plain data and the main thread
 * rebuilds it: same `name`, `message`, `code`, `stack`, own properties and `cause`, and the
 * nearest built-in class (`TypeError`, `RangeError`, `AggregateError`, `DOMException`, ...), so
 * `instanceof TypeError` still holds. A user-defined class cannot be rebuilt (it does not exist
 * on the main thread): its `name` tells it.
 */

/** The built-in classes an error is rebuilt as, nearest first when one extends another. */
const BUILTINS = {
  AggregateError,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
} as const;

type Builtin = keyof typeof BUILTINS | "DOMException" | "Error";

/** An error as plain, cloneable data. */
export interface SerializedError {
  /** The built-in class to rebuild it as. */
  readonly builtin: Builtin;
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** Present only when the error had a `code`. */
  readonly code?: unknown;
  /** Present only when the error had a `cause`. */
  readonly cause?: SerializedThrown;
  /** An `AggregateError`'s `errors`. */
  readonly errors?: readonly SerializedThrown[];
  /** Other own enumerable properties whose values survive structured clone. */
  readonly props?: Readonly<Record<string, unknown>>;
}

/** Anything thrown: an error, or another value that survives structured clone. */
export type SerializedThrown = { readonly error: SerializedError } | { readonly value: unknown };

/** How deep `cause` chains (and `AggregateError` members) are followed; guards against cycles. */
const MAX_DEPTH = 8;

/** Keys serialized by name, not copied among `props`. */
const OWN_KEYS = new Set(["name", "message", "stack", "code", "cause", "errors"]);

export function isError(value: unknown): value is Error {
  return value instanceof Error || Object.prototype.toString.call(value) === "[object Error]";
}

function cloneable(value: unknown): boolean {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) {
    return typeof value !== "symbol";
  }
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function builtinOf(error: Error): Builtin {
  if (typeof DOMException === "function" && error instanceof DOMException) return "DOMException";
  for (const name of Object.keys(BUILTINS) as (keyof typeof BUILTINS)[]) {
    if (error instanceof BUILTINS[name]) return name;
  }
  return "Error";
}

/** Turns an error into data that crosses `postMessage` without losing what callers test. */
export function serializeError(error: Error, depth = 0): SerializedError {
  const builtin = builtinOf(error);
  const name = safeString(error.name);
  const message = safeString(error.message);
  const out: {
    -readonly [K in keyof SerializedError]: SerializedError[K];
  } = { builtin, name, message };
  const stack: unknown = error.stack;
  if (typeof stack === "string") out.stack = stack;
  // A DOMException's code is derived from its name, and read-only.
  const code: unknown = (error as { code?: unknown }).code;
  if (code !== undefined && builtin !== "DOMException" && cloneable(code)) out.code = code;
  if ("cause" in error && depth < MAX_DEPTH) out.cause = serializeThrown(error.cause, depth + 1);
  if (builtin === "AggregateError" && Array.isArray((error as AggregateError).errors)) {
    out.errors =
      depth < MAX_DEPTH
        ? (error as AggregateError).errors.map((member) => serializeThrown(member, depth + 1))
        : [];
  }
  let props: Record<string, unknown> | undefined;
  for (const key of Object.keys(error)) {
    if (OWN_KEYS.has(key)) continue;
    const value: unknown = (error as unknown as Record<string, unknown>)[key];
    if (!cloneable(value)) continue;
    props ??= {};
    props[key] = value;
  }
  if (props !== undefined) out.props = props;
  return out;
}

/** Serializes anything a worker function threw. */
export function serializeThrown(thrown: unknown, depth = 0): SerializedThrown {
  if (isError(thrown)) return { error: serializeError(thrown, depth) };
  if (cloneable(thrown)) return { value: thrown };
  return {
    error: {
      builtin: "Error",
      name: "Error",
      message: `worker function threw a value that cannot be cloned: ${safeString(thrown)}`,
    },
  };
}

/** Rebuilds, on the main thread, an error serialized in a worker thread. */
export function deserializeError(data: SerializedError): Error {
  // `in`, not `!== undefined`: a cause that was there stays there.
  const options =
    "cause" in data ? { cause: deserializeThrown(data.cause as SerializedThrown) } : undefined;
  let error: Error;
  if (data.builtin === "DOMException") {
    error = new DOMException(data.message, data.name);
    if (options !== undefined) {
      Object.defineProperty(error, "cause", {
        value: options.cause,
        writable: true,
        configurable: true,
        enumerable: false,
      });
    }
  } else if (data.builtin === "AggregateError") {
    error = new AggregateError((data.errors ?? []).map(deserializeThrown), data.message, options);
  } else {
    const Builtin = data.builtin === "Error" ? Error : (BUILTINS[data.builtin] ?? Error);
    error = new (Builtin as ErrorConstructor)(data.message, options);
  }
  if (error.name !== data.name) {
    Object.defineProperty(error, "name", {
      value: data.name,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  if (data.stack !== undefined) error.stack = data.stack;
  else delete error.stack;
  const target = error as unknown as Record<string, unknown>;
  if ("code" in data) target.code = data.code;
  if (data.props !== undefined) {
    for (const [key, value] of Object.entries(data.props)) {
      try {
        target[key] = value;
      } catch {
        // A read-only property of the rebuilt class (a DOMException getter): keep the class's.
      }
    }
  }
  return error;
}

export function deserializeThrown(data: SerializedThrown): unknown {
  return "error" in data ? deserializeError(data.error) : data.value;
}
