/**
 * CPU-bound batches in a worker-thread pool: semantic search over a few documents with a small
 * pure-JS embedder (embed.worker.ts). Run: npx tsx examples/worker-pool/main.ts
 */
import { createWorkerBatcher } from "async-batcher/worker";

// Typed from the module: items are strings, results Float32Arrays.
const embedder = createWorkerBatcher<typeof import("./embed.worker.js")>(
  new URL("./embed.worker.ts", import.meta.url),
  { maxThreads: 2, maxBatchSize: 64, maxQueueTime: 5 },
);

const documents = [
  "Batching database writes into one multi-row insert",
  "Worker threads keep the event loop free during CPU-bound work",
  "A recipe for sourdough bread with a long cold proof",
  "Micro-batching model inference requests on a GPU server",
];
const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * (b[i] ?? 0), 0);

// Each call submits one text; calls made together are embedded together, in the pool.
const [query, ...vectors] = await Promise.all(
  ["batch model inference without blocking the event loop", ...documents].map((text) =>
    embedder.process(text),
  ),
);
const ranked = documents
  .map((text, i) => ({ text, score: dot(query as Float32Array, vectors[i] as Float32Array) }))
  .sort((a, b) => b.score - a.score);
for (const { text, score } of ranked) console.log(score.toFixed(3), text);

// A per-item error crosses the thread boundary with its name, message and code.
await embedder
  .process("  ")
  .catch((error) => console.log(`empty text: ${error.name} ${error.code}`));

// The event loop stays free: a 1 ms timer keeps ticking while 5,000 texts are embedded.
let ticks = 0;
const timer = setInterval(() => ticks++, 1);
const started = performance.now();
await Promise.all(Array.from({ length: 5000 }, (_, i) => embedder.process(`document number ${i}`)));
clearInterval(timer);
console.log(
  `5000 texts in ${(performance.now() - started).toFixed(0)} ms; the 1 ms timer ticked ${ticks} times meanwhile`,
);

await embedder.stop(); // drains, then closes the pool: no thread is left
