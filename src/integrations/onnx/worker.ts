/**
 * The worker module `OnnxBatcher` runs in each of its worker threads (through the core worker
 * pool's entry script). It creates its session once per thread, on the first batch, from
 * `workerData` (the model's path or bytes, the session options), then runs each batch as one
 * stacked tensor and moves the output rows back to the main thread.
 */

import { workerData } from "node:worker_threads";
import { InferenceSession } from "onnxruntime-node";
import { withTransfer } from "../../worker/protocol.js";
import { type OnnxRunConfig, runStacked } from "./run.js";

/** What the main thread passes to every thread as `workerData`. */
export interface OnnxWorkerData extends OnnxRunConfig {
  /** An absolute path, or the model's bytes. */
  readonly model: string | Uint8Array;
  readonly intraOpNumThreads: number;
}

let session: Promise<InferenceSession> | undefined;

function load(data: OnnxWorkerData): Promise<InferenceSession> {
  // One intra-op thread per worker thread unless asked: several workers, each spreading one
  // inference over every core, would only fight for them.
  const options: InferenceSession.SessionOptions = { intraOpNumThreads: data.intraOpNumThreads };
  return typeof data.model === "string"
    ? InferenceSession.create(data.model, options)
    : InferenceSession.create(data.model, options);
}

export default async function runOnnxBatch(batch: Float32Array[]) {
  const data = workerData as OnnxWorkerData;
  if (session === undefined) {
    session = load(data);
    // A model that fails to load fails this batch; the next batch tries again.
    session.catch(() => {
      session = undefined;
    });
  }
  const rows = await runStacked(await session, data, batch);
  return withTransfer(
    rows,
    rows.map((row) => row.buffer),
  );
}
