// The systems under test: how each one is started on a free port with a temporary state
// directory, where its URLs are, which of its processes to measure, and how it is stopped.
import { spawn } from "node:child_process";
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../test/support/relay";
import { listeningPorts, processInfo, processTree } from "./proc";

export const ROOT = resolve(import.meta.dirname, "../..");
const BASELINES = join(ROOT, "bench/baselines");

/**
 * "edge-relay-batch": Edge Relay with WebSocket subscribers that take batch frames (`?frames=batch`,
 * what the SDK asks for), in a process of its own. "edge-relay-base": a second Edge Relay from
 * another checkout (`compareRoot`), to A/B a change in one run. "edge-relay-hot1" / "edge-relay-hot8":
 * the hot-channel scenario's channel served by the room alone or through 8 shards (`hotShards`).
 */
export const SYSTEM_NAMES = ["edge-relay", "edge-relay-batch", "partyserver", "node-ws", "edge-relay-base", "edge-relay-hot1", "edge-relay-hot8"] as const;
export type SystemName = (typeof SYSTEM_NAMES)[number];
export type Transport = "ws" | "sse";

/**
 * `direct`: the Worker's own workerd port (what production has: no dev proxy in front).
 * `proxy`: the port given to wrangler, i.e. wrangler's ProxyWorker, a second workerd that
 * forwards every request and frame to the Worker's workerd.
 */
export type PathChoice = "direct" | "proxy";

export interface SystemUrls {
  publish: string;
  ws: string;
  sse: string;
  /** Channel info (`GET /v1/channels/{c}`), where the relay has it. */
  info?: string;
}

interface SystemSpec {
  name: SystemName;
  description: string;
  transports: readonly Transport[];
  /** Runs under wrangler/workerd (a proxy port and a direct port), or a plain Node process. */
  workerd: boolean;
  command(port: number, stateDir: string, options: StartOptions): { args: string[]; cwd: string };
  urls(base: string, channel: string): SystemUrls;
  /** Worker vars this system always runs with (the run's own `--var`s go on top; startSystem merges them). */
  vars?: Record<string, string>;
  /**
   * Set on the systems the hot-channel scenario compares, and only there: how many objects serve
   * its channels (1: the room alone; N: HOT_CHANNELS at N shards).
   */
  hotShards?: number;
}

const v1Urls = (base: string, channel: string): SystemUrls => {
  const c = `${base}/v1/channels/${encodeURIComponent(channel)}`;
  return { publish: `${c}/messages`, ws: `${c.replace(/^http/, "ws")}/ws`, sse: `${c}/events`, info: c };
};

/** The SDK's mode: WebSocket subscribers take batch frames. */
const batchUrls = (base: string, channel: string): SystemUrls => {
  const urls = v1Urls(base, channel);
  return { ...urls, ws: `${urls.ws}?frames=batch` };
};

const relayCommand =
  (rootOf: (options: StartOptions) => string): SystemSpec["command"] =>
  (port, stateDir, options) => {
    const limits = options.relayLimits ?? "bench";
    const vars = { ...(limits === "bench" ? BENCH_VARS : {}), ...options.vars };
    const root = rootOf(options);
    return {
      // scripts/dev.mjs reads ./wrangler.toml in its working directory: a snapshot of the relay.
      cwd: relaySnapshot(root, stateDir, limits),
      args: [
        join(root, "scripts/dev.mjs"),
        "--port",
        String(port),
        "--persist-to",
        join(stateDir, "state"),
        ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
      ],
    };
  };

/** The hot-channel scenario names its channels `${HOT_CHANNEL_PREFIX}-…`; the hot systems configure that pattern. */
export const HOT_CHANNEL_PREFIX = "bench-hot";

/**
 * Edge Relay with the hot-channel scenario's channels served by `shards` objects: `HOT_CHANNELS`
 * names them (at 1 shard the rule keeps them in the room alone), `FANOUT_AFTER=0` keeps the relay
 * from spreading a big channel by itself, so the shard count is the only difference. WebSocket
 * subscribers take batch frames, as the SDK's do.
 */
