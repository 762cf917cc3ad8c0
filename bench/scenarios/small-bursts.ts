import { barChart } from "../lib/chart-specs.js";
import { count, num, ratio, ratioSpread, spread, table } from "../lib/format.js";
import {
  type BatchCounter,
  countedWork,
  now,
  settleBackground,
  slots,
  verifyBurst,
} from "../lib/measure.js";
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
import { median } from "../lib/stats.js";
import { ALL, DATALOADER, FLOOR } from "../lib/subjects.js";
import { metricOf, pairedRatio } from "../lib/summary.js";

interface Params {
  items: number;
  maxBatchSize: number;
  /** Warm-up: `warmupBursts` bursts, or fewer (5 at least) once `warmupMs` of wall time passed. */
  warmupBursts: number;
  warmupMs: number;
  /**
   * Timed bursts: at least `minBursts`, then more until `budgetMs` of timed work, `wallMs` of wall
   * time (slow libraries spend most of it between bursts) or `maxBursts`.
   */
  minBursts: number;
  maxBursts: number;
  budgetMs: number;
  wallMs: number;
}

interface Result {
  /** Median over this process's timed bursts. */
  nsPerItem: number;
  bursts: number;
  /** Items per batch function call (0 for the floors, which call none). */
  meanBatch: number;
  /** Items processed in all, warm-up included (for per-item figures from a profile). */
  processed: number;
  [key: string]: unknown;
}

