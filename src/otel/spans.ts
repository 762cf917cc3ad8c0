import {
  type Attributes,
  context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { batchScope, captureContext } from "../batcher.js";
import type { BatchEndEvent, BatchStartEvent } from "../events.js";
import type { InstrumentableBatcher } from "./types.js";

/** What the batcher keeps for each caller: the span context active in its `process()` call. */
function activeSpanContext(): SpanContext | undefined {
  const spanContext = trace.getSpanContext(context.active());
  // Nothing kept for a caller outside any span: no link to make, and no memory held for it.
  return spanContext !== undefined && trace.isSpanContextValid(spanContext)
    ? spanContext
    : undefined;
}

/**
 * How many tracing instrumentations use each batcher's capture. Every one installs the same
 * function (it reads the global context, whatever the tracer provider), so they share it: the
 * first installs it, the last one to go removes it, and the others keep their links meanwhile.
 */
const captureUsers = new WeakMap<InstrumentableBatcher, number>();

function holdCapture(batcher: InstrumentableBatcher): () => void {
  const users = captureUsers.get(batcher) ?? 0;
  // Installing again would drop what the batcher captured for callers still queued.
  if (users === 0) batcher[captureContext](activeSpanContext);
  captureUsers.set(batcher, users + 1);
  return () => {
    const left = (captureUsers.get(batcher) ?? 1) - 1;
    if (left > 0) {
      captureUsers.set(batcher, left);
      return;
    }
    captureUsers.delete(batcher);
    batcher[captureContext](undefined);
  };
}

/**
 * The open batch spans of each batcher, one map per tracing instrumentation. The batcher runs
 * every batch function through one scope, which makes the batch's span (the first
 * instrumentation's that has one) the active span meanwhile: spans the function starts are its
 * children.
 */
const spanMaps = new WeakMap<InstrumentableBatcher, Map<number, Span>[]>();

function holdScope(batcher: InstrumentableBatcher, open: Map<number, Span>): () => void {
  let maps = spanMaps.get(batcher);
  if (maps === undefined) {
    const list: Map<number, Span>[] = [];
    maps = list;
    spanMaps.set(batcher, list);
    batcher[batchScope]((batchId, run) => {
      for (const map of list) {
        const span = map.get(batchId);
        // From the root: the context that cut the batch (a caller's) must not leak into it.
        if (span !== undefined) return context.with(trace.setSpan(ROOT_CONTEXT, span), run);
      }
      return run();
    });
  }
  maps.push(open);
  return () => {
    const list = spanMaps.get(batcher);
    if (list === undefined) return;
    const at = list.indexOf(open);
    if (at >= 0) list.splice(at, 1);
    if (list.length > 0) return;
    spanMaps.delete(batcher);
    batcher[batchScope](undefined);
  };
}

function isSpanContext(value: unknown): value is SpanContext {
  // The capture may be someone else's (the last one installed wins): check what it gave.
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Partial<SpanContext>;
  return (
    typeof candidate.traceId === "string" &&
    typeof candidate.spanId === "string" &&
    typeof candidate.traceFlags === "number" &&
    trace.isSpanContextValid(candidate as SpanContext)
  );
}

/** One link per distinct caller span: callers of one span (a loop in a request) share a link. */
function linksTo(contexts: readonly unknown[] | undefined): Link[] {
  const links: Link[] = [];
  if (contexts === undefined) return links;
  const seen = new Set<string>();
  for (const spanContext of contexts) {
    if (!isSpanContext(spanContext)) continue;
    const id = `${spanContext.traceId}-${spanContext.spanId}`;
    if (seen.has(id)) continue;
    seen.add(id);
    links.push({ context: spanContext });
  }
  return links;
}

/** `String(error)`, which throws for an object without a usable `toString`. */
function describeError(error: unknown): string {
  try {
    return String(error);
  } catch {
    return Object.prototype.toString.call(error);
  }
}

/**
 * Starts a span for each batch of `batcher` on `batchStart` and ends it on `batchEnd`. A batch
 * serves many callers, each in its own trace: its span is a root linked to every caller's span
 * (the OpenTelemetry messaging pattern for batches), not a child of any one of them. Returns the
 * function that stops it (idempotent), which ends the spans still open.
 */
export function traceBatches(
  batcher: InstrumentableBatcher,
  tracer: Tracer,
  base: Attributes,
): () => void {
  const name = `batch ${batcher.name}`;
  const open = new Map<number, Span>();

  const onStart = (event: BatchStartEvent): void => {
    const attributes: Attributes = {
      ...base,
      "batcher.batch.id": event.batchId,
      "batcher.batch.size": event.size,
      "batcher.batch.callers": event.callers,
      "batcher.batch.reason": event.reason,
      "batcher.batch.attempt": event.attempt,
    };
    if (event.parentId !== undefined) attributes["batcher.batch.parent_id"] = event.parentId;
    // ROOT_CONTEXT: the event fires in whatever context cut the batch (often one caller's own
    // process() call), which must not become the parent.
    const span = tracer.startSpan(
      name,
      { kind: SpanKind.INTERNAL, attributes, links: linksTo(event.contexts), root: true },
      ROOT_CONTEXT,
    );
    open.set(event.batchId, span);
  };

  const onEnd = (event: BatchEndEvent): void => {
    const span = open.get(event.batchId);
    if (span === undefined) return; // started before instrument()
    open.delete(event.batchId);
    span.setAttributes({
      "batcher.batch.resolved": event.resolved,
      "batcher.batch.rejected": event.rejected,
      "batcher.batch.retried": event.retried,
    });
    if (event.failed) {
      const error = event.error;
      if (error instanceof Error) {
        span.recordException(error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      } else {
        span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
      }
    }
    span.end();
  };

  const release = holdCapture(batcher);
  const releaseScope = holdScope(batcher, open);
  const offStart = batcher.on("batchStart", onStart);
  const offEnd = batcher.on("batchEnd", onEnd);
  let installed = true;
  return () => {
    if (!installed) return;
    installed = false;
    offStart();
    offEnd();
    release();
    releaseScope();
    // Their batches may still finish, but nobody will hear of it: end them now rather than never.
    for (const span of open.values()) span.end();
    open.clear();
  };
}
