/**
 * Model serving over HTTP: the same ONNX model behind two endpoints.
 *
 *   POST /predict          one session.run() per request, on the main thread
 *   POST /predict/batched  through OnnxBatcher: requests arriving together share one run, in a
 *                          worker thread
 *   GET  /stats            the batcher's queued and in-flight examples
 *
 * Both take `{ "features": [256 numbers] }` and answer `{ "probabilities": [16 numbers] }`.
 *
 *   npm run serve:model                      # port 3000, the 256-4096-4096-16 model
 *   npm run serve:model -- --port 0 --small  # any free port, the tests' tiny model
 *
 * It prints `listening on http://...` once it serves; SIGINT or SIGTERM close it gracefully:
 * requests in progress are answered, then the batcher drains and its threads stop.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { BatcherError, QueueFullError } from "async-batcher";
import { InvalidInputError, OnnxBatcher } from "async-batcher/onnx";
import Fastify, { type FastifyInstance } from "fastify";
import { InferenceSession, Tensor } from "onnxruntime-node";
import {
  ensureModel,
  INPUT_NAME,
  type MlpSpec,
  OUTPUT_NAME,
  SERVING_MLP,
  SMALL_MLP,
} from "./model.js";

export interface ServerOptions {
  /** The model's shape; its file is generated if missing. */
  spec: MlpSpec;
  /** Most examples per batch on the batched endpoint. */
  maxBatchSize?: number;
  /** Ms the first request of a batch waits for others, when the worker thread is free. */
  maxQueueTime?: number;
  /** Worker threads of the batched endpoint. */
  threads?: number;
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const { spec } = options;
  const model = ensureModel(spec);

  // The unbatched endpoint's session, on the main thread: each run blocks the event loop.
  const session = await InferenceSession.create(model, { intraOpNumThreads: 1 });
  const batcher = new OnnxBatcher({
    model,
    threads: options.threads ?? 1,
    intraOpNumThreads: 1,
    maxBatchSize: options.maxBatchSize ?? 128,
    maxQueueTime: options.maxQueueTime ?? 2,
  });
  // Load the model in the worker thread now, not on the first request (flush: without waiting
  // for maxQueueTime).
  const warmUp = batcher.process(new Float32Array(spec.inputs));
  await batcher.flush();
  await warmUp;

  const app = Fastify({ logger: false, return503OnClosing: true });
  const schema = {
    body: {
      type: "object",
      required: ["features"],
      additionalProperties: false,
      properties: {
        features: {
          type: "array",
          minItems: spec.inputs,
          maxItems: spec.inputs,
          items: { type: "number" },
        },
      },
    },
    response: {
      200: {
        type: "object",
        properties: { probabilities: { type: "array", items: { type: "number" } } },
      },
    },
  } as const;
  type Body = { features: number[] };

  app.post<{ Body: Body }>("/predict", { schema }, async (request) => {
    const x = new Tensor("float32", Float32Array.from(request.body.features), [1, spec.inputs]);
    const outputs = await session.run({ [INPUT_NAME]: x }, [OUTPUT_NAME]);
    return { probabilities: Array.from(outputs[OUTPUT_NAME]?.data as Float32Array) };
  });

  app.post<{ Body: Body }>("/predict/batched", { schema }, async (request, reply) => {
    try {
      return { probabilities: Array.from(await batcher.process(request.body.features)) };
    } catch (error) {
      // Valid JSON numbers that are not finite float32 values (1e39) are refused by the batcher.
      if (error instanceof InvalidInputError) return reply.code(400).send({ error: error.message });
      if (error instanceof QueueFullError) return reply.code(503).send({ error: error.message });
      if (error instanceof BatcherError && error.code === "ERR_BATCHER_STOPPED") {
        return reply.code(503).send({ error: "shutting down" });
      }
      throw error;
    }
  });

  // For monitoring (and the shutdown test): examples waiting for a batch, and in running batches.
  app.get("/stats", async () => ({ queued: batcher.queueSize, inFlight: batcher.inFlight }));

  // While closing, answer on a connection that then closes: a client's idle keep-alive
  // connection would otherwise hold the server open until its keep-alive timeout.
  // Closing also starts the batcher's graceful stop at once: what is queued is cut into batches
  // now rather than after maxQueueTime, and the requests waiting for it are answered sooner.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
    batcher.stop().catch(() => {}); // awaited (the same promise) in onClose
  });
  app.addHook("onSend", async (_request, reply) => {
    if (closing) reply.header("connection", "close");
  });

  // close(): the server stops accepting, requests in progress are answered, then this runs:
  // the batcher drains what is queued and stops its threads.
  app.addHook("onClose", async () => {
    await batcher.stop();
    await session.release();
  });
  return app;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "3000" },
      host: { type: "string", default: "127.0.0.1" },
      small: { type: "boolean", default: false },
      threads: { type: "string", default: "1" },
      "max-batch-size": { type: "string", default: "128" },
      "max-queue-time": { type: "string", default: "2" },
    },
  });
  const app = await buildServer({
    spec: values.small ? SMALL_MLP : SERVING_MLP,
    threads: Number(values.threads),
    maxBatchSize: Number(values["max-batch-size"]),
    maxQueueTime: Number(values["max-queue-time"]),
  });
  const address = await app.listen({ port: Number(values.port), host: values.host });
  console.log(`listening on ${address}`);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.close().then(
      () => console.log(`closed on ${signal}`),
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
}

if (
  process.argv[1] !== undefined &&
  resolve(process.argv[1]) === new URL(import.meta.url).pathname
) {
  await main();
}
