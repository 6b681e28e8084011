import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** A `wrangler dev` process this test started, and the handles to end it. */
export interface Relay {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** The `--persist-to` directory: pass it to a second relay to restart on the same state. */
  persistTo: string;
  /** Pid of the spawned process, which leads its own process group (workerd included). */
  pid: number;
  /**
   * SIGTERM to the process group, SIGKILL after a short bound; resolves once every member is gone.
   * Also removes the state directory if `startRelay` made it and no running relay uses it.
   */
  stop(): Promise<void>;
  /** SIGKILL to the process group (a crash); resolves once every member is gone and the port is free. Keeps the state. */
  kill9(): Promise<void>;
  /** What the process printed so far (stdout and stderr interleaved, the last 64 KiB). */
  output(): string;
}

export interface StartRelayOptions {
  /** Extra Worker vars, passed as `--var NAME:VALUE`. `ALLOW_ANONYMOUS:true` is always set. */
  vars?: Record<string, string>;
  /** Reuse a persistence directory (restart); a fresh temp dir otherwise (removed by `stop()`). */
  persistTo?: string;
  /** Listen on this port (restart on the same address); a free one otherwise. */
  port?: number;
  /** How long to wait for `GET /healthz` to answer 200. */
  readyTimeoutMs?: number;
  /** Extra environment variables for the relay's processes. */
  env?: Record<string, string>;
}

/** The repository's root. */
export const ROOT = resolve(import.meta.dirname, "../..");
/** What `npm run dev` runs: wrangler's dev server without the DevTools inspector. */
const DEV_SCRIPT = join(ROOT, "scripts/dev.mjs");
const OUTPUT_LIMIT = 64 * 1024;
const STOP_GRACE_MS = 5_000;
const GONE_TIMEOUT_MS = 10_000;

/** Process groups started here and not yet reaped; killed if the test process exits early. */
const running = new Set<number>();
/** State directories made here, with the pids of the running relays that use them. */
const madeDirs = new Map<string, Set<number>>();
process.once("exit", () => {
  for (const pgid of running) signalGroup(pgid, "SIGKILL");
});

/**
 * Starts the relay as `npm run dev` does (wrangler's dev server) on 127.0.0.1 and resolves once `/healthz` answers 200.
 *
 * @example
 * const relay = await startRelay({ vars: { HISTORY_LIMIT: "5" } });
 * await fetch(`${relay.url}/healthz`);
 * await relay.stop();
 */
export async function startRelay(options: StartRelayOptions = {}): Promise<Relay> {
  const port = options.port ?? (await freePort());
  const persistTo = options.persistTo ?? (await mkdtemp(join(tmpdir(), "edge-relay-e2e-")));
  if (options.persistTo === undefined) madeDirs.set(persistTo, new Set());
  const args = [
    DEV_SCRIPT,
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--persist-to",
    persistTo,
    ...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];

  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn wrangler dev: ${args.join(" ")}`);
  running.add(pid);
  madeDirs.get(persistTo)?.add(pid);

  let output = "";
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString("utf8")).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const url = `http://127.0.0.1:${port}`;
  const relay: Relay = {
    url,
    port,
    persistTo,
    pid,
    output: () => output,
    stop: async () => {
      if (!running.has(pid)) return;
      signalGroup(pid, "SIGTERM");
      const leaderGone = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
      // The leader may exit before workerd; anything left in the group after the grace is killed.
      if (!leaderGone || !(await groupGone(pid, STOP_GRACE_MS))) signalGroup(pid, "SIGKILL");
      await reap(pid, exited);
      const users = madeDirs.get(persistTo);
      users?.delete(pid);
      if (users?.size === 0) {
        madeDirs.delete(persistTo);
        await rm(persistTo, { recursive: true, force: true });
      }
    },
    kill9: async () => {
      if (!running.has(pid)) return;
      signalGroup(pid, "SIGKILL");
      await reap(pid, exited);
      madeDirs.get(persistTo)?.delete(pid);
      // A restart on the same address follows a crash.
      await waitForPortFree(port);
    },
  };

  try {
    await waitForHealth(url, options.readyTimeoutMs ?? 45_000, () => {
      if (hasExited) return "the process exited";
      // wrangler dev keeps running after a build error, waiting for an edit; don't wait 45 s for it.
      if (/Build failed/.test(output)) return "the Worker failed to build";
      return undefined;
    });
  } catch (error) {
    await relay.stop();
    throw new Error(`wrangler dev did not become healthy on ${url}: ${(error as Error).message}\n--- wrangler output ---\n${output}`);
  }
  return relay;
}

