/** Number formatting and Markdown tables for the report. */
import type { Metric } from "./stats.js";

function digits(value: number): number {
  const abs = Math.abs(value);
  if (abs >= 100) return 0;
  if (abs >= 10) return 1;
  return 2;
}

/** A number with about three significant digits and thousands separators. */
export function num(value: number, fractionDigits = digits(value)): string {
  if (!Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: fractionDigits,
    maximumFractionDigits: fractionDigits,
  });
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "–";
}

/** A paired ratio for a target: `1.21× (1.12–1.30 over 5 repetitions)`. */
export function ratioSpread(m: Metric | null | undefined): string {
  if (m === null || m === undefined) return "–";
  if (m.n <= 1) return ratio(m.median);
  return `${ratio(m.median)} (${ratio(m.min)}–${ratio(m.max)} over ${m.n} repetitions)`;
}

export function perSecond(value: number): string {
  if (!Number.isFinite(value)) return "–";
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M/s`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)} k/s`;
  return `${value.toFixed(0)} /s`;
}

export function bytes(value: number): string {
  return Number.isFinite(value) ? `${num(value, 0)} B` : "–";
}

export function bytesLarge(value: number): string {
  if (value >= 2 ** 30) return `${(value / 2 ** 30).toFixed(1)} GiB`;
  if (value >= 2 ** 20) return `${(value / 2 ** 20).toFixed(0)} MiB`;
  return bytes(value);
}

/** `median (min–max)` of a metric, each formatted by `f`. */
export function spread(m: Metric | null | undefined, f: (value: number) => string): string {
  if (m === null || m === undefined) return "–";
  const lo = f(m.min);
  const hi = f(m.max);
  if (m.n <= 1 || lo === hi) return f(m.median);
  return `${f(m.median)} <sub>(${lo}–${hi})</sub>`;
}

export function medianOf(m: Metric | null | undefined): number {
  return m === null || m === undefined ? Number.NaN : m.median;
}

/** A Markdown table; the first `alignLeft` columns are left-aligned, the rest right-aligned. */
export function table(header: readonly string[], rows: readonly string[][], alignLeft = 1): string {
  const align = header.map((_, i) => (i < alignLeft ? ":---" : "---:"));
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(align), ...rows.map(line)].join("\n");
}

export function met(value: boolean | null): string {
  if (value === null) return "not judged";
  return value ? "**met**" : "**missed**";
}

/** `1 process`, `5 processes`. */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
