/**
 * The worker module: a small pure-JavaScript text embedder (hashed bag of words, one dense layer,
 * normalized). Pure CPU work that would block the event loop if run inline. It runs in a worker
 * thread: it gets whole batches and returns one Float32Array per text, moved back without a copy.
 */
import { withTransfer } from "async-batcher/worker";

const DIMENSIONS = 256;

/** Deterministic weights, made once per thread when the module loads. */
const weights = new Float32Array(DIMENSIONS * DIMENSIONS);
for (let i = 0, x = 2463534242; i < weights.length; i++) {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  weights[i] = ((x >>> 0) / 2 ** 32 - 0.5) * 0.2;
}

function hash(token: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function embed(text: string): Float32Array {
  const counts = new Float32Array(DIMENSIONS);
  for (const token of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    const bucket = hash(token) % DIMENSIONS;
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  const vector = new Float32Array(DIMENSIONS);
  let norm = 0;
  for (let row = 0; row < DIMENSIONS; row++) {
    let sum = 0;
    for (let col = 0; col < DIMENSIONS; col++) {
      sum += (weights[row * DIMENSIONS + col] ?? 0) * (counts[col] ?? 0);
    }
    const value = Math.tanh(sum);
    vector[row] = value;
    norm += value * value;
  }
  return vector.map((value) => value / (Math.sqrt(norm) || 1));
}

/** One vector per text; an empty text gets an error of its own (its caller alone rejects). */
export default function embedBatch(texts: string[]) {
  const vectors = texts.map((text) =>
    text.trim() === ""
      ? Object.assign(new Error("nothing to embed"), { code: "E_EMPTY_TEXT" })
      : embed(text),
  );
  const buffers = vectors.flatMap((vector) =>
    vector instanceof Float32Array ? [vector.buffer] : [],
  );
  return withTransfer(vectors, buffers);
}
