import { barChart } from "../lib/chart-specs.js";
import {
  bytes,
  bytesLarge,
  count,
  num,
  perSecond,
  ratio,
  ratioSpread,
  spread,
  table,
} from "../lib/format.js";
import {
  type BatchCounter,
  collect,
  countedWork,
  heapUsed,
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
import { ALL, DATALOADER, FLOOR, type Instance } from "../lib/subjects.js";
import { metricOf, pairedRatio } from "../lib/summary.js";

interface Params {
  items: number;
  maxBatchSize: number;
  warmupItems: number;
  warmupBursts: number;
}

interface Result {
  itemsPerSec: number;
  /** Live heap growth at the peak (after a full GC), over the items in flight. */
  bytesPerItem: number;
  peakBytes: number;
  meanBatch: number;
  [key: string]: unknown;
}

/** Submits `count` keys from `base` into `out`, awaits and verifies them; returns elapsed ms. */
async function burst(
  batcher: Instance,
  out: Promise<number>[],
  base: number,
  count: number,
): Promise<number> {
  const t0 = now();
  for (let i = 0; i < count; i++) out[i] = batcher.process(base + i);
  const results = await Promise.all(out);
  const elapsed = now() - t0;
  verifyBurst(results, base, count);
  return elapsed;
}

export default defineScenario<Params, Result>({
  id: "large-burst",
  number: 2,
  title: "Large burst",
  plan: (quick) => ({
    reps: quick ? 1 : 3,
    subjects: ALL,
    params: quick
      ? { items: 20_000, maxBatchSize: 100, warmupItems: 1000, warmupBursts: 2 }
      : { items: 1_000_000, maxBatchSize: 100, warmupItems: 10_000, warmupBursts: 3 },
    settings: { maxBatchSize: 100, maxQueueTime: 0 },
    timeoutMs: 240_000,
  }),

  async measure(factory, p) {
    const counter: BatchCounter = { batches: 0, items: 0 };
    let onBatch: ((keys: readonly number[]) => void) | undefined;
    const work = countedWork(p.maxBatchSize, counter, (keys) => onBatch?.(keys));
    const batcher = factory(work, { maxBatchSize: p.maxBatchSize, maxQueueTime: 0 });
    let base = 0;

    const warm = slots<Promise<number>>(p.warmupItems);
    for (let i = 0; i < p.warmupBursts; i++) {
      await burst(batcher, warm, base, p.warmupItems);
      base += p.warmupItems;
      batcher.reset?.();
      await settleBackground();
    }

    // Throughput: one timed burst, from a collected heap.
    const out = slots<Promise<number>>(p.items);
    collect();
    const elapsed = await burst(batcher, out, base, p.items);
    base += p.items;
    batcher.reset?.();
    out.fill(0 as unknown as Promise<number>);
    await settleBackground();

    // Memory: a second burst, with no clock running. The heap is read after a full collection
    // (live bytes only) at the peak: once every item is submitted, and again when the batch
    // function receives the last item, before any result is returned.
    collect();
    const baseline = heapUsed();
    let peak = 0;
    const sample = (): void => {
      collect();
      peak = Math.max(peak, heapUsed() - baseline);
    };
    let seen = 0;
    onBatch = (keys) => {
      seen += keys.length;
      if (seen === p.items) sample();
    };
    for (let i = 0; i < p.items; i++) out[i] = batcher.process(base + i);
    sample();
    onBatch = undefined;
    verifyBurst(await Promise.all(out), base, p.items);

    return {
      itemsPerSec: p.items / (elapsed / 1000),
      bytesPerItem: peak / p.items,
      peakBytes: peak,
      meanBatch: counter.batches === 0 ? 0 : counter.items / counter.batches,
    };
  },

  summarize({ samples, subjects, configs, judge, params }) {
    const heap = (s: Result) => s.bytesPerItem;
    const rate = (s: Result) => s.itemsPerSec;
    const rows: Row[] = subjects.map((id) => ({
      subject: id,
      config: configs[id] ?? "",
      values: {
        itemsPerSec: metricOf(samples, id, rate),
        bytesPerItem: metricOf(samples, id, heap),
        peakBytes: metricOf(samples, id, (s) => s.peakBytes),
        heapXFloor: pairedRatio(samples, id, FLOOR, heap),
        heapXDataLoader: pairedRatio(samples, id, DATALOADER, heap),
        rateXFloor: pairedRatio(samples, id, FLOOR, rate),
        rateXDataLoader: pairedRatio(samples, id, DATALOADER, rate),
      },
    }));
    const ours = rows.find((r) => r.subject === "async-batcher");
    const heapRatio = ours?.values.heapXFloor?.median ?? Number.NaN;
    const targets: Target[] = [
      {
        text: "peak heap per in-flight item at most 1.15× the `new Promise` floor's",
        measured: `${ratioSpread(ours?.values.heapXFloor)} the floor (${bytes(ours?.values.bytesPerItem?.median ?? Number.NaN)} per item)`,
        met: judge && Number.isFinite(heapRatio) ? heapRatio <= 1.15 : null,
      },
    ];
    return {
      method: [
        `Each process warms up with ${params.warmupBursts} bursts of ${num(params.warmupItems, 0)} items, then submits ${num(params.items, 0)} items synchronously (\`maxBatchSize\` ${params.maxBatchSize}) twice.`,
        "The first burst is timed from the first `process()` to the last result (items/s).",
        "The second is not timed: with `--expose-gc`, the heap is collected and read before it (baseline), then collected and read at the peak — once all items are submitted, and again inside the batch function when it receives the last item, before any result exists — and the larger growth is divided by the items in flight.",
        "The array holding the callers' promises is allocated before the baseline, so the figure is the promise plus whatever the library keeps per item. Every result of both bursts is checked.",
      ].join(" "),
      rows,
      targets,
      notes: [
        "The async-function floor's promises are already resolved when returned: nothing of it is in flight, so its heap figure is a lower bound, not a fair one.",
      ],
    };
  },

  render(result, context) {
    const rows = [...result.rows].sort(
      (a, b) => (a.values.bytesPerItem?.median ?? 0) - (b.values.bytesPerItem?.median ?? 0),
    );
    const body = rows.map((row) => [
      rowLabel(context, row.subject),
      spread(row.values.bytesPerItem, bytes),
      ratio(row.values.heapXFloor?.median ?? Number.NaN),
      bytesLarge(row.values.peakBytes?.median ?? Number.NaN),
      spread(row.values.itemsPerSec, perSecond),
      ratio(row.values.rateXFloor?.median ?? Number.NaN),
      ratio(row.values.rateXDataLoader?.median ?? Number.NaN),
    ]);
    const items = num(Number(result.params.items), 0);
    const subtitle = (what: string) => [
      `${items} items submitted at once, maxBatchSize ${String(result.params.maxBatchSize)}.`,
      `Bar: median of ${count(result.reps, "process", "processes")}; whisker: min–max. ${what}`,
    ];
    const heapChart = barChart({
      title: "Large burst: live heap per in-flight item (lower is better)",
      subtitle: subtitle("Label: bytes per item · ratio to the new Promise floor."),
      xTitle: "bytes per in-flight item (after full GC)",
      oursLabel: oursLabel(context),
      data: result.rows.map((row) => {
        const m = row.values.bytesPerItem;
        return {
          label: labelOf(context, row.subject),
          kind: kindOf(context, row.subject),
          value: m?.median ?? 0,
          min: m?.min ?? 0,
          max: m?.max ?? 0,
          text: `${num(m?.median ?? Number.NaN, 0)} B · ${ratio(row.values.heapXFloor?.median ?? Number.NaN)}`,
        };
      }),
    });
    const rateChart = barChart({
      title: "Large burst: throughput (higher is better)",
      subtitle: subtitle("Label: items/s · ratio to DataLoader (cache: false)."),
      xTitle: "items per second",
      oursLabel: oursLabel(context),
      higherIsBetter: true,
      data: result.rows.map((row) => {
        const m = row.values.itemsPerSec;
        return {
          label: labelOf(context, row.subject),
          kind: kindOf(context, row.subject),
          value: m?.median ?? 0,
          min: m?.min ?? 0,
          max: m?.max ?? 0,
          text: `${perSecond(m?.median ?? Number.NaN)} · ${ratio(row.values.rateXDataLoader?.median ?? Number.NaN)}`,
        };
      }),
    });
    return {
      markdown: section(
        result.method,
        table(
          [
            "library",
            "heap B/item (min–max)",
            "heap × floor",
            "peak heap",
            "items/s (min–max)",
            "items/s × floor",
            "items/s × DataLoader",
          ],
          body,
        ),
        `${chartImage("large-burst-heap", "heap bytes per in-flight item by library")}\n\n${chartImage("large-burst-throughput", "items per second by library")}`,
        targetsList(result),
        notesList(result),
        configDetails(result, context),
      ),
      charts: [
        { name: "large-burst-heap", spec: heapChart, alt: "heap bytes per in-flight item" },
        { name: "large-burst-throughput", spec: rateChart, alt: "items per second" },
      ],
    };
  },

  headline(result) {
    const row = (id: string) => result.rows.find((r) => r.subject === id)?.values;
    const ours = row("async-batcher");
    const heap = (v: ReturnType<typeof row>) => bytes(v?.bytesPerItem?.median ?? Number.NaN);
    const rate = (v: ReturnType<typeof row>) => perSecond(v?.itemsPerSec?.median ?? Number.NaN);
    const items = num(Number(result.params.items), 0);
    return [
      {
        measure: `large burst (${items} items): heap per in-flight item`,
        ours: `${heap(ours)} (${ratio(ours?.heapXFloor?.median ?? Number.NaN)} floor)`,
        dataloader: heap(row(DATALOADER)),
        floor: heap(row(FLOOR)),
        target: `≤ 1.15× floor: ${targetStatus(result, 0)}`,
      },
      {
        measure: `large burst (${items} items): throughput`,
        ours: `${rate(ours)} (${ratio(ours?.rateXDataLoader?.median ?? Number.NaN)} DataLoader)`,
        dataloader: rate(row(DATALOADER)),
        floor: rate(row(FLOOR)),
        target: "–",
      },
    ];
  },
});
