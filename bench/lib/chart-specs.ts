/**
 * Vega-Lite specifications for the report's charts, as plain data (rendering lives in
 * `charts.ts`, so the child processes never load vega). One look for every chart: white
 * background (readable in dark mode too), our library in a strong color and bold, peers in slate,
 * floors in light grey, bars sorted best first.
 */
import type { TopLevelSpec } from "vega-lite";
import type { SubjectKind } from "./subjects.js";

export const COLORS: Record<SubjectKind, string> = {
  ours: "#d9480f",
  peer: "#5c6f82",
  floor: "#b6c0ca",
};

const KIND_LABEL: Record<SubjectKind, string> = {
  ours: "async-batcher",
  peer: "peer",
  floor: "floor (not a batcher)",
};

const CONFIG = {
  background: "white",
  padding: 12,
  font: "Helvetica, Arial, sans-serif",
  title: { fontSize: 15, subtitleFontSize: 12, subtitleColor: "#555", anchor: "start", offset: 10 },
  axis: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: "normal", gridColor: "#e6e6e6" },
  legend: { labelFontSize: 12, titleFontSize: 12, orient: "bottom", labelLimit: 0 },
  view: { stroke: null },
} as const;

/** Bold axis labels for our library: the label test runs on the axis value (the subject label). */
function labelAxis(oursLabel: string) {
  return {
    title: null,
    labelLimit: 0, // no ellipsis: the width estimate without a canvas runs long
    labelFontWeight: {
      condition: { test: `datum.value === ${JSON.stringify(oursLabel)}`, value: "bold" },
      value: "normal",
    },
    labelColor: {
      condition: { test: `datum.value === ${JSON.stringify(oursLabel)}`, value: COLORS.ours },
      value: "#222",
    },
  };
}

export interface BarDatum {
  label: string;
  kind: SubjectKind;
  value: number;
  min: number;
  max: number;
  /** Printed at the end of the bar. */
  text: string;
}

export interface BarChartOptions {
  title: string;
  subtitle: string[];
  xTitle: string;
  data: BarDatum[];
  oursLabel: string;
  /** Higher is better: sort descending. */
  higherIsBetter?: boolean;
  /** A log scale, for values spanning orders of magnitude; bars start at `logMin`. */
  logMin?: number;
  /** Vertical reference lines (a target, a floor). */
  rules?: { value: number; text: string }[];
}

/** Horizontal bars, best first, with min–max whiskers and a value label. */
export function barChart(o: BarChartOptions): TopLevelSpec {
  const sorted = [...o.data].sort((a, b) =>
    o.higherIsBetter ? b.value - a.value : a.value - b.value,
  );
  const order = sorted.map((d) => d.label);
  const top = Math.max(...sorted.map((d) => d.max), ...(o.rules ?? []).map((r) => r.value));
  const y = { field: "label", type: "nominal", sort: order, axis: labelAxis(o.oursLabel) };
  const layers: unknown[] = [
    {
      mark: { type: "bar", height: { band: 0.7 } },
      encoding: {
        y,
        x: {
          field: "value",
          type: "quantitative",
          title: o.xTitle,
          scale:
            o.logMin === undefined
              ? { domain: [0, top * 1.25], nice: false }
              : { type: "log", domain: [o.logMin, top * 4], nice: false },
          ...(o.logMin === undefined ? {} : { axis: { tickCount: 6, format: "~s" } }),
        },
        // On a log scale a bar cannot start at 0: it starts at the axis' left end.
        ...(o.logMin === undefined ? {} : { x2: { datum: o.logMin } }),
        color: {
          field: "kind",
          type: "nominal",
          title: null,
          scale: {
            domain: ["ours", "peer", "floor"],
            range: [COLORS.ours, COLORS.peer, COLORS.floor],
          },
          legend: {
            labelExpr: `{ours: ${JSON.stringify(KIND_LABEL.ours)}, peer: ${JSON.stringify(
              KIND_LABEL.peer,
            )}, floor: ${JSON.stringify(KIND_LABEL.floor)}}[datum.label]`,
          },
        },
        tooltip: [{ field: "label" }, { field: "text" }],
      },
    },
    {
      mark: { type: "rule", color: "#222", strokeWidth: 1.2 },
      encoding: { y, x: { field: "min", type: "quantitative" }, x2: { field: "max" } },
    },
    {
      mark: { type: "text", align: "left", dx: 5, fontSize: 11, color: "#222" },
      encoding: { y, x: { field: "max", type: "quantitative" }, text: { field: "text" } },
    },
  ];
  for (const rule of o.rules ?? []) {
    layers.push({
      data: { values: [rule] },
      layer: [
        {
          mark: { type: "rule", strokeDash: [4, 3], color: "#888" },
          encoding: { x: { field: "value", type: "quantitative" } },
        },
        {
          mark: { type: "text", align: "left", baseline: "top", dx: 3, y: -14, color: "#666" },
          encoding: { x: { field: "value", type: "quantitative" }, text: { field: "text" } },
        },
      ],
    });
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: o.title, subtitle: o.subtitle },
    width: 560,
    height: { step: 30 },
    data: { values: sorted },
    layer: layers,
    config: CONFIG,
  } as unknown as TopLevelSpec;
}

