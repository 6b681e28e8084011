#!/usr/bin/env -S npx tsx
// Re-renders the table and one SVG from the JSON of one or more runs (e.g. for docs/).
//
//   npx tsx bench/render.ts bench/results/A.json bench/results/B.json --svg docs/benchmarks.svg
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Environment, pickRows } from "./lib/bench";
import { renderSvg, renderTable } from "./lib/report";
import type { Row } from "./lib/scenarios";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { svg: { type: "string" }, title: { type: "string" }, markdown: { type: "boolean" }, pick: { type: "string" } },
});
if (positionals.length === 0) {
  console.error("usage: npx tsx bench/render.ts RESULT.json… [--svg OUT.svg] [--title TEXT] [--markdown] [--pick median|best]");
  process.exit(2);
}
const runs = positionals.map((file) => JSON.parse(readFileSync(file, "utf8")) as { environment: Environment; rows: Row[]; allRows?: Row[] });
// With --pick, runs that kept every repetition are picked again (median or best).
const pick = values.pick as "median" | "best" | undefined;
const rows = runs.flatMap((run) => {
  if (!pick || !run.allRows) return run.rows;
  const n = Math.max(...run.allRows.map((r) => r.rep));
  return pickRows(run.allRows, n, pick);
});
const env = runs[0]?.environment;
console.log(values.markdown ? markdownTable(rows) : renderTable(rows));
if (values.svg && env) {
  const subtitle = `${env.cpus} cores, ${env.memoryGiB} GiB · node ${env.node} · wrangler ${env.wrangler} · workerd ${env.workerd} · partyserver ${env.partyserver} · path: ${env.path} · ${env.date.slice(0, 10)}`;
  writeFileSync(values.svg, renderSvg(rows, values.title ?? "Edge Relay vs PartyServer vs Node ws: one load generator", subtitle));
  console.log(`SVG: ${values.svg}`);
}

function markdownTable(all: Row[]): string {
  const n = (v: number | null | undefined, d = 0): string => (v === null || v === undefined ? "–" : v.toLocaleString("en-US", { maximumFractionDigits: d }));
  const lines = [
    "| scenario | case | system | subs | deliveries/s | POST/s | p50 ms | p90 ms | p99 ms | max ms | connect p50 ms | loss | dup | peak RSS tree / worker MB | worker CPU % | gen CPU % |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of all) {
    const cpuOk = r.cpu.windowMs >= 1000;
    lines.push(
      `| ${r.scenario} | ${r.case}${r.transport === "-" ? "" : ` (${r.transport})`} | ${r.system} | ${r.subscribers} | ${n(r.deliveriesPerSec)} | ${n(r.publishPerSec)} | ${n(r.latency?.p50, 1)} | ${n(r.latency?.p90, 1)} | ${n(r.latency?.p99, 1)} | ${n(r.latency?.max, 1)} | ${n(r.connect?.p50, 1)} | ${r.loss} | ${r.duplicates} | ${n(r.peakRssTreeMB)} / ${n(r.peakRssWorkerMB)} | ${cpuOk ? n(r.cpu.worker) : "–"} | ${cpuOk ? n(r.cpu.loadgen) : "–"} |`,
    );
  }
  return lines.join("\n");
}
