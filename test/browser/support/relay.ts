import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** A relay started by `scripts/dev.mjs` (workerd, no inspector) in its own process group. */
export interface LocalRelay {
  url: string;
  port: number;
  persistTo: string;
  /** SIGTERM to the group (dev.mjs disposes workerd), SIGKILL after a grace; resolves once all are gone. */
  stop(): Promise<void>;
  /** SIGKILL to the whole group: a crash. Resolves once every member is gone and the port is free. */
  crash(): Promise<void>;
  output(): string;
}

export const ROOT = resolve(import.meta.dirname, "../../..");
const READY_TIMEOUT_MS = 60_000;
const GRACE_MS = 5_000;
const GONE_TIMEOUT_MS = 10_000;

/** Groups started here, killed if the test process goes away first. */
const groups = new Set<number>();
process.once("exit", () => {
  for (const pgid of groups) signal(pgid, "SIGKILL");
});

/**
 * Starts a relay on 127.0.0.1 and resolves once `/healthz` answers. Pass `port` and `persistTo`
 * to start it again where a crashed one was, on the same state.
 */
export async function startRelay(options: { port?: number; persistTo?: string; vars?: Record<string, string> } = {}): Promise<LocalRelay> {
  const port = options.port ?? (await freePort());
  const persistTo = options.persistTo ?? (await mkdtemp(join(tmpdir(), "edge-relay-browser-")));
  const args = ["scripts/dev.mjs", "--port", String(port), "--persist-to", persistTo];
  for (const [name, value] of Object.entries(options.vars ?? {})) args.push("--var", `${name}:${value}`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
  });
  const pgid = child.pid;
  if (pgid === undefined) throw new Error("could not spawn scripts/dev.mjs");
  groups.add(pgid);
  let output = "";
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString("utf8")).slice(-32_768);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = exitOf(child);

  const url = `http://127.0.0.1:${port}`;
  const end = async (how: NodeJS.Signals): Promise<void> => {
    if (!groups.has(pgid)) return;
    signal(pgid, how);
    if (how === "SIGTERM" && !(await gone(pgid, GRACE_MS))) signal(pgid, "SIGKILL");
    await Promise.race([exited, sleep(GONE_TIMEOUT_MS)]);
    if (!(await gone(pgid, GONE_TIMEOUT_MS))) throw new Error(`process group ${pgid} survived SIGKILL`);
    groups.delete(pgid);
    await waitForPortFree(port);
  };
  const relay: LocalRelay = { url, port, persistTo, stop: () => end("SIGTERM"), crash: () => end("SIGKILL"), output: () => output };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return relay;
    } catch {
      // Not listening yet.
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await relay.stop().catch(() => {});
      throw new Error(`relay on ${url} did not become healthy\n--- output ---\n${output}`);
    }
    await sleep(200);
  }
}

/** Removes a persist directory once every relay using it is stopped. */
export async function removeState(persistTo: string): Promise<void> {
  await rm(persistTo, { recursive: true, force: true });
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return fail(new Error("no port"));
      server.close(() => done(address.port));
    });
  });
}

async function waitForPortFree(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await canBind(port))) {
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

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once("exit", () => done());
  });
}

function signal(pgid: number, name: NodeJS.Signals): void {
  try {
    process.kill(-pgid, name);
  } catch {
    // The group is already gone.
  }
}

async function gone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Publishes over HTTP until the relay stores it: the same Idempotency-Key on every attempt, so a
 * publish whose answer a crash swallowed is stored once. Gives up after `timeoutMs`.
 */
export async function publishSurely(url: string, channel: string, data: string, key: string, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/v1/channels/${encodeURIComponent(channel)}/messages`, {
        method: "POST",
        headers: { "Idempotency-Key": key },
        body: data,
        signal: AbortSignal.timeout(5000),
      });
      if (response.status === 201) return ((await response.json()) as { id: string }).id;
      last = `HTTP ${response.status}: ${await response.text()}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`could not publish ${data} to ${channel}: ${last}`);
}