/** A port that was free a moment ago: bind to port 0, read it, close. */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return fail(new Error("no port"));
      server.close(() => done(address.port));
    });
  });
}

/** Waits until `port` on 127.0.0.1 can be bound again (after a relay on it died). */
export async function waitForPortFree(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await canBind(port)) return;
    if (Date.now() > deadline) throw new Error(`port ${port} still in use after ${timeoutMs} ms`);
    await sleep(100);
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

async function waitForHealth(url: string, timeoutMs: number, failure: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    const failed = failure();
    if (failed !== undefined) throw new Error(`${failed} (${last})`);
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = String((error as Error).cause ?? error);
    }
    await sleep(150);
  }
  throw new Error(`timed out after ${timeoutMs} ms (${last})`);
}

/** Waits for the leader's exit and for every other member of its group to be gone. */
async function reap(pgid: number, exited: Promise<void>): Promise<void> {
  await Promise.race([exited, sleep(GONE_TIMEOUT_MS)]);
  if (!(await groupGone(pgid, GONE_TIMEOUT_MS))) {
    signalGroup(pgid, "SIGKILL");
    if (!(await groupGone(pgid, GONE_TIMEOUT_MS))) throw new Error(`process group ${pgid} survived SIGKILL`);
  }
  running.delete(pgid);
}

async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!signalGroup(pgid, 0)) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

/** Signals our own process group; false when the group no longer exists. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Checks `predicate` every 20 ms until it holds; throws, naming `what`, after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * The Worker's own listener, behind wrangler's dev server. `relay.url` is a proxy Worker in a
 * workerd of its own that forwards every request to this one; that proxy keeps reading a streamed
 * body whose client has gone (its request to the Worker is never cancelled), so from the relay's
 * side such an SSE client is still connected and reading. Tests of what the relay does when a
 * client leaves connect here, as clients in production reach the Worker without that proxy.
 * Linux only: finds the 127.0.0.1 listeners of the relay's process group in /proc and asks each
 * for `/healthz`.
 */
export async function directUrl(relay: Relay): Promise<string> {
  for (const port of await innerPorts(relay)) {
    const url = `http://127.0.0.1:${port}`;
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      const text = await response.text();
      if (response.status === 200 && text.includes('"ok":true')) return url;
    } catch {
      // Another listener of the group (wrangler's own servers); try the next.
    }
  }
  throw new Error(`no listener of process group ${relay.pid} answers /healthz besides ${relay.url}`);
}

/** The ports the relay's process group listens on at 127.0.0.1, besides `relay.port` (Linux: /proc). */
export async function innerPorts(relay: Relay): Promise<number[]> {
  const inodes = new Set<string>();
  for (const pid of await groupMembers(relay.pid)) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    }
  }
  const ports = new Set<number>();
  for (const line of (await readFile("/proc/net/tcp", "utf8")).split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [address, port] = (fields[1] ?? "").split(":");
    // 0A: listening; 0100007F: 127.0.0.1.
    if (address === "0100007F" && fields[3] === "0A" && inodes.has(fields[9] ?? "")) ports.add(Number.parseInt(port ?? "", 16));
  }
  ports.delete(relay.port);
  return [...ports];
}

/** The pids whose process group is `pgid` (Linux: /proc). */
export async function groupMembers(pgid: number): Promise<number[]> {
  const members: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const pgrp = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2];
    if (Number(pgrp) === pgid) members.push(Number(entry));
  }
  return members;
}

/** Removes a state directory a test passed around itself (restarts), once no relay uses it. */
export async function removeState(persistTo: string): Promise<void> {
  await rm(persistTo, { recursive: true, force: true });
}