export interface GroupedDatum {
  label: string;
  kind: SubjectKind;
  series: string;
  value: number;
  text: string;
}

/** Horizontal bars grouped by series (p50, p99, ...), subjects in the given order. */
export function groupedBarChart(o: {
  title: string;
  subtitle: string[];
  xTitle: string;
  data: GroupedDatum[];
  order: string[];
  series: string[];
  seriesColors: string[];
  oursLabel: string;
}): TopLevelSpec {
  const top = Math.max(...o.data.map((d) => d.value));
  const y = { field: "label", type: "nominal", sort: o.order, axis: labelAxis(o.oursLabel) };
  const yOffset = { field: "series", type: "nominal", sort: o.series };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: o.title, subtitle: o.subtitle },
    width: 560,
    height: { step: 15 }, // per bar of a group
    data: { values: o.data },
    layer: [
      {
        mark: { type: "bar" },
        encoding: {
          y,
          yOffset,
          x: {
            field: "value",
            type: "quantitative",
            title: o.xTitle,
            scale: { domain: [0, top * 1.2], nice: false },
          },
          color: {
            field: "series",
            type: "nominal",
            title: null,
            sort: o.series,
            scale: { domain: o.series, range: o.seriesColors },
          },
        },
      },
      {
        mark: { type: "text", align: "left", dx: 4, fontSize: 10, color: "#222" },
        encoding: {
          y,
          yOffset,
          x: { field: "value", type: "quantitative" },
          text: { field: "text" },
        },
      },
    ],
    config: CONFIG,
  } as unknown as TopLevelSpec;
}

export interface StripDatum {
  label: string;
  kind: SubjectKind;
  /** The bin's center. */
  value: number;
  /** Samples in the bin. */
  count: number;
}

/**
 * The samples of each subject as a row of dots, one per bin, sized by how many samples fell in it;
 * a marker at each row's p99, and vertical rules (the deadline at 0, the target).
 */
