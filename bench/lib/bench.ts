// Runs scenarios against systems, one system at a time (start → every case → stop), and writes
// the results. Used by bench/run.ts (the CLI) and by the smoke test.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { loadAverage, memTotalBytes, openFilesLimit } from "./proc";
import { incomplete, renderSvg, renderTable } from "./report";
import {
  DEFAULT_PARAMS,
  fanout,
  hotChannel,
  hotChannelCase,
  idle,
  manyChannels,
  publishThroughput,
  type Row,
  resumeStorm,
  type ScenarioContext,
  type ScenarioName,
  type ScenarioParams,
} from "./scenarios";
import {
  BENCH_PUBLISH_RATE_LIMIT,
  BENCH_VARS,
  type PathChoice,
  type RelayLimits,
  ROOT,
  type RunningSystem,
  SYSTEMS,
  type SystemName,
  startSystem,
  stopAll,
  type Transport,
} from "./systems";

export interface BenchOptions {
  scenarios: ScenarioName[];
  systems: SystemName[];
  params?: Partial<ScenarioParams>;
  path?: PathChoice;
  /** Extra Worker vars for Edge Relay (`--var NAME:VALUE`). */
  vars?: Record<string, string>;
  /** Edge Relay's per-client limits: raised for one load generator ("bench", default) or as shipped. */
  relayLimits?: RelayLimits;
  /** Measure the Edge Relay checkout in this directory instead of this one. */
  relayRoot?: string;
  /** The checkout the "edge-relay-base" system runs (A/B a change in one run). */
  compareRoot?: string;
  /** Worker vars for edge-relay-base only. */
  compareVars?: Record<string, string>;
  /** Where JSON, SVG and server logs go (default bench/results). */
  outDir?: string;
  /** Runs of every case on every system (median or best reported, all kept in the JSON). */
  repeat?: number;
  /** With repeat: report the median run (default) or the best one (least disturbed by other load). */
  pick?: "median" | "best";
  /** Nice value for the systems under test (the CLI also renices itself). */
  nice?: number;
  /** One line of progress; the CLI overwrites it in place on a terminal. */
  progress?: (text: string) => void;
  /** Whole lines: what is being started, stopped, finished. */
  log?: (text: string) => void;
}

export interface BenchResult {
  rows: Row[];
  table: string;
  jsonPath: string;
  svgPath: string;
  environment: Environment;
}

export interface Environment {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  loadAverageAtStart: string;
  node: string;
  wrangler: string;
  workerd: string;
  partyserver: string;
  ws: string;
  gitCommit: string;
  fdLimit: { soft: number; hard: number };
  path: PathChoice;
  /** Nice value of the systems and the generator (0: as started). */
  nice: number;
  /** What Edge Relay ran with beyond its wrangler.toml. */
  relayConfig: string;
  params: ScenarioParams;
  command: string;
}

function packageVersion(path: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", path, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

export function environment(
  path: PathChoice,
  params: ScenarioParams,
  relayLimits: RelayLimits = "bench",
  vars: Record<string, string> = {},
  relayRoot?: string,
  compareRoot?: string,
  compareVars: Record<string, string> = {},
): Environment {
  let gitCommit = "?";
  try {
    const root = relayRoot ?? ROOT;
    gitCommit = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    if (execFileSync("git", ["-C", root, "status", "--porcelain", "src", "wrangler.toml"], { encoding: "utf8" }).trim()) gitCommit += " (src modified)";
  } catch {
    // Not a git checkout.
  }
  const wranglerWorkerd = packageVersion("wrangler/node_modules/workerd");
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "?",
    memoryGiB: Math.round((memTotalBytes() / 1024 ** 3) * 10) / 10,
    loadAverageAtStart: loadAverage(),
    node: process.version,
    wrangler: packageVersion("wrangler"),
    workerd: wranglerWorkerd !== "?" ? wranglerWorkerd : packageVersion("workerd"),
    partyserver: packageVersion("partyserver"),
    ws: packageVersion("ws"),
    gitCommit,
    fdLimit: openFilesLimit(),
    path,
    nice: 0,
    relayConfig: [
      relayLimits === "bench"
        ? `limits raised for one client address: ${Object.entries(BENCH_VARS)
            .map(([k, v]) => `${k}=${v}`)
            .join(", ")}, PUBLISH_RATE_LIMITER limit=${BENCH_PUBLISH_RATE_LIMIT}/period`
        : "wrangler.toml as shipped",
      ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
      ...(relayRoot ? [`checkout ${relayRoot}`] : []),
      ...(compareRoot
        ? [
            `edge-relay-base = checkout ${compareRoot}${
              Object.keys(compareVars).length
                ? ` with ${Object.entries(compareVars)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(", ")}`
                : ""
            }`,
          ]
        : []),
    ].join("; "),
    params,
    command: process.argv.slice(2).join(" "),
  };
}