function hotRelay(name: SystemName, shards: number): SystemSpec {
  const vars = { HOT_CHANNELS: `${HOT_CHANNEL_PREFIX}-*:${shards}`, FANOUT_AFTER: "0" };
  return {
    name,
    description: `Edge Relay as edge-relay-batch, the hot-channel scenario's channels ${shards === 1 ? "in the room alone" : `through ${shards} shards`}`,
    transports: ["ws"],
    workerd: true,
    command: relayCommand((options) => options.relayRoot ?? ROOT),
    urls: batchUrls,
    vars,
    hotShards: shards,
  };
}

export const SYSTEMS: Record<SystemName, SystemSpec> = {
  "edge-relay": {
    name: "edge-relay",
    description: "Edge Relay (scripts/dev.mjs: wrangler unstable_startWorker, inspector off)",
    transports: ["ws", "sse"],
    workerd: true,
    command: relayCommand((options) => options.relayRoot ?? ROOT),
    urls: v1Urls,
  },
  "edge-relay-batch": {
    name: "edge-relay-batch",
    description: "Edge Relay as edge-relay, its WebSocket subscribers taking batch frames (?frames=batch, the SDK's mode)",
    transports: ["ws"],
    workerd: true,
    command: relayCommand((options) => options.relayRoot ?? ROOT),
    urls: batchUrls,
  },
  partyserver: {
    name: "partyserver",
    description: "PartyServer room, hibernation on (bench/baselines/partyserver, unstable_startWorker, inspector off)",
    transports: ["ws", "sse"],
    workerd: true,
    command: (port, stateDir) => ({
      cwd: join(BASELINES, "partyserver"),
      args: [join(BASELINES, "partyserver/start.mjs"), "--port", String(port), "--persist-to", join(stateDir, "state")],
    }),
    urls: (base, channel) => {
      const c = `${base}/parties/room/${encodeURIComponent(channel)}`;
      return { publish: `${c}/messages`, ws: c.replace(/^http/, "ws"), sse: `${c}/events` };
    },
  },
  "node-ws": {
    name: "node-ws",
    description: "plain Node ws + http broadcast server (bench/baselines/node-ws), one process",
    transports: ["ws", "sse"],
    workerd: false,
    command: (port) => ({ cwd: ROOT, args: [join(BASELINES, "node-ws/server.mjs"), "--port", String(port)] }),
    urls: v1Urls,
  },
  "edge-relay-base": {
    name: "edge-relay-base",
    description: "Edge Relay from another checkout (--compare-root), run exactly like edge-relay",
    transports: ["ws", "sse"],
    workerd: true,
    command: relayCommand((options) => {
      if (!options.compareRoot) throw new Error("edge-relay-base needs --compare-root DIR");
      return options.compareRoot;
    }),
    urls: v1Urls,
  },
  "edge-relay-hot1": hotRelay("edge-relay-hot1", 1),
  "edge-relay-hot8": hotRelay("edge-relay-hot8", 8),
};

/**
 * "bench" raises the relay's per-client limits, which would otherwise stop one load generator on
 * one address long before the scenario sizes: MAX_CONNECTIONS_PER_IP (1000 by default) and the
 * PUBLISH_RATE_LIMITER binding (1000 publishes per 10 s). Both checks stay on the request path,
 * so their cost is measured. "default" runs the repo's wrangler.toml as it is.
 */
export type RelayLimits = "bench" | "default";

export const BENCH_VARS: Record<string, string> = { MAX_CONNECTIONS_PER_IP: "1000000" };
export const BENCH_PUBLISH_RATE_LIMIT = 1_000_000_000;

/**
 * A snapshot of the relay (src/, public/, scripts/ for its build, wrangler.toml, package.json, tsconfig.json) in `dir`,
 * so edits in the work tree while a run goes on neither reload the Worker (wrangler watches its
 * sources and assets) nor change what is measured. With "bench" limits, the publish rate limit
 * is raised to BENCH_PUBLISH_RATE_LIMIT (the binding's `limit` is not a var).
 */
