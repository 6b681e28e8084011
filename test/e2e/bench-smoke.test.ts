// A small run of the load harness (bench/), so the instrument cannot rot: a few subscribers and
// messages over both relay transports and the Node baseline. It checks that nothing was lost or
// duplicated and that numbers and files were produced; it asserts nothing about speed.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type BenchResult, runBench, stopAll } from "../../bench/lib/bench";
import { processTree } from "../../bench/lib/proc";

const outDir = mkdtempSync(join(tmpdir(), "bench-smoke-"));

afterAll(async () => {
  await stopAll();
  rmSync(outDir, { recursive: true, force: true });
});

describe("bench harness smoke run", () => {
  it("fans out over WS and SSE with zero loss and zero duplicates, prints the table and writes JSON + SVG", async () => {
    const lines: string[] = [];
    const result: BenchResult = await runBench({
      scenarios: ["fanout-ws", "fanout-sse"],
      systems: ["edge-relay", "node-ws"],
      params: { subs: 4, messages: 10, modes: ["acked"], timeoutMs: 15_000 },
      outDir,
      log: (line) => lines.push(line),
    });

    expect(result.rows.map((r) => `${r.system} ${r.scenario} ${r.transport}`)).toEqual([
      "edge-relay fanout-ws ws",
      "node-ws fanout-ws ws",
      "edge-relay fanout-sse sse",
      "node-ws fanout-sse sse",
    ]);
    for (const row of result.rows) {
      const what = `${row.system} ${row.scenario}`;
      expect(row.subscribers, what).toBe(4);
      expect(row.acked, what).toBe(10);
      expect(row.publishErrors, what).toBe(0);
      expect(row.deliveries, what).toBe(40);
      expect(row.loss, what).toBe(0);
      expect(row.duplicates, what).toBe(0);
      expect(row.outOfOrder, what).toBe(0);
      expect(row.unexpected, what).toBe(0);
      expect(row.deliveriesPerSec, what).toBeGreaterThan(0);
      expect(row.latency?.count, what).toBe(40);
      expect(row.latency?.p99, what).toBeGreaterThan(0);
      expect(row.peakRssTreeMB, what).toBeGreaterThan(0);
    }

    expect(result.table).toMatch(/^scenario \/ case\s+system/);
    expect(result.table).toContain("edge-relay vs node-ws");
    expect(result.table).toContain("loss 0, duplicates 0 in every row.");
    const json = JSON.parse(readFileSync(result.jsonPath, "utf8")) as { rows: unknown[]; environment: { wrangler: string } };
    expect(json.rows).toHaveLength(4);
    expect(json.environment.wrangler).toMatch(/^4\.86\./);
    expect(readFileSync(result.svgPath, "utf8")).toMatch(/^<svg [^>]*>[\s\S]*<polyline[\s\S]*<\/svg>$/);

    // Everything the run started is gone again.
    const started = lines.map((l) => /pid (\d+),/.exec(l)?.[1]).filter((pid): pid is string => pid !== undefined);
    expect(started).toHaveLength(2);
    for (const pid of started) expect(processTree(Number(pid))).toEqual([]);
    expect(existsSync(outDir)).toBe(true);
  }, 60_000);
});
