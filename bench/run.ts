#!/usr/bin/env -S npx tsx
// Load harness: Edge Relay and its baselines under one load generator, side by side.
//
//   npm run bench -- --scenario fanout-ws --subs 1000
//   npm run bench -- --scenario fanout-sse,resume-storm --systems edge-relay,partyserver
//   npm run bench -- --scenario hot-channel --mode acked --repeat 3
//   npm run bench -- --help
import { spawnSync } from "node:child_process";
import { setPriority } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { runBench, stopAll } from "./lib/bench";
import { openFilesLimit } from "./lib/proc";
import { incomplete } from "./lib/report";
import { DEFAULT_PARAMS, type FanoutMode, SCENARIO_NAMES, type ScenarioName, type ScenarioParams } from "./lib/scenarios";
import { type PathChoice, type RelayLimits, SYSTEM_NAMES, type SystemName, type Transport } from "./lib/systems";

const HELP = `npm run bench -- [options]

  --scenario LIST        ${SCENARIO_NAMES.join(", ")} or all (default fanout-ws)
  --systems LIST         ${SYSTEM_NAMES.join(", ")} (default: all but
                         edge-relay-base, which runs with --compare-root; edge-relay-hot1 and
                         edge-relay-hot8 run hot-channel only, which runs only on them)
  --path direct|proxy    direct (default): the Worker's own workerd port; proxy: wrangler's
                         ProxyWorker port in front of it (what a browser on npm run dev uses)
  --var NAME:VALUE       an Edge Relay Worker var (repeatable)
  --relay-limits bench|default
                         bench (default): Edge Relay runs with MAX_CONNECTIONS_PER_IP and the
                         publish rate limit raised, so one generator on one address can reach the
                         scenario sizes (the checks stay on the path); default: wrangler.toml as is
  --relay-root DIR       measure another Edge Relay checkout (node_modules installed or linked),
                         e.g. a change's base: git worktree add ../base HEAD~1
  --compare-root DIR     also run "edge-relay-base" from that checkout, side by side with
                         edge-relay, to measure a change against its base in one run
  --compare-var NAME:VALUE  a Worker var for edge-relay-base only (A/B a setting)

  fan-out   --subs ${DEFAULT_PARAMS.subs} --messages ${DEFAULT_PARAMS.messages} --size ${DEFAULT_PARAMS.size} --mode acked,rate --rate ${DEFAULT_PARAMS.rate} --in-flight ${DEFAULT_PARAMS.ackedInFlight} (acked)
  hot-channel  fan-out over WebSocket (batch frames, the SDK's mode) on a channel served by the room
            alone (edge-relay-hot1) and through 8 shards (edge-relay-hot8), one case per
            --hot-subs ${DEFAULT_PARAMS.hotSubs.join(",")} and --mode; every case delivers --hot-deliveries ${DEFAULT_PARAMS.hotDeliveries}
            (messages = that ÷ subscribers), "rate" at --hot-rate ${DEFAULT_PARAMS.hotRate} deliveries/s (messages/s = that ÷
            subscribers); --size and --in-flight as fan-out
  many      --channels ${DEFAULT_PARAMS.channels} --subs-per-channel ${DEFAULT_PARAMS.subsPerChannel} --messages-per-channel ${DEFAULT_PARAMS.messagesPerChannel} --concurrency ${DEFAULT_PARAMS.concurrency}
  publish   --concurrency ${DEFAULT_PARAMS.concurrency} --duration ${DEFAULT_PARAMS.durationSec} (s) --spread-channels ${DEFAULT_PARAMS.spreadChannels}
  idle      --idle-ws ${DEFAULT_PARAMS.idleWs} --idle-sse ${DEFAULT_PARAMS.idleSse} --idle-settle ${DEFAULT_PARAMS.idleSettleSec} (s)
            (0 skips a transport: measure WS and SSE in separate runs, so one does not
            start where the other left the allocator)
  resume    --clients ${DEFAULT_PARAMS.clients} --since-back ${DEFAULT_PARAMS.sinceBack} --transport ws,sse (also many-channels' transports)
  common    --repeat N (every case N times per system, rotating the order) --pick median|best
            --nice=N (e.g. --nice=-5, root only: run the generator and the systems at a higher priority
            than other load on a shared machine)
            --connect-concurrency ${DEFAULT_PARAMS.connectConcurrency} --timeout ${DEFAULT_PARAMS.timeoutMs / 1000} (s, per wait) --out DIR

Each system is started on a free port with a temporary state directory, measured, and stopped
(SIGTERM to its process group, SIGKILL if it lingers; also on Ctrl-C). Results: a table here,
JSON + SVG under bench/results/.`;

