// What a run prints and writes: a side-by-side table, ratios against Edge Relay, the JSON of
// every row, and an SVG with the latency distribution and the throughput of each system.
import type { Row } from "./scenarios";
import type { SystemName } from "./systems";

const COLORS: Record<SystemName, string> = {
  "edge-relay": "#f38020",
  "edge-relay-batch": "#c2410c",
  partyserver: "#6f42c1",
  "node-ws": "#2e7d32",
  "edge-relay-base": "#f7b267",
  "edge-relay-hot1": "#1f77b4",
  "edge-relay-hot8": "#17becf",
};

function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  if (digits === 0 && Math.abs(n) >= 10_000) return `${(n / 1000).toFixed(1)}k`;
  return n.toFixed(digits);
}

function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  if (n >= 1000) return `${(n / 1000).toFixed(2)}s`;
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

/** CPU % over the load window; blank when the window was too short for tick-based accounting. */
function cpu(r: Row, percent: number): string {
  return r.cpu.windowMs >= 1000 ? `${fmt(percent)}%` : "–";
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** The side-by-side table (plain text, fixed width). */
export function renderTable(rows: Row[]): string {
  const header = [
    "scenario / case",
    "system",
    "tr",
    "subs",
    "deliv/s",
    "p50",
    "p90",
    "p99",
    "max",
    "pub/s",
    "conn p50",
    "loss",
    "dup",
    "ooo",
    "RSS tree",
    "RSS wrk",
    "CPU wrk",
    "hot thr",
    "gen CPU",
    "stall",
  ];
  const body = rows.map((r) => [
    `${r.scenario} ${r.case}`,
    r.system,
    r.transport,
    String(r.subscribers),
    fmt(r.deliveriesPerSec),
    ms(r.latency?.p50),
    ms(r.latency?.p90),
    ms(r.latency?.p99),
    ms(r.latency?.max),
    fmt(r.publishPerSec, r.publishPerSec !== null && r.publishPerSec < 100 ? 1 : 0),
    ms(r.connect?.p50),
    String(r.loss),
    String(r.duplicates),
    String(r.outOfOrder),
    `${fmt(r.peakRssTreeMB)}M`,
    `${fmt(r.peakRssWorkerMB)}M`,
    cpu(r, r.cpu.worker),
    cpu(r, r.cpu.hottestThread),
    cpu(r, r.cpu.loadgen),
    r.cpu.stall === null ? "–" : cpu(r, r.cpu.stall),
  ]);
  const parts = [table(header, body)];

  const idleRows = rows.filter((r) => r.idle);
  if (idleRows.length > 0) {
    parts.push(
      "",
      table(
        [
          "idle",
          "system",
          "tr",
          "reached",
          "target",
          "KB/conn wrk",
          "at open",
          "KB/conn tree",
          "KB/conn proxy",
          "RSS wrk before→after",
          "fds wrk",
          "fd limit",
          "bcast loss",
          "bcast ms",
        ],
        idleRows.map((r) => {
          const i = r.idle as NonNullable<Row["idle"]>;
          return [
            r.case,
            r.system,
            r.transport,
            String(i.reached),
            String(i.target),
            fmt(i.perConnectionKB, 1),
            fmt(i.perConnectionAtOpenKB, 1),
            fmt(i.treePerConnectionKB, 1),
            fmt(i.proxyPerConnectionKB, 1),
            `${fmt(i.workerRssBeforeMB)}→${fmt(i.workerRssAfterMB)} MB`,
            String(i.workerFds),
            String(i.workerFdLimit),
            String(i.broadcastLoss),
            ms(i.broadcastMs),
          ];
        }),
      ),
    );
  }

  const ratios = renderRatios(rows);
  if (ratios) parts.push("", ratios);
  const hot = renderHotChannel(rows);
  if (hot) parts.push("", hot);
  const repeated = rows.filter((r) => r.repeats);
  if (repeated.length > 0) {
    parts.push("", `${repeated[0]?.repeats?.pick === "best" ? "best" : "median"} of ${repeated[0]?.repeats?.n} runs per row; range of the headline number:`);
    for (const r of repeated)
      parts.push(`  ${r.scenario} ${r.case} ${r.transport} ${r.system}: ${r.repeats?.metric} ${fmt(r.repeats?.min, 1)} – ${fmt(r.repeats?.max, 1)}`);
  }
  const notes = rows.flatMap((r) => r.notes.filter((n) => !/in flight/.test(n)).map((n) => `  ${r.system} ${r.scenario} ${r.case} ${r.transport}: ${n}`));
  const errors = rows
    .filter((r) => r.publishErrors > 0)
    .map((r) => `  ${r.system} ${r.scenario} ${r.case}: ${r.publishErrors} publishes not answered 201 (${r.publishErrorSample ?? ""})`);
  if (notes.length + errors.length > 0) parts.push("", "notes:", ...notes, ...errors);
  const bad = rows.filter((r) => r.loss > 0 || r.duplicates > 0 || r.unexpected > 0);
  const broken = rows.filter((r) => incomplete(r));
  if (broken.length > 0) parts.push("", `INCOMPLETE: ${broken.map((r) => `${r.system} ${r.scenario} ${r.case} ${r.transport}: ${incomplete(r)}`).join("; ")}`);
  parts.push(
    "",
    bad.length === 0
      ? `loss 0, duplicates 0 in every row${broken.length > 0 ? " (of what was measured)" : ""}.`
      : `LOSS/DUPLICATES: ${bad.map((r) => `${r.system} ${r.scenario} ${r.case} ${r.transport}: loss ${r.loss}, dup ${r.duplicates}, unexpected ${r.unexpected}, dropped subscribers ${r.dropped}`).join("; ")}`,
  );
  parts.push(
    "columns: deliv/s = deliveries per second (first publish → last delivery); p50…max = latency in ms (see latencyKind in the JSON: publish→receive, POST round trip for publish-throughput, reconnect→caught-up for resume-storm); conn p50 = time to subscribed; ooo = out of id order; RSS tree = peak sum over the system's process tree, RSS wrk = peak of the process that holds the connections; CPU = % of one core during the load (– when that window was under 1 s); hot thr = busiest single thread; gen CPU = the load generator; stall = share of the window in which some task on the machine waited for a CPU (PSI: how contended the machine was).",
  );
  return parts.join("\n");
}

/** Why a row did not measure what it should have (failed connects or publishes, nothing delivered); "" when it did. */
export function incomplete(r: Row): string {
  const why: string[] = [];
  if (r.connect && r.connect.failed > 0) why.push(`${r.connect.failed} connects failed (${r.connect.firstError ?? "?"})`);
  if (r.publishErrors > 0) why.push(`${r.publishErrors} publishes failed (${r.publishErrorSample ?? "?"})`);
  if (r.expectedDeliveries === 0 && r.subscribers === 0 && r.scenario !== "publish-throughput") why.push("no subscribers");
  if (r.dropped > 0) why.push(`${r.dropped} subscribers dropped`);
  return why.join(", ");
}

/** Edge Relay against each baseline, per case: the issue's goals are ratios. */
export function renderRatios(rows: Row[]): string {
  const lines: string[] = [];
  const key = (r: Row): string => `${r.scenario}|${r.case}|${r.transport}`;
  const groups = new Map<string, Row[]>();
  for (const r of rows) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  for (const group of groups.values()) {
    for (const relay of group.filter((r) => r.system === "edge-relay" || r.system === "edge-relay-batch")) {
      for (const other of group) {
        // Batch mode against plain mode is printed once, from the batch row.
        if (other === relay || (relay.system === "edge-relay" && other.system === "edge-relay-batch")) continue;
        const parts: string[] = [];
        const ratio = (a: number | null | undefined, b: number | null | undefined): string => (a && b ? `${(a / b).toFixed(2)}×` : "–");
        if (relay.deliveriesPerSec !== null) parts.push(`deliveries/s ${ratio(relay.deliveriesPerSec, other.deliveriesPerSec)}`);
        else if (relay.publishPerSec !== null) parts.push(`POST/s ${ratio(relay.publishPerSec, other.publishPerSec)}`);
        if (relay.latency && other.latency) parts.push(`p99 ${ratio(relay.latency.p99, other.latency.p99)} (lower is better)`);
        if (relay.idle && other.idle) parts.push(`memory per connection ${ratio(relay.idle.perConnectionKB, other.idle.perConnectionKB)} (lower is better)`);
        lines.push(`  ${relay.scenario} ${relay.case} ${relay.transport}: ${relay.system} vs ${other.system}: ${parts.join(", ")}`);
      }
    }
  }
  // SSE against the relay's own WebSocket fan-out, same case.
  for (const sse of rows.filter((r) => r.system === "edge-relay" && r.scenario === "fanout-sse")) {
    const ws = rows.find((r) => r.system === "edge-relay" && r.scenario === "fanout-ws" && r.case === sse.case);
    if (ws?.deliveriesPerSec && sse.deliveriesPerSec) {
      lines.push(`  edge-relay ${sse.case}: SSE fan-out is ${(ws.deliveriesPerSec / sse.deliveriesPerSec).toFixed(2)}× slower than WS (goal ≤ 1.5×)`);
    }
  }
  return lines.length > 0 ? ["ratios (edge-relay or edge-relay-batch ÷ other):", ...lines].join("\n") : "";
}

/**
 * The hot-channel rows side by side with what the room did per publish, then each shard count
 * against the room alone (same case, same run) and the room's work from the fewest subscribers to
 * the most: issue 12 asks for ≤ 10 % fewer deliveries/s, about one hop more latency, and room work
 * that grows with the shards, not the subscribers.
 */
export function renderHotChannel(rows: Row[]): string {
  const hot = rows.filter((r) => r.scenario === "hot-channel" && r.roomWork);
  if (hot.length === 0) return "";
  const work = (r: Row): string => `${fmt(r.roomWork?.perPublish, r.roomWork?.unit === "calls" ? 2 : 0)} ${r.roomWork?.unit}`;
  const cpuMs = (r: Row): number | null | undefined => r.roomWork?.workerCpuMsPerPublish;
  const parts = [
    "hot channel: what the room does per publish (sends to its own subscribers, or push calls to shards); CPU = the Worker's whole workerd process (Worker, room and shards share one thread locally)",
    table(
      ["case", "system", "tr", "shards", "following", "subs", "deliv/s", "p50", "p99", "room work/pub", "CPU ms/pub", "CPU µs/deliv"],
      hot.map((r) => [
        r.case,
        r.system,
        r.transport,
        String(r.roomWork?.shards),
        r.roomWork?.shards === 1 ? "–" : String(r.roomWork?.following),
        String(r.subscribers),
        fmt(r.deliveriesPerSec),
        ms(r.latency?.p50),
        ms(r.latency?.p99),
        work(r),
        fmt(cpuMs(r), 2),
        fmt(cpuMs(r) == null || r.subscribers === 0 ? null : ((cpuMs(r) as number) * 1000) / r.subscribers, 1),
      ]),
    ),
  ];
  const lines: string[] = [];
  for (const alone of hot.filter((r) => r.roomWork?.shards === 1)) {
    for (const tree of hot.filter((r) => r.case === alone.case && (r.roomWork?.shards ?? 1) > 1)) {
      const ratio = alone.deliveriesPerSec && tree.deliveriesPerSec ? tree.deliveriesPerSec / alone.deliveriesPerSec : null;
      const delta = (a: number | undefined, b: number | undefined): string =>
        a === undefined || b === undefined ? "–" : `${b - a >= 0 ? "+" : ""}${(b - a).toFixed(1)} ms`;
      lines.push(
        `  ${alone.case}: ${tree.roomWork?.shards} shards vs the room alone: deliveries/s ${ratio === null ? "–" : `${ratio.toFixed(2)}×`}${ratio !== null && ratio < 0.9 ? " (more than 10 % below)" : ""}, p50 ${delta(alone.latency?.p50, tree.latency?.p50)}, p99 ${delta(alone.latency?.p99, tree.latency?.p99)} (for scale, a hop under the same load: POST → Worker → room and back, p50 ${ms(tree.publishLatency?.p50)} ms); room work per publish ${work(alone)} → ${work(tree)}`,
      );
    }
  }
  // Each system's room work from the fewest subscribers to the most, same mode ("acked" or "rate").
  const mode = (r: Row): string => r.case.split(/[ ,]/)[0] ?? r.case;
  const seen = new Set<string>();
  for (const r of hot) {
    const key = `${r.system}|${mode(r)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const same = hot.filter((o) => o.system === r.system && mode(o) === mode(r)).sort((a, b) => a.subscribers - b.subscribers);
    const first = same[0];
    const last = same[same.length - 1];
    if (!first || !last || first === last || !first.roomWork?.perPublish || !last.roomWork) continue;
    lines.push(
      `  ${r.system} ${mode(r)}: room work per publish ${work(first)} at ${first.subscribers} subs → ${work(last)} at ${last.subscribers} (×${(last.roomWork.perPublish / first.roomWork.perPublish).toFixed(2)} for ×${(last.subscribers / first.subscribers).toFixed(1)} subscribers)`,
    );
  }
  if (lines.length > 0) parts.push("", "hot channel, shards against the room alone (same case, same run):", ...lines);
  return parts.join("\n");
}

// ---------------------------------------------------------------------------------------------
// SVG

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * A chart of one run, one panel per case: the latency distribution of every system (left,
 * ms on a log scale by percentile) and its throughput (right: deliveries/s, POST/s, or memory
 * per idle connection).
 */
export function renderSvg(rows: Row[], title: string, subtitle: string): string {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.scenario} · ${r.case}${r.transport === "-" ? "" : ` · ${r.transport}`}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const W = 1000;
  const panelH = 190;
  const top = 84;
  const H = top + groups.size * panelH + 20;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="20" y="26" font-size="16" font-weight="600">${esc(title)}</text>`);
  out.push(`<text x="20" y="46" fill="#555">${esc(subtitle)}</text>`);
  const systems = [...new Set(rows.map((r) => r.system))];
  systems.forEach((system, i) => {
    const x = 20 + i * 140;
    out.push(`<rect x="${x}" y="58" width="14" height="14" fill="${COLORS[system]}"/><text x="${x + 20}" y="70">${esc(system)}</text>`);
  });

  [...groups.entries()].forEach(([name, group], g) => {
    const y0 = top + g * panelH;
    const plot = { x: 70, y: y0 + 30, w: 440, h: 120 };
    out.push(`<line x1="20" x2="${W - 20}" y1="${y0 + 4}" y2="${y0 + 4}" stroke="#ddd"/>`);
    out.push(`<text x="20" y="${y0 + 22}" font-weight="600">${esc(name)}</text>`);
    const kind = group.find((r) => r.latency)?.latencyKind ?? "";
    out.push(`<text x="${plot.x + plot.w}" y="${y0 + 22}" text-anchor="end" font-size="10" fill="#555">${esc(kind)}</text>`);

    // Latency: x = percentile on a tail-stretching scale, y = ms on a log scale.
    const withLatency = group.filter((r) => r.latency && r.latency.count > 0);
    const values = withLatency.flatMap((r) => (r.latency?.quantiles ?? []).map(([, v]) => v)).filter((v) => v > 0);
    const lo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...values, 10))));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 1) * 1.0001));
    const qx = (q: number): number => plot.x + (Math.min(3, -Math.log10(Math.max(1e-3, 1 - q))) / 3) * plot.w;
    const ly = (v: number): number => plot.y + plot.h - ((Math.log10(Math.max(lo, v)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * plot.h;
    out.push(`<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="none" stroke="#bbb"/>`);
    for (let v = lo; v <= hi * 1.001; v *= 10) {
      out.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${ly(v).toFixed(1)}" y2="${ly(v).toFixed(1)}" stroke="#eee"/>`);
      out.push(`<text x="${plot.x - 6}" y="${(ly(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v >= 1 ? `${v} ms` : `${v.toFixed(2)} ms`}</text>`);
    }
    for (const [q, label] of [
      [0, "p0"],
      [0.5, "p50"],
      [0.9, "p90"],
      [0.99, "p99"],
      [0.999, "p99.9"],
    ] as const) {
      out.push(`<line x1="${qx(q).toFixed(1)}" x2="${qx(q).toFixed(1)}" y1="${plot.y}" y2="${plot.y + plot.h}" stroke="#eee"/>`);
      out.push(`<text x="${qx(q).toFixed(1)}" y="${plot.y + plot.h + 15}" text-anchor="middle" fill="#555">${label}</text>`);
    }
    for (const r of withLatency) {
      const points = (r.latency?.quantiles ?? []).map(([q, v]) => `${qx(q).toFixed(1)},${ly(v).toFixed(1)}`).join(" ");
      out.push(`<polyline points="${points}" fill="none" stroke="${COLORS[r.system]}" stroke-width="2"/>`);
    }

    // Throughput: one bar per system, scaled within the panel.
    const bars = { x: 640, y: plot.y - 4, w: 220, h: 20 };
    const items = group.map((r) => ({ r, b: barValue(r) })).filter((i): i is { r: Row; b: { value: number; unit: string } } => i.b !== null);
    const max = Math.max(...items.map((i) => i.b.value), 1e-9);
    if (items[0]) out.push(`<text x="${bars.x}" y="${y0 + 22}" fill="#555">${esc(items[0].b.unit)}</text>`);
    items.forEach(({ r, b }, i) => {
      const y = bars.y + i * (bars.h + 16);
      const w = Math.max(1, (b.value / max) * bars.w);
      const lat = r.latency ? ` · p50 ${ms(r.latency.p50)} · p99 ${ms(r.latency.p99)} ms` : "";
      out.push(`<text x="${bars.x - 8}" y="${y + 15}" text-anchor="end">${esc(r.system)}</text>`);
      out.push(`<rect x="${bars.x}" y="${y}" width="${w.toFixed(1)}" height="${bars.h}" fill="${COLORS[r.system]}"/>`);
      out.push(`<text x="${bars.x + w + 6}" y="${y + 15}" fill="#333">${esc(fmt(b.value, b.unit.startsWith("KB") ? 1 : 0))}</text>`);
      out.push(`<text x="${bars.x}" y="${y + bars.h + 9}" font-size="9" fill="#777">${esc(`loss ${r.loss} · dup ${r.duplicates}${lat}`)}</text>`);
    });
  });
  out.push(`</svg>`);
  return out.join("\n");
}

function barValue(r: Row): { value: number; unit: string } | null {
  if (r.idle) return { value: r.idle.perConnectionKB, unit: "KB/conn (Worker process RSS)" };
  if (r.deliveriesPerSec !== null) return { value: r.deliveriesPerSec, unit: "deliveries/s" };
  if (r.publishPerSec !== null) return { value: r.publishPerSec, unit: "POST/s" };
  return null;
}