export default defineScenario<Params, Result>({
  id: "small-bursts",
  number: 1,
  title: "Small bursts",
  plan: (quick) => ({
    reps: quick ? 1 : 5,
    subjects: ALL,
    params: quick
      ? {
          items: 1000,
          maxBatchSize: 100,
          warmupBursts: 3,
          warmupMs: 100,
          minBursts: 3,
          maxBursts: 10,
          budgetMs: 100,
          wallMs: 300,
        }
      : {
          items: 10_000,
          maxBatchSize: 100,
          warmupBursts: 25,
          warmupMs: 600,
          minBursts: 20,
          maxBursts: 150,
          budgetMs: 800,
          wallMs: 2500,
        },
    settings: { maxBatchSize: 100, maxQueueTime: 0 },
    timeoutMs: 120_000,
  }),

  async measure(factory, p) {
    const counter: BatchCounter = { batches: 0, items: 0 };
    const batcher = factory(countedWork(p.maxBatchSize, counter), {
      maxBatchSize: p.maxBatchSize,
      maxQueueTime: 0,
    });
    const out = slots<Promise<number>>(p.items);
    const timings: number[] = [];
    let base = 0;
    let timed = 0;
    let measuring = false;
    let phaseStart = now();
    for (let burst = 0; ; burst++) {
      const wall = now() - phaseStart;
      if (!measuring) {
        if (burst >= p.warmupBursts || (burst >= 5 && wall >= p.warmupMs)) {
          measuring = true;
          phaseStart = now();
        }
      } else {
        const n = timings.length;
        if (n >= p.maxBursts || (n >= p.minBursts && (timed >= p.budgetMs || wall >= p.wallMs))) {
          break;
        }
      }
      const t0 = now();
      for (let i = 0; i < p.items; i++) out[i] = batcher.process(base + i);
      const results = await Promise.all(out);
      const elapsed = now() - t0;
      verifyBurst(results, base, p.items);
      base += p.items;
      batcher.reset?.();
      if (measuring) {
        timings.push((elapsed * 1e6) / p.items);
        timed += elapsed;
      }
      await settleBackground();
    }
    return {
      nsPerItem: median(timings),
      bursts: timings.length,
      meanBatch: counter.batches === 0 ? 0 : counter.items / counter.batches,
      processed: base,
    };
  },

  summarize({ samples, subjects, configs, judge, params }) {
    const ns = (s: Result) => s.nsPerItem;
    const rows: Row[] = subjects.map((id) => ({
      subject: id,
      config: configs[id] ?? "",
      values: {
        nsPerItem: metricOf(samples, id, ns),
        xFloor: pairedRatio(samples, id, FLOOR, ns),
        xDataLoader: pairedRatio(samples, id, DATALOADER, ns),
        meanBatch: metricOf(samples, id, (s) => s.meanBatch),
      },
    }));
    const ours = rows.find((r) => r.subject === "async-batcher");
    const vsDl = ours?.values.xDataLoader?.median ?? Number.NaN;
    const vsFloor = ours?.values.xFloor?.median ?? Number.NaN;
    const targets: Target[] = [
      {
        text: "faster than DataLoader with `cache: false` (ratio below 1.0)",
        measured: `${ratioSpread(ours?.values.xDataLoader)} DataLoader (cache: false)`,
        met: judge && Number.isFinite(vsDl) ? vsDl < 1 : null,
      },
      {
        text: "at most 1.3× the `new Promise` floor",
        measured: `${ratioSpread(ours?.values.xFloor)} the floor`,
        met: judge && Number.isFinite(vsFloor) ? vsFloor <= 1.3 : null,
      },
    ];
    return {
      method: [
        `Each process makes one batcher and submits bursts of ${num(params.items, 0)} items synchronously (\`maxBatchSize\` ${params.maxBatchSize}, a trivial async batch function returning \`key * 2\`), awaits them all with \`Promise.all\` and checks every result.`,
        `A burst is timed from the first \`process()\` call to the last result; after up to ${params.warmupBursts} warm-up bursts (${params.warmupMs} ms at most), ${params.minBursts}–${params.maxBursts} bursts are timed (until ${params.budgetMs} ms of timed work, or ${params.wallMs} ms of wall time for the slow ones) and the process reports their median ns per item.`,
        "Between bursts the process lets pending timers fire (2 ms, then `setImmediate`), outside the timed region: a library's leftover timers are not billed to the next burst.",
        "Ratios are paired: each repetition's value over the reference's value in the same repetition; the table shows the median ratio.",
      ].join(" "),
      rows,
      targets,
    };
  },

  render(result, context) {
    const rows = [...result.rows].sort(
      (a, b) => (a.values.nsPerItem?.median ?? 0) - (b.values.nsPerItem?.median ?? 0),
    );
    const body = rows.map((row) => [
      rowLabel(context, row.subject),
      spread(row.values.nsPerItem, (v) => num(v, 0)),
      ratio(row.values.xFloor?.median ?? Number.NaN),
      ratio(row.values.xDataLoader?.median ?? Number.NaN),
      row.values.meanBatch?.median ? num(row.values.meanBatch.median, 0) : "–",
    ]);
    const chart = barChart({
      title: "Small bursts: time per item (lower is better)",
      subtitle: [
        `${num(Number(result.params.items), 0)} items submitted at once, maxBatchSize ${String(result.params.maxBatchSize)}, trivial async batch function.`,
        `Bar: median of ${count(result.reps, "process", "processes")}; whisker: min–max. Label: ns per item · ratio to the new Promise floor.`,
      ],
      xTitle: "ns per item (median, log scale)",
      logMin: 10,
      oursLabel: oursLabel(context),
      data: rows.map((row) => {
        const m = row.values.nsPerItem;
        return {
          label: labelOf(context, row.subject),
          kind: kindOf(context, row.subject),
          value: m?.median ?? 0,
          min: m?.min ?? 0,
          max: m?.max ?? 0,
          text: `${num(m?.median ?? Number.NaN, 0)} ns · ${ratio(row.values.xFloor?.median ?? Number.NaN)}`,
        };
      }),
    });
    return {
      markdown: section(
        result.method,
        table(
          [
            "library",
            "ns/item (min–max)",
            "× floor (new Promise)",
            "× DataLoader (cache: false)",
            "mean batch",
          ],
          body,
        ),
        chartImage("small-bursts", "ns per item by library"),
        targetsList(result),
        notesList(result),
        configDetails(result, context),
      ),
      charts: [{ name: "small-bursts", spec: chart, alt: "ns per item by library" }],
    };
  },

  headline(result) {
    const row = (id: string) => result.rows.find((r) => r.subject === id)?.values;
    const ours = row("async-batcher");
    const ns = (v: ReturnType<typeof row>) => `${num(v?.nsPerItem?.median ?? Number.NaN, 0)} ns`;
    return [
      {
        measure: `small bursts (${num(Number(result.params.items), 0)} items, maxBatchSize ${String(result.params.maxBatchSize)}): time per item`,
        ours: `${ns(ours)} (${ratio(ours?.xDataLoader?.median ?? Number.NaN)} DataLoader, ${ratio(ours?.xFloor?.median ?? Number.NaN)} floor)`,
        dataloader: ns(row(DATALOADER)),
        floor: ns(row(FLOOR)),
        target: `< 1.0× DataLoader: ${targetStatus(result, 0)}; ≤ 1.3× floor: ${targetStatus(result, 1)}`,
      },
    ];
  },
});