export function stripChart(o: {
  title: string;
  subtitle: string[];
  xTitle: string;
  data: StripDatum[];
  p99: { label: string; value: number }[];
  order: string[];
  oursLabel: string;
  /** Vertical rules; `align: "right"` puts the label left of the line. */
  rules: { value: number; text: string; color: string; align: "left" | "right" }[];
  domain: [number, number];
}): TopLevelSpec {
  const y = { field: "label", type: "nominal", sort: o.order, axis: labelAxis(o.oursLabel) };
  const x = {
    field: "value",
    type: "quantitative",
    title: o.xTitle,
    scale: { domain: o.domain, nice: false, clamp: true },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: o.title, subtitle: o.subtitle },
    width: 600,
    height: { step: 34 },
    layer: [
      ...o.rules.map((rule) => ({
        data: { values: [rule] },
        layer: [
          {
            mark: { type: "rule", strokeDash: [4, 3], color: rule.color },
            encoding: { x: { field: "value", type: "quantitative" } },
          },
          {
            mark: {
              type: "text",
              align: rule.align,
              baseline: "top",
              dx: rule.align === "left" ? 3 : -3,
              y: -16,
              fontSize: 11,
              color: rule.color,
            },
            encoding: { x: { field: "value", type: "quantitative" }, text: { field: "text" } },
          },
        ],
      })),
      {
        data: { values: o.data },
        mark: { type: "circle", opacity: 0.55 },
        encoding: {
          y,
          x,
          size: {
            field: "count",
            type: "quantitative",
            title: "items",
            scale: { range: [12, 260], domainMin: 1 },
            legend: { orient: "bottom", direction: "horizontal", values: [1, 10, 30, 60] },
          },
          color: {
            field: "kind",
            type: "nominal",
            legend: null,
            scale: {
              domain: ["ours", "peer", "floor"],
              range: [COLORS.ours, COLORS.peer, COLORS.floor],
            },
          },
        },
      },
      {
        data: { values: o.p99 },
        mark: { type: "point", shape: "diamond", filled: true, size: 70, color: "#111" },
        encoding: { y, x },
      },
    ],
    config: CONFIG,
  } as unknown as TopLevelSpec;
}

export interface LineDatum {
  /** The x value (a load level, such as connections). */
  x: number;
  value: number;
  /** The line's color: one per series (an endpoint). */
  series: string;
  /** The line's dash: one per variant (a percentile); `""` for solid lines only. */
  variant: string;
  text: string;
}

/**
 * Lines of a value against a load level (x on a log-2 scale, one tick per level measured), one
 * color per series and one dash per variant, with a labelled point at each measurement.
 */
export function lineChart(o: {
  title: string;
  subtitle: string[];
  xTitle: string;
  yTitle: string;
  data: LineDatum[];
  series: string[];
  seriesColors: string[];
  variants?: string[];
  logY?: boolean;
}): TopLevelSpec {
  const levels = [...new Set(o.data.map((d) => d.x))].sort((a, b) => a - b);
  const x = {
    field: "x",
    type: "quantitative",
    title: o.xTitle,
    scale: { type: "log", base: 2, nice: false, padding: 24 },
    axis: { values: levels, format: "d" },
  };
  const y = {
    field: "value",
    type: "quantitative",
    title: o.yTitle,
    scale: o.logY ? { type: "log" } : { zero: true },
  };
  const color = {
    field: "series",
    type: "nominal",
    title: null,
    sort: o.series,
    scale: { domain: o.series, range: o.seriesColors },
  };
  const variants = o.variants ?? [];
  const detail =
    variants.length > 1
      ? {
          strokeDash: {
            field: "variant",
            type: "nominal",
            title: null,
            sort: variants,
            scale: { domain: variants, range: variants.map((_, i) => (i === 1 ? [1, 0] : [5, 3])) },
          },
        }
      : {};
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: o.title, subtitle: o.subtitle },
    width: 560,
    height: 300,
    data: { values: o.data },
    layer: [
      { mark: { type: "line", strokeWidth: 2 }, encoding: { x, y, color, ...detail } },
      { mark: { type: "point", filled: true, size: 40 }, encoding: { x, y, color } },
      {
        mark: { type: "text", align: "left", dx: 6, dy: -6, fontSize: 10, color: "#222" },
        encoding: { x, y, text: { field: "text" } },
      },
    ],
    config: CONFIG,
  } as unknown as TopLevelSpec;
}
