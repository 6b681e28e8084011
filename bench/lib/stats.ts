/** Latency summary in ms, plus the distribution at fixed quantiles for the chart. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** [quantile, ms] pairs: 0, 0.01 … 0.99, 0.999, 1. */
  quantiles: Array<[number, number]>;
}

export const CHART_QUANTILES = [...Array.from({ length: 100 }, (_, i) => i / 100), 0.995, 0.999, 1];

export function summarize(values: Float64Array | number[]): LatencySummary | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number => round2(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: round2(sorted[sorted.length - 1] ?? 0),
    mean: round2(sum / sorted.length),
    quantiles: CHART_QUANTILES.map((q) => [q, q === 0 ? round2(sorted[0] ?? 0) : at(q)]),
  };
}

export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
