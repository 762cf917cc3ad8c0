import { pendingScenario } from "../lib/pending.js";

export default pendingScenario({
  id: "process-many",
  number: 6,
  title: "Bulk entry point",
  needs: "a bulk entry point, `processMany(items)`, resolving all results with one promise",
  method:
    "Scenario 1's bursts submitted with one `processMany(items)` call instead of one `process()` per item, in ns per item against the `new Promise` floor (target: at most 0.6× the floor).",
});
