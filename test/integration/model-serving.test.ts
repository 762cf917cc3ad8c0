/**
 * The model-serving example end to end: the Fastify server in a child process (the generated
 * small model), concurrent requests to both endpoints, every answer checked against the
 * TypeScript forward pass; bad bodies refused by the schema; a graceful close on SIGTERM that
 * answers the requests in progress.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../examples/model-serving/process.js";
import { closeTo, examples, expected, spec } from "../helpers/onnx.js";

let server: RunningServer;
beforeAll(async () => {
  // A long maxQueueTime is not needed: requests sent together are batched anyway while the
  // worker thread is busy; 5 ms makes batches of several requests likely.
  server = await startServer(["--small", "--threads", "2", "--max-queue-time", "5"]);
});
afterAll(async () => {
  await server?.stop();
});

async function post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

describe.each(["/predict", "/predict/batched"])("POST %s", (path) => {
  it("answers 200 concurrent requests, each with its own example's probabilities", async () => {
    const inputs = examples(200, path.length);
    const answers = await Promise.all(inputs.map((x) => post(path, { features: Array.from(x) })));
    answers.forEach(({ status, json }, i) => {
      expect(status).toBe(200);
      const probabilities = (json as { probabilities: number[] }).probabilities;
      expect(probabilities).toHaveLength(spec.outputs);
      expect(closeTo(probabilities, expected(inputs[i] as Float32Array))).toBe(true);
    });
  });

  it.each([
    { what: "too few features", body: { features: [1, 2, 3] } },
    { what: "a string feature", body: { features: ["x", ...new Array(spec.inputs - 1).fill(0)] } },
    { what: "no features", body: {} },
    { what: "features that are not an array", body: { features: { 0: 1 } } },
  ])("refuses $what with 400", async ({ body }) => {
    const { status } = await post(path, body);
    expect(status).toBe(400);
  });
});

describe("POST /predict/batched", () => {
  it("refuses, with 400, a number JSON allows and float32 does not", async () => {
    const features = new Array(spec.inputs).fill(0);
    features[0] = 1e39;
    const { status, json } = await post("/predict/batched", { features });
    expect(status).toBe(400);
    expect(json).toHaveProperty("error");
  });
});

describe("graceful shutdown", () => {
  it("answers the requests in progress, then exits with code 0", async () => {
    // Batches are cut only when 10 s have passed or 128 requests wait: the 30 requests below can
    // only be answered by the drain of the graceful stop.
    const own = await startServer(["--small", "--max-queue-time", "10000"]);
    const inputs = examples(30, 77);
    const pending = inputs.map((x) =>
      fetch(`${own.url}/predict/batched`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ features: Array.from(x) }),
      }).then(async (r) => ({
        status: r.status,
        json: (await r.json()) as { probabilities: number[] },
      })),
    );
    // Wait until all of them are queued in the batcher, then send SIGTERM.
    for (;;) {
      const stats = (await (await fetch(`${own.url}/stats`)).json()) as { queued: number };
      if (stats.queued === inputs.length) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const exitCode = await own.stop();
    const answers = await Promise.all(pending);
    answers.forEach(({ status, json }, i) => {
      expect(status).toBe(200);
      expect(closeTo(json.probabilities, expected(inputs[i] as Float32Array))).toBe(true);
    });
    expect(exitCode).toBe(0);
    expect(own.output()).toContain("closed on SIGTERM");
  });
});
