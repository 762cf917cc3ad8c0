import { pendingScenario } from "../lib/pending.js";

export default pendingScenario({
  id: "feature-cost",
  number: 5,
  title: "Feature cost",
  needs:
    "per-item `signal` and `itemTimeout` options on `process()`, a `batchKey` option, and batcher events",
  method: [
    "Scenario 1 (small bursts) for our library three more times, each against plain scenario 1 in the same repetition:",
    "with one shared `AbortSignal` and an `itemTimeout` on every item (target: at most 1.5× plain),",
    "with a `batchKey` spreading items over 10 keys (target: at most 1.3× plain),",
    "and with a listener subscribed to every event.",
  ].join(" "),
});
