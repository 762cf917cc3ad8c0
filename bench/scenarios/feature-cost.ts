import { barChart } from "../lib/chart-specs.js";
import { num, ratio, ratioSpread, spread, table } from "../lib/format.js";
import {
  chartImage,
  configDetails,
  kindOf,
  labelOf,
  notesList,
  oursLabel,
  rowLabel,
  section,
  targetStatus,
  targetsList,
} from "../lib/render.js";
import { defineScenario, type Row, type Target } from "../lib/scenario.js";
import { OURS, type SubjectId } from "../lib/subjects.js";
import { metricOf, pairedRatio } from "../lib/summary.js";
import smallBursts from "./small-bursts.js";

// Scenario 1's measurement, for our library with one feature switched on at a time. Every variant
// is paired with plain `async-batcher` in the same repetition.

interface Result {
  nsPerItem: number;
  bursts: number;
  meanBatch: number;
  processed: number;
  [key: string]: unknown;
}

const VARIANT_IDS: readonly SubjectId[] = [
  "ours-signal",
  "ours-keys",
  "ours-priority",
  "ours-weigh",
  "ours-keyof",
  "ours-events",
];

/** The targets, by variant: at most this many times plain. */
const TARGETS: Partial<Record<SubjectId, { at: number; text: string }>> = {
  "ours-signal": {
    at: 1.5,
    text: "one shared `AbortSignal` and an `itemTimeout` on every item: at most 1.5× plain",
  },
  "ours-keys": { at: 1.3, text: "a `batchKey` spreading items over 10 keys: at most 1.3× plain" },
  "ours-events": {
    at: 1.1,
    text: "a listener on every event: at most 1.1× plain (events are per batch, not per item)",
  },
};

export default defineScenario<unknown, Result>({
  id: "feature-cost",
  number: 5,
  title: "Feature cost",
  plan: (quick) => {
    const base = smallBursts.plan(quick);
    return { ...base, subjects: [OURS, ...VARIANT_IDS] };
  },

  measure(factory, params, subject) {
    return smallBursts.measure(factory, params, subject) as Promise<Result>;
  },

  summarize({ samples, subjects, configs, judge }) {
    const ns = (s: Result) => s.nsPerItem;
    const rows: Row[] = subjects.map((id) => ({
      subject: id,
      config: configs[id] ?? "",
      values: {
        nsPerItem: metricOf(samples, id, ns),
        xPlain: pairedRatio(samples, id, OURS, ns),
        meanBatch: metricOf(samples, id, (s) => s.meanBatch),
      },
    }));
    const targets: Target[] = [];
    for (const [id, target] of Object.entries(TARGETS) as [
      SubjectId,
      { at: number; text: string },
    ][]) {
      const row = rows.find((r) => r.subject === id);
      const value = row?.values.xPlain?.median ?? Number.NaN;
      targets.push({
        text: target.text,
        measured: `${ratioSpread(row?.values.xPlain)} plain`,
        met: judge && Number.isFinite(value) ? value <= target.at : null,
      });
    }
    return {
      method: [
        "Scenario 1 (small bursts: 10,000 items submitted at once, `maxBatchSize` 100, `maxQueueTime` 0, a trivial async batch function) for our library, plain and then with one flow-control feature on every item: a shared long-lived `AbortSignal` plus `itemTimeout`; a `batchKey` over 10 keys; three interleaved priorities; `weigh` with a `maxBatchWeight` never reached; `keyOf`; and a listener on each of the six batcher events.",
        "Each variant runs in its own process, interleaved with plain in every repetition; the ratio is paired (the variant over plain in the same repetition, median over repetitions).",
      ].join(" "),
      rows,
      targets,
    };
  },

  render(result, context) {
    const body = result.rows.map((row) => [
      rowLabel(context, row.subject),
      spread(row.values.nsPerItem, (v) => num(v, 0)),
      ratio(row.values.xPlain?.median ?? Number.NaN),
      row.values.meanBatch?.median ? num(row.values.meanBatch.median, 0) : "–",
    ]);
    const chart = barChart({
      title: "Feature cost: time per item (lower is better)",
      subtitle: ["Scenario 1 with one feature on every item; label: ns per item · ratio to plain."],
      xTitle: "ns per item (median, log scale)",
      logMin: 10,
      oursLabel: oursLabel(context),
      data: result.rows.map((row) => {
        const m = row.values.nsPerItem;
        return {
          label: labelOf(context, row.subject),
          kind: kindOf(context, row.subject),
          value: m?.median ?? 0,
          min: m?.min ?? 0,
          max: m?.max ?? 0,
          text: `${num(m?.median ?? Number.NaN, 0)} ns · ${ratio(row.values.xPlain?.median ?? Number.NaN)}`,
        };
      }),
    });
    return {
      markdown: section(
        result.method,
        table(["variant", "ns/item (min–max)", "× plain", "mean batch"], body),
        chartImage("feature-cost", "ns per item by feature"),
        targetsList(result),
        notesList(result),
        configDetails(result, context),
      ),
      charts: [{ name: "feature-cost", spec: chart, alt: "ns per item by feature" }],
    };
  },

  headline(result) {
    const x = (id: SubjectId) =>
      ratio(result.rows.find((r) => r.subject === id)?.values.xPlain?.median ?? Number.NaN);
    return [
      {
        measure: "feature cost (scenario 1 with a feature on every item), × plain",
        ours: `signal + timeout ${x("ours-signal")}, 10 keys ${x("ours-keys")}, priorities ${x("ours-priority")}, weigh ${x("ours-weigh")}, keyOf ${x("ours-keyof")}, listeners on every event ${x("ours-events")}`,
        dataloader: "–",
        floor: "–",
        target: `signal ≤ 1.5×: ${targetStatus(result, 0)}; keys ≤ 1.3×: ${targetStatus(result, 1)}; events ≤ 1.1×: ${targetStatus(result, 2)}`,
      },
    ];
  },
});