/** Raises our soft fd limit to the hard one by re-running under `ulimit -n`: children inherit it. */
function ensureFdLimit(): void {
  const { soft, hard } = openFilesLimit();
  if (soft >= hard || process.env.BENCH_FD_RAISED) return;
  const result = spawnSync(
    "sh",
    ["-c", `ulimit -n ${Number.isFinite(hard) ? hard : "unlimited"} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: "inherit",
      env: { ...process.env, BENCH_FD_RAISED: "1" },
    },
  );
  if (result.error) {
    console.error(`could not raise the open-files limit (${result.error.message}); going on with ${soft}`);
    return;
  }
  process.exit(result.status ?? 1);
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T[], what: string): T[] {
  if (value === undefined) return fallback;
  if (value === "all") return [...allowed];
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`unknown ${what} "${item}"; one of ${allowed.join(", ")}`);
  return items as T[];
}

/** `NAME:VALUE` pairs, as wrangler's --var takes them. */
function pairs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list) {
    const at = pair.indexOf(":");
    if (at < 1) throw new Error(`--var takes NAME:VALUE, got ${pair}`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

function num(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} takes a number, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: "string" },
      systems: { type: "string" },
      path: { type: "string" },
      var: { type: "string", multiple: true, default: [] },
      "relay-limits": { type: "string" },
      "relay-root": { type: "string" },
      "compare-root": { type: "string" },
      repeat: { type: "string" },
      pick: { type: "string" },
      nice: { type: "string" },
      subs: { type: "string" },
      messages: { type: "string" },
      size: { type: "string" },
      mode: { type: "string" },
      rate: { type: "string" },
      "in-flight": { type: "string" },
      "hot-subs": { type: "string" },
      "hot-deliveries": { type: "string" },
      "hot-rate": { type: "string" },
      channels: { type: "string" },
      "subs-per-channel": { type: "string" },
      "messages-per-channel": { type: "string" },
      concurrency: { type: "string" },
      duration: { type: "string" },
      "spread-channels": { type: "string" },
      "idle-ws": { type: "string" },
      "idle-sse": { type: "string" },
      "idle-settle": { type: "string" },
      "compare-var": { type: "string", multiple: true, default: [] },
      clients: { type: "string" },
      "since-back": { type: "string" },
      transport: { type: "string" },
      "connect-concurrency": { type: "string" },
      timeout: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  ensureFdLimit();

  const scenarios = list<ScenarioName>(values.scenario, SCENARIO_NAMES, ["fanout-ws"], "scenario");
  const compareRoot = values["compare-root"] ? resolve(values["compare-root"]) : undefined;
  const systems = list<SystemName>(
    values.systems,
    SYSTEM_NAMES,
    SYSTEM_NAMES.filter((s) => s !== "edge-relay-base" || compareRoot),
    "system",
  );
  const path = (values.path ?? "direct") as PathChoice;
  if (path !== "direct" && path !== "proxy") throw new Error(`--path is direct or proxy, got ${values.path}`);
  const pick = (values.pick ?? "median") as "median" | "best";
  if (pick !== "median" && pick !== "best") throw new Error(`--pick is median or best, got ${values.pick}`);
  const nice = values.nice === undefined ? undefined : Number(values.nice);
  if (nice !== undefined) {
    if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new Error(`--nice takes -20…19, got ${values.nice}`);
    setPriority(nice); // the generator's main thread; the systems get it through \`nice -n\`
  }
  const relayLimits = (values["relay-limits"] ?? "bench") as RelayLimits;
  if (relayLimits !== "bench" && relayLimits !== "default") throw new Error(`--relay-limits is bench or default, got ${values["relay-limits"]}`);
  const vars = pairs(values.var);
  const timeout = num(values.timeout, "timeout");
  const params: Partial<ScenarioParams> = Object.fromEntries(
    Object.entries({
      subs: num(values.subs, "subs"),
      messages: num(values.messages, "messages"),
      size: num(values.size, "size"),
      modes: values.mode === undefined ? undefined : list<FanoutMode>(values.mode, ["acked", "rate"], [], "mode"),
      rate: num(values.rate, "rate"),
      ackedInFlight: num(values["in-flight"], "in-flight"),
      hotSubs: values["hot-subs"]?.split(",").map((n) => num(n.trim(), "hot-subs") as number),
      hotDeliveries: num(values["hot-deliveries"], "hot-deliveries"),
      hotRate: num(values["hot-rate"], "hot-rate"),
      channels: num(values.channels, "channels"),
      subsPerChannel: num(values["subs-per-channel"], "subs-per-channel"),
      messagesPerChannel: num(values["messages-per-channel"], "messages-per-channel"),
      concurrency: num(values.concurrency, "concurrency"),
      durationSec: num(values.duration, "duration"),
      spreadChannels: num(values["spread-channels"], "spread-channels"),
      idleWs: num(values["idle-ws"], "idle-ws"),
      idleSse: num(values["idle-sse"], "idle-sse"),
      idleSettleSec: num(values["idle-settle"], "idle-settle"),
      clients: num(values.clients, "clients"),
      sinceBack: num(values["since-back"], "since-back"),
      transports: values.transport === undefined ? undefined : list<Transport>(values.transport, ["ws", "sse"], [], "transport"),
      connectConcurrency: num(values["connect-concurrency"], "connect-concurrency"),
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    }).filter(([, v]) => v !== undefined),
  );

  // Ctrl-C or a crash: stop every process this run started, by its process group.
  let interrupted = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      process.stderr.write(`\n${signal}: stopping everything this run started …\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }

  const tty = process.stderr.isTTY;
  let lastProgress = 0;
  const progress = (text: string): void => {
    if (tty) {
      process.stderr.write(`\r\x1b[2K${text.slice(0, (process.stderr.columns || 120) - 1)}`);
    } else if (text && performance.now() - lastProgress > 2000) {
      lastProgress = performance.now();
      process.stderr.write(`  … ${text}\n`);
    }
  };
  const { fdLimit } = { fdLimit: openFilesLimit() };
  console.log(
    `bench: ${scenarios.join(", ")} on ${systems.join(", ")} (path: ${path}; relay limits: ${relayLimits}; open-files limit ${fdLimit.soft}/${fdLimit.hard})`,
  );
  const result = await runBench({
    scenarios,
    systems,
    params,
    path,
    vars,
    relayLimits,
    relayRoot: values["relay-root"] ? resolve(values["relay-root"]) : undefined,
    compareRoot,
    compareVars: pairs(values["compare-var"]),
    repeat: num(values.repeat, "repeat"),
    pick,
    nice,
    outDir: values.out,
    progress,
    log: (line) => console.log(line),
  });
  console.log(`\n${result.table}\n`);
  console.log(`JSON: ${result.jsonPath}\nSVG:  ${result.svgPath}`);
  const bad = result.rows.filter((r) => r.loss > 0 || r.duplicates > 0 || incomplete(r));
  process.exitCode = bad.length > 0 ? 1 : 0;
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  await stopAll();
  process.exit(1);
});
