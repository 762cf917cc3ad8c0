import { type GroupedDatum, groupedBarChart } from "../lib/chart-specs.js";
import { count, num, perSecond, ratio, ratioSpread, spread, table } from "../lib/format.js";
import { type BatchCounter, countedWork, expected, fail, now, sleep } from "../lib/measure.js";
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
import { quantileSorted, sortedCopy } from "../lib/stats.js";
import { BATCHERS, DATALOADER } from "../lib/subjects.js";
import { metricOf, pairedRatio } from "../lib/summary.js";

interface Params {
  clients: number;
  maxBatchSize: number;
  /** How long the batch function sleeps (ms). */
  sleepMs: number;
  warmupMs: number;
  measureMs: number;
}

interface Result {
  itemsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanBatch: number;
  completed: number;
  [key: string]: unknown;
}

export default defineScenario<Params, Result>({
  id: "closed-loop",
  number: 3,
  title: "Closed loop",
  plan: (quick) => ({
    reps: quick ? 1 : 3,
    subjects: BATCHERS,
    params: quick
      ? { clients: 100, maxBatchSize: 32, sleepMs: 1, warmupMs: 100, measureMs: 200 }
      : { clients: 100, maxBatchSize: 32, sleepMs: 1, warmupMs: 300, measureMs: 2000 },
    settings: { maxBatchSize: 32, maxQueueTime: 0 },
    timeoutMs: 60_000,
  }),

  async measure(factory, p) {
    let measuring = false;
    let stopping = false;
    const counter: BatchCounter = { batches: 0, items: 0 };
    const inWindow: BatchCounter = { batches: 0, items: 0 };
    const work = countedWork(p.maxBatchSize, counter, (keys) => {
      if (measuring) {
        inWindow.batches++;
        inWindow.items += keys.length;
      }
      return sleep(p.sleepMs);
    });
    const batcher = factory(work, { maxBatchSize: p.maxBatchSize, maxQueueTime: 0 });
    const latencies: number[] = [];
    let windowStart = 0;
    let windowEnd = Number.POSITIVE_INFINITY;
    let nextKey = 0;

    const client = async (): Promise<void> => {
      while (!stopping) {
        const key = nextKey++;
        const t0 = now();
        const result = await batcher.process(key);
        const t1 = now();
        if (result !== expected(key)) {
          fail(`key ${key} got ${String(result)}, expected ${expected(key)}`);
        }
        // Counted: items both submitted and answered inside the window.
        if (t0 >= windowStart && t1 <= windowEnd && measuring) latencies.push(t1 - t0);
      }
    };

    const clients: Promise<void>[] = [];
    for (let i = 0; i < p.clients; i++) clients.push(client());
    await sleep(p.warmupMs);
    measuring = true;
    windowStart = now();
    await sleep(p.measureMs);
    windowEnd = now();
    // Items answered after windowEnd are not counted; `measuring` stays on until every client has
    // seen the window close, so the check above stays exact.
    stopping = true;
    await Promise.all(clients);
    measuring = false;

    const seconds = (windowEnd - windowStart) / 1000;
    const sorted = sortedCopy(latencies);
    if (sorted.length === 0) fail("no item completed inside the measurement window");
    return {
      itemsPerSec: sorted.length / seconds,
      p50Ms: quantileSorted(sorted, 0.5),
      p90Ms: quantileSorted(sorted, 0.9),
      p99Ms: quantileSorted(sorted, 0.99),
      p999Ms: quantileSorted(sorted, 0.999),
      maxMs: sorted[sorted.length - 1] as number,
      meanBatch: inWindow.batches === 0 ? 0 : inWindow.items / inWindow.batches,
      completed: sorted.length,
    };
  },

  summarize({ samples, subjects, configs, judge, params }) {
    const rate = (s: Result) => s.itemsPerSec;
    const p99 = (s: Result) => s.p99Ms;
    const rows: Row[] = subjects.map((id) => ({
      subject: id,
      config: configs[id] ?? "",
      values: {
        itemsPerSec: metricOf(samples, id, rate),
        p50Ms: metricOf(samples, id, (s) => s.p50Ms),
        p90Ms: metricOf(samples, id, (s) => s.p90Ms),
        p99Ms: metricOf(samples, id, p99),
        p999Ms: metricOf(samples, id, (s) => s.p999Ms),
        maxMs: metricOf(samples, id, (s) => s.maxMs),
        meanBatch: metricOf(samples, id, (s) => s.meanBatch),
        rateXDataLoader: pairedRatio(samples, id, DATALOADER, rate),
        p99XDataLoader: pairedRatio(samples, id, DATALOADER, p99),
      },
    }));
    const ours = rows.find((r) => r.subject === "async-batcher");
    const rateRatio = ours?.values.rateXDataLoader?.median ?? Number.NaN;
    const p99Ratio = ours?.values.p99XDataLoader?.median ?? Number.NaN;
    const targets: Target[] = [
      {
        text: "throughput at least DataLoader's (ratio ≥ 1.0)",
        measured: `${ratioSpread(ours?.values.rateXDataLoader)} DataLoader (cache: false)`,
        met: judge && Number.isFinite(rateRatio) ? rateRatio >= 1 : null,
      },
      {
        text: "p99 latency no worse than DataLoader's (ratio ≤ 1.0)",
        measured: `${ratioSpread(ours?.values.p99XDataLoader)} DataLoader's p99`,
        met: judge && Number.isFinite(p99Ratio) ? p99Ratio <= 1 : null,
      },
    ];
    return {
      method: [
        `${params.clients} clients each submit one item, await its result (checked), and submit the next at once; the batch function sleeps ${params.sleepMs} ms (\`setTimeout\`) and \`maxBatchSize\` is ${params.maxBatchSize}, so a round of ${params.clients} items makes ${Math.floor(params.clients / params.maxBatchSize)} full batches and a partial one.`,
        `After ${params.warmupMs} ms of warm-up, items submitted and answered within a ${params.measureMs} ms window are counted: items/s, and latency from \`process()\` to the result (\`performance.now()\`).`,
        "Mean batch size is over the batch function calls in the window. The floors do not apply (they do not batch); ratios are against DataLoader (cache: false) in the same repetition.",
      ].join(" "),
      rows,
      targets,
      notes: [
        "DataLoader (cache) is never cleared in this scenario: its cache grows by one entry per item, as a long-lived loader's would.",
        "Peers without an end-of-tick window (batshit, Bottleneck, promise-batcher, pacer) send the partial batch on their shortest timer (1 ms or more).",
      ],
    };
  },

  render(result, context) {
    const rows = [...result.rows].sort(
      (a, b) => (b.values.itemsPerSec?.median ?? 0) - (a.values.itemsPerSec?.median ?? 0),
    );
    const body = rows.map((row) => [
      rowLabel(context, row.subject),
      spread(row.values.itemsPerSec, perSecond),
      ratio(row.values.rateXDataLoader?.median ?? Number.NaN),
      spread(row.values.p50Ms, (v) => num(v, 2)),
      spread(row.values.p99Ms, (v) => num(v, 2)),
      ratio(row.values.p99XDataLoader?.median ?? Number.NaN),
      num(row.values.maxMs?.median ?? Number.NaN, 2),
      num(row.values.meanBatch?.median ?? Number.NaN, 1),
    ]);
    const byP99 = [...result.rows].sort(
      (a, b) => (a.values.p99Ms?.median ?? 0) - (b.values.p99Ms?.median ?? 0),
    );
    const data: GroupedDatum[] = [];
    for (const row of byP99) {
      for (const [series, key] of [
        ["p50", "p50Ms"],
        ["p99", "p99Ms"],
      ] as const) {
        const value = row.values[key]?.median ?? Number.NaN;
        data.push({
          label: labelOf(context, row.subject),
          kind: kindOf(context, row.subject),
          series,
          value,
          text: `${num(value, 2)} ms`,
        });
      }
    }
    const chart = groupedBarChart({
      title: "Closed loop: latency per item (lower is better)",
      subtitle: [
        `${String(result.params.clients)} clients, batch function sleeps ${String(result.params.sleepMs)} ms, maxBatchSize ${String(result.params.maxBatchSize)}.`,
        `From process() to the result; median over ${count(result.reps, "process", "processes")} of each process's p50 and p99.`,
      ],
      xTitle: "latency (ms)",
      data,
      order: byP99.map((r) => labelOf(context, r.subject)),
      series: ["p50", "p99"],
      seriesColors: ["#9ecae1", "#08519c"],
      oursLabel: oursLabel(context),
    });
    return {
      markdown: section(
        result.method,
        table(
          [
            "library",
            "items/s (min–max)",
            "items/s × DataLoader",
            "p50 ms",
            "p99 ms",
            "p99 × DataLoader",
            "max ms",
            "mean batch",
          ],
          body,
        ),
        chartImage("closed-loop-latency", "p50 and p99 latency by library"),
        targetsList(result),
        notesList(result),
        configDetails(result, context),
      ),
      charts: [{ name: "closed-loop-latency", spec: chart, alt: "p50 and p99 latency by library" }],
    };
  },

  headline(result) {
    const row = (id: string) => result.rows.find((r) => r.subject === id)?.values;
    const ours = row("async-batcher");
    const dl = row(DATALOADER);
    const clients = String(result.params.clients);
    return [
      {
        measure: `closed loop (${clients} clients, 1 ms batch function): throughput`,
        ours: `${perSecond(ours?.itemsPerSec?.median ?? Number.NaN)} (${ratio(ours?.rateXDataLoader?.median ?? Number.NaN)} DataLoader)`,
        dataloader: perSecond(dl?.itemsPerSec?.median ?? Number.NaN),
        floor: "–",
        target: `≥ DataLoader: ${targetStatus(result, 0)}`,
      },
      {
        measure: `closed loop (${clients} clients): p99 latency`,
        ours: `${num(ours?.p99Ms?.median ?? Number.NaN, 2)} ms (${ratio(ours?.p99XDataLoader?.median ?? Number.NaN)} DataLoader)`,
        dataloader: `${num(dl?.p99Ms?.median ?? Number.NaN, 2)} ms`,
        floor: "–",
        target: `≤ DataLoader: ${targetStatus(result, 1)}`,
      },
    ];
  },
});