function relaySnapshot(root: string, stateDir: string, limits: RelayLimits): string {
  const dir = join(stateDir, "relay");
  mkdirSync(dir, { recursive: true });
  for (const entry of ["src", "public", "scripts", "package.json", "tsconfig.json", "worker-configuration.d.ts"]) {
    if (existsSync(join(root, entry))) cpSync(join(root, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  let text = readFileSync(join(root, "wrangler.toml"), "utf8");
  if (limits === "bench") text = text.replace(/(simple\s*=\s*\{\s*limit\s*=\s*)\d+/g, `$1${BENCH_PUBLISH_RATE_LIMIT}`);
  writeFileSync(join(dir, "wrangler.toml"), text);
  return dir;
}

export interface RunningSystem {
  name: SystemName;
  spec: SystemSpec;
  /** Leader of the process group that holds everything this system runs. */
  pid: number;
  /** The base URL every client of this run uses (updated by `ensureUp` after a restart). */
  base: string;
  /** Which port that is, in words, for the report. */
  pathLabel: string;
  /** The process that holds the connections (the Worker's workerd, or the Node server). */
  workerPid: number;
  /** wrangler's ProxyWorker workerd, when there is one. */
  proxyPid: number | undefined;
  urls(channel: string): SystemUrls;
  /** Every live process of this system. */
  pids(): number[];
  /**
   * Checks the system still answers where it did; if wrangler restarted its Worker (it does on
   * source or dependency changes), finds the new port. Resolves with whether it had restarted.
   */
  ensureUp(): Promise<boolean>;
  /**
   * Resolves once the system answers /healthz within QUIET_MS, i.e. it has worked off what the
   * last case left behind (thousands of closes take workerd seconds), or after `timeoutMs`; with
   * whether it got there.
   */
  quiet(timeoutMs?: number): Promise<boolean>;
  /** Last lines of the system's own output (stdout and stderr). */
  logTail(): string;
  logFile: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  path?: PathChoice;
  /** Extra Worker vars for Edge Relay. */
  vars?: Record<string, string>;
  relayLimits?: RelayLimits;
  /**
   * Another checkout of Edge Relay to measure instead of this one (with node_modules installed
   * or linked): compare a change against its base in one run of the same generator.
   */
  relayRoot?: string;
  /** The checkout "edge-relay-base" runs. */
  compareRoot?: string;
  /** Scheduling priority (nice value, negative = higher; root only) for the system's processes. */
  nice?: number;
  /** Where the system's output goes. */
  logDir: string;
  readyTimeoutMs?: number;
}

/** Process groups started here and not yet stopped: killed if this process exits early. */
const running = new Map<number, () => Promise<void>>();
process.once("exit", () => {
  for (const pgid of running.keys()) signalGroup(pgid, "SIGKILL");
});

/** Stops everything still running (Ctrl-C, errors). */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...running.values()].map((stop) => stop()));
}

export async function startSystem(name: SystemName, options: StartOptions): Promise<RunningSystem> {
  const spec = SYSTEMS[name];
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const { args, cwd } = spec.command(port, stateDir, { ...options, vars: { ...spec.vars, ...options.vars } });
  const logFile = join(options.logDir, `${name}-${port}.log`);
  const log = createWriteStream(logFile);
  let tail = "";

  // `nice -n N node …` execs node: same pid, and every child (workerd, esbuild) inherits the priority.
  const [command, commandArgs] = options.nice ? ["nice", ["-n", String(options.nice), process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(command, commandArgs, {
    cwd,
    detached: true, // its own process group: workerd and esbuild children included
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_CI_DISABLE_CONFIG_WATCHING: "true", NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name}`);
  const collect = (chunk: Buffer): void => {
    log.write(chunk);
    tail = (tail + chunk.toString("utf8")).slice(-8192);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let exited = false;
  const exit = new Promise<void>((done) =>
    child.once("exit", () => {
      exited = true;
      done();
    }),
  );

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    signalGroup(pid, "SIGTERM");
    const leaderGone = await Promise.race([exit.then(() => true), sleep(5_000).then(() => false)]);
    if (!leaderGone || !(await groupGone(pid, 5_000))) {
      signalGroup(pid, "SIGKILL");
      await groupGone(pid, 10_000);
    }
    running.delete(pid);
    log.end();
    rmSync(stateDir, { recursive: true, force: true });
  };
  running.set(pid, stop);

  try {
    const publicBase = `http://127.0.0.1:${port}`;
    await waitForHealth(publicBase, options.readyTimeoutMs ?? 60_000, () => exited);
    let base = publicBase;
    let pathLabel = `node process port ${port}`;
    let workerPid = pid;
    let workerPort = port;
    let proxyPid: number | undefined;
    if (spec.workerd) {
      const found = await findWorkerdPorts(pid, port);
      proxyPid = found.proxyPid;
      workerPid = found.workerPid;
      workerPort = found.workerPort;
      if ((options.path ?? "direct") === "direct") {
        base = `http://127.0.0.1:${found.workerPort}`;
        pathLabel = `Worker's own workerd port ${found.workerPort} (direct; wrangler's proxy on ${port} bypassed)`;
      } else {
        pathLabel = `wrangler's proxy port ${port} (ProxyWorker workerd → Worker's workerd on ${found.workerPort})`;
      }
      await waitForHealth(base, 10_000, () => exited);
    }
    const system: RunningSystem = {
      name,
      spec,
      pid,
      base,
      pathLabel,
      workerPid,
      proxyPid,
      urls: (channel) => spec.urls(system.base, channel),
      pids: () => processTree(pid),
      ensureUp: async () => {
        if (exited) throw new Error(`${name} exited`);
        if (!spec.workerd) return false;
        if (processInfo(system.workerPid) && (await healthy(system.base))) return false;
        // The same process still listening where it did is busy, not restarted: wait for it.
        if (processInfo(system.workerPid) && listeningPorts(system.workerPid).includes(workerPort)) {
          await waitForHealth(system.base, 120_000, () => exited);
          return false;
        }
        const found = await findWorkerdPorts(pid, port);
        system.workerPid = found.workerPid;
        system.proxyPid = found.proxyPid;
        workerPort = found.workerPort;
        if ((options.path ?? "direct") === "direct") {
          system.base = `http://127.0.0.1:${found.workerPort}`;
          system.pathLabel = `Worker's own workerd port ${found.workerPort} (direct; wrangler's proxy on ${port} bypassed)`;
        }
        await waitForHealth(system.base, 30_000, () => exited);
        return true;
      },
      quiet: async (timeoutMs = 120_000) => {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          const started = performance.now();
          if ((await healthy(system.base, 10_000)) && performance.now() - started < QUIET_MS) return true;
          await sleep(250);
        }
        return false;
      },
      logTail: () => tail,
      logFile,
      stop,
    };
    return system;
  } catch (error) {
    await stop();
    throw new Error(`${name} did not start: ${(error as Error).message}\n--- its output ---\n${tail}`);
  }
}

/**
 * wrangler runs two workerd processes: its ProxyWorker on the public port, and the Worker itself
 * on a port of its own. The Worker's is the workerd that listens elsewhere and answers /healthz.
 */
async function findWorkerdPorts(leader: number, publicPort: number): Promise<{ proxyPid: number | undefined; workerPid: number; workerPort: number }> {
  const deadline = Date.now() + 15_000;
  let seen = "";
  while (Date.now() < deadline) {
    let proxyPid: number | undefined;
    const candidates: Array<{ pid: number; port: number }> = [];
    for (const pid of processTree(leader)) {
      const info = processInfo(pid);
      if (info?.comm !== "workerd") continue;
      const ports = listeningPorts(pid);
      if (ports.includes(publicPort)) proxyPid = pid;
      else for (const port of ports) candidates.push({ pid, port });
    }
    seen = JSON.stringify({ proxyPid, candidates });
    for (const candidate of candidates) {
      if (await healthy(`http://127.0.0.1:${candidate.port}`)) return { proxyPid, workerPid: candidate.pid, workerPort: candidate.port };
    }
    await sleep(200);
  }
  throw new Error(`could not find the Worker's own workerd port (${seen})`);
}

/** A /healthz answer this fast says the system has nothing queued. */
const QUIET_MS = 250;

async function healthy(base: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

async function waitForHealth(base: string, timeoutMs: number, hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (hasExited()) throw new Error("the process exited");
    if (await healthy(base)) return;
    await sleep(150);
  }
  throw new Error(`${base}/healthz did not answer 200 within ${timeoutMs} ms`);
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (signalGroup(pgid, 0)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
