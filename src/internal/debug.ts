import type { BatcherLogEvent, BatcherLogger } from "../options.js";

const NAMESPACE = "async-batcher";

/** The `NODE_DEBUG` value, read without importing `node:*` and without failing where env is denied. */
function nodeDebug(): string {
  try {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
      ?.env;
    return env?.NODE_DEBUG ?? "";
  } catch {
    // Deno without --allow-env throws on access.
    return "";
  }
}

/** True when `NODE_DEBUG` names this library, with the same wildcards as `util.debuglog`. */
export function debugEnabled(value: string = nodeDebug()): boolean {
  for (const part of value.split(/[\s,]+/)) {
    if (part === "") continue;
    const pattern = new RegExp(
      `^${part.replace(/[|\\{}()[\]^$+?.]/g, "\\$&").replace(/\*/g, ".*")}$`,
      "i",
    );
    if (pattern.test(NAMESPACE)) return true;
  }
  return false;
}

function pid(): string {
  const p = (globalThis as { process?: { pid?: number } }).process?.pid;
  return p === undefined ? "" : ` ${p}`;
}

/** Formats one event as a single line, in the style of `util.debuglog`. */
export function formatLogEvent(event: BatcherLogEvent): string {
  const head = `${NAMESPACE.toUpperCase()}${pid()}: ${event.batcher}`;
  switch (event.type) {
    case "batchCut":
      return `${head} batch ${event.batchId} cut: size=${event.size}${
        event.key === undefined ? "" : ` key=${JSON.stringify(event.key)}`
      }${event.weight === undefined ? "" : ` weight=${event.weight}`} reason=${event.reason} wait=${event.waitMs.toFixed(1)}ms`;
    case "batchDone":
      return `${head} batch ${event.batchId} done: size=${event.size} duration=${event.durationMs.toFixed(1)}ms outcome=${event.outcome} resolved=${event.resolved} rejected=${event.rejected}`;
    case "retry":
      return `${head} batch ${event.batchId} retry: scope=${event.scope} size=${event.size} attempt=${event.attempt} delay=${event.delayMs.toFixed(1)}ms`;
    case "listenerError":
      return `${head} ${event.event} listener threw: ${String(event.error)}`;
    case "stop":
      return `${head} stop: ${event.force ? "force" : "graceful"} queued=${event.queued} inFlight=${event.inFlight}`;
  }
}

/** Writes to stderr through `console.error`, which every runtime has. */
const stderrLogger: BatcherLogger = (event) => {
  console.error(formatLogEvent(event));
};

/**
 * The logger a batcher uses: the user's, the stderr one when `NODE_DEBUG` asks, both, or none
 * (`undefined`, so the engine can skip building events entirely).
 */
export function resolveLogger(user: BatcherLogger | undefined): BatcherLogger | undefined {
  if (!debugEnabled()) return user;
  if (user === undefined) return stderrLogger;
  return (event) => {
    stderrLogger(event);
    user(event);
  };
}