/** Which cases a scenario runs on a system; an empty list when the system cannot run it. */
function casesFor(scenario: ScenarioName, system: SystemName, params: ScenarioParams): Array<{ name: string; run: (ctx: ScenarioContext) => Promise<Row> }> {
  const can = (t: Transport): boolean => SYSTEMS[system].transports.includes(t);
  // The hot systems differ from edge-relay-batch only on the hot-channel scenario's channels.
  if ((scenario === "hot-channel") !== (SYSTEMS[system].hotShards !== undefined)) return [];
  switch (scenario) {
    case "fanout-ws":
    case "fanout-sse": {
      const transport: Transport = scenario === "fanout-ws" ? "ws" : "sse";
      if (!can(transport)) return [];
      return params.modes.map((mode) => ({ name: `${scenario} ${mode}`, run: (ctx) => fanout(ctx, transport, mode) }));
    }
    case "many-channels":
      return params.transports.filter(can).map((t) => ({ name: `${scenario} ${t}`, run: (ctx) => manyChannels(ctx, t) }));
    case "publish-throughput":
      return [
        { name: `${scenario} 1 channel`, run: (ctx) => publishThroughput(ctx, false) },
        { name: `${scenario} ${params.spreadChannels} channels`, run: (ctx) => publishThroughput(ctx, true) },
      ];
    case "idle":
      return (["ws", "sse"] as const)
        .filter(can)
        .filter((t) => (t === "ws" ? params.idleWs : params.idleSse) > 0)
        .map((t) => ({ name: `${scenario} ${t}`, run: (ctx) => idle(ctx, t) }));
    case "resume-storm":
      return params.transports.filter(can).map((t) => ({ name: `${scenario} ${t}`, run: (ctx) => resumeStorm(ctx, t) }));
    case "hot-channel":
      return params.hotSubs.flatMap((subs) =>
        params.modes.map((mode) => ({ name: `${scenario} ${hotChannelCase(params, subs, mode)}`, run: (ctx) => hotChannel(ctx, subs, mode) })),
      );
  }
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const params: ScenarioParams = { ...DEFAULT_PARAMS, ...options.params };
  const path = options.path ?? "direct";
  const outDir = options.outDir ?? join(ROOT, "bench/results");
  const log = options.log ?? ((text: string) => console.log(text));
  const progress = options.progress ?? (() => undefined);
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const logDir = join(outDir, `logs-${stamp}`);
  mkdirSync(logDir, { recursive: true });
  const env = {
    ...environment(path, params, options.relayLimits, options.vars, options.relayRoot, options.compareRoot, options.compareVars),
    nice: options.nice ?? 0,
  };
  // Vars a system always runs with (the hot systems' HOT_CHANNELS) belong to what was measured.
  for (const name of options.systems) {
    const vars = SYSTEMS[name].vars;
    if (vars && options.scenarios.some((s) => casesFor(s, name, params).length > 0))
      env.relayConfig += `; ${name}: ${Object.entries(vars)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}`;
  }
  const runId = Date.now().toString(36);
  const allRows: Row[] = [];

  const repeat = Math.max(1, options.repeat ?? 1);
  const systems = new Map<SystemName, RunningSystem>();
  try {
    // Every system stays up for the whole run (idle ones cost ~nothing), so each case runs on all
    // systems back to back, in a rotating order with --repeat: drifting machine noise then
    // falls on every system alike and the ratios hold.
    for (const name of options.systems) {
      if (!options.scenarios.some((s) => casesFor(s, name, params).length > 0)) continue;
      log(`▶ starting ${name} …`);
      const vars = name === "edge-relay-base" ? { ...options.vars, ...options.compareVars } : options.vars;
      const system = await startSystem(name, {
        path,
        vars,
        relayLimits: options.relayLimits,
        relayRoot: options.relayRoot,
        compareRoot: options.compareRoot,
        nice: options.nice,
        logDir,
      });
      systems.set(name, system);
      log(`  ${name}: pid ${system.pid}, measuring on ${system.pathLabel}`);
    }
    const order = [...systems.keys()];
    const caseNames = [...new Set(options.scenarios.flatMap((s) => order.flatMap((name) => casesFor(s, name, params).map((c) => c.name))))];
    for (let rep = 1; rep <= repeat; rep++) {
      for (const caseName of caseNames) {
        const rotated = order.map((_, i) => order[(i + rep - 1) % order.length] as SystemName);
        for (const name of rotated) {
          const kase = options.scenarios.flatMap((s) => casesFor(s, name, params)).find((c) => c.name === caseName);
          const system = systems.get(name);
          if (!kase || !system) continue;
          progress(`${name} ${kase.name}: starting`);
          let row: Row | undefined;
          for (let attempt = 1; attempt <= 2 && !row; attempt++) {
            if (await system.ensureUp()) log(`  ! ${name} had restarted its Worker (wrangler reload); now on ${system.pathLabel}`);
            const before = system.workerPid;
            const result = await kase.run({ system, params, progress, runId, rep });
            progress(`${name} ${kase.name}: waiting for the system to work off the case`);
            if (!(await system.quiet())) result.notes.push("the system was still busy 120 s after this case");
            if ((await system.ensureUp()) || system.workerPid !== before) {
              log(`  ! ${name} restarted its Worker during ${kase.name}${attempt === 1 ? "; running the case again" : ""}`);
              result.notes.push("the Worker restarted during this case (wrangler reload)");
              if (attempt === 2) row = result;
            } else {
              row = result;
            }
          }
          if (!row) continue;
          allRows.push(row);
          progress("");
          log(`  ✓ ${name} ${kase.name}${repeat > 1 ? ` (${rep}/${repeat})` : ""}: ${summaryLine(row)}`);
        }
      }
    }
  } finally {
    progress("");
    for (const system of systems.values()) {
      log(`  stopping ${system.name} (process group ${system.pid}) …`);
      await system.stop();
    }
  }
  const rows = repeat > 1 ? pickRows(allRows, repeat, options.pick ?? "median") : allRows;

  const table = renderTable(rows);
  const base = join(outDir, `${stamp}-${options.scenarios.join("+")}`);
  const jsonPath = `${base}.json`;
  const svgPath = `${base}.svg`;
  writeFileSync(jsonPath, `${JSON.stringify({ environment: env, rows, ...(repeat > 1 ? { allRows } : {}) }, null, 2)}\n`);
  const subtitle = `${env.cpus} cores, ${env.memoryGiB} GiB · node ${env.node} · wrangler ${env.wrangler} · workerd ${env.workerd} · path: ${path} · ${env.date.slice(0, 16)}Z`;
  writeFileSync(svgPath, renderSvg(rows, `Edge Relay bench: ${options.scenarios.join(", ")}`, subtitle));
  return { rows, table, jsonPath, svgPath, environment: env };
}

/** The headline number of a row, as "higher is better". */
function headline(row: Row): { metric: string; value: number } {
  if (row.idle) return { metric: "KB per idle connection", value: -row.idle.perConnectionKB };
  // At a fixed rate every system delivers the same per second: what differs is how late.
  if (row.case.startsWith("rate")) return { metric: "p50 latency ms", value: -(row.latency?.p50 ?? Number.POSITIVE_INFINITY) };
  if (row.deliveriesPerSec !== null) return { metric: "deliveries/s", value: row.deliveriesPerSec };
  return { metric: "POST/s", value: row.publishPerSec ?? 0 };
}

/** Per case and system, the repetition with the median (or best) headline number, with the range seen. */
export function pickRows(rows: Row[], n: number, pick: "median" | "best"): Row[] {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${r.scenario}|${r.case}|${r.transport}|${r.system}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((all) => {
    // Runs that did not complete are reported (worst loss below) but never picked.
    const complete = all.filter((r) => !incomplete(r));
    const group = complete.length > 0 ? complete : all;
    const sorted = [...group].sort((a, b) => headline(a).value - headline(b).value);
    const median = (pick === "best" ? sorted[sorted.length - 1] : sorted[Math.floor((sorted.length - 1) / 2)]) as Row;
    const values = sorted.map((r) => Math.abs(headline(r).value));
    // Loss and duplicates are never averaged away: the median row carries the worst of all runs.
    return {
      ...median,
      loss: Math.max(...all.map((r) => r.loss)),
      duplicates: Math.max(...all.map((r) => r.duplicates)),
      notes: [...median.notes, ...all.filter((r) => incomplete(r)).map((r) => `run ${r.rep} incomplete: ${incomplete(r)}`)],
      repeats: { n, pick, metric: headline(median).metric, min: Math.min(...values), max: Math.max(...values) },
    };
  });
}

function summaryLine(row: Row): string {
  const parts: string[] = [];
  if (row.deliveriesPerSec !== null) parts.push(`${row.deliveriesPerSec} deliveries/s`);
  if (row.publishPerSec !== null) parts.push(`${row.publishPerSec} POST/s`);
  if (row.latency) parts.push(`p50 ${row.latency.p50} ms, p99 ${row.latency.p99} ms`);
  if (row.idle) parts.push(`${row.idle.reached}/${row.idle.target} connections, ${row.idle.perConnectionKB} KB each`);
  parts.push(`loss ${row.loss}, dup ${row.duplicates}`);
  return parts.join(", ");
}

export { stopAll };
