/**
 * The soak: a relay (scripts/dev.mjs, the lean local server) holds many connections, half
 * WebSocket and half SSE, for a long time while messages are published at a steady rate. Every
 * 30 s it prints open connections, errors, deliveries and the relay process tree's RSS; at the end
 * a verdict: no errors, every connection got every message of its channel once and in order, and
 * memory stayed flat (the mean RSS of the last third of the hold within `--growth` of the first
 * third, after a warm-up).
 *
 *   npx tsx test/faults/soak.ts [--minutes 10] [--connections 5000] [--rate 5] [--channels 10] [--ws-share 0.5] [--growth 0.1] [--direct] [--heap] [--force]
 *
 * `--heap` also reads the relay's live JavaScript heap every 30 s through workerd's inspector (a
 * full collection, then what is left; test/faults/heap.ts) and holds it to the same bound: RSS
 * cannot tell what the relay keeps from garbage not collected yet. The forced collections lower
 * RSS too, so judge RSS on a run without `--heap`.
 *
 * File descriptors: the relay inherits this process's `ulimit -n`, and the runtime that fronts its
 * port (wrangler's proxy, which scripts/dev.mjs starts too) holds about 6 per connection; past the
 * limit it dies and takes every connection with it. `--direct` connects to the Worker's own
 * listener instead, as production has no such proxy (about 1 descriptor per connection there).
 * The soak refuses a run that cannot fit (`--force` starts it anyway, to watch that happen).
 *
 * Exits 0 on a passing verdict, 1 on a failing one, 2 when it refused to start. Everything runs
 * on 127.0.0.1.
 */
import { readFileSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { channelUrl, publishOk, uniqueChannel } from "../support/clients";
import { directUrl, groupMembers, type Relay, removeState, sleep, startRelay } from "../support/relay";
import { inspectableRuntime, RelayHeap } from "./heap";

interface SoakOptions {
  minutes: number;
  connections: number;
  /** Publishes per second, over all channels. */
  rate: number;
  channels: number;
  /** The share of connections that are WebSockets; the rest are SSE streams. */
  wsShare: number;
  /** Largest allowed relative RSS growth, last third against first third. */
  growth: number;
  /** Connect to the Worker's own listener, past wrangler's dev proxy. */
  direct: boolean;
  /** Read the relay's live heap (after a forced collection) every 30 s. */
  heap: boolean;
  /** Run even when the open-files limit cannot fit the connections. */
  force: boolean;
}

const REPORT_EVERY_MS = 30_000;
const SAMPLE_EVERY_MS = 5_000;
/** Connections being opened at once during the ramp. */
const RAMP_CONCURRENCY = 50;
const CONNECT_TIMEOUT_MS = 30_000;
const DRAIN_TIMEOUT_MS = 60_000;
/** Descriptors the relay holds per client connection: measured, 6 in the runtime that fronts its port, about 1 on the Worker's own (2 to spare). */
const RELAY_FDS_PER_CONNECTION = { proxy: 6, direct: 2 };
/** Descriptors the relay holds with no connection at all, with room to spare. */
const FD_HEADROOM = 1_000;

function readOptions(): SoakOptions {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string", default: "10" },
      connections: { type: "string", default: "5000" },
      rate: { type: "string", default: "5" },
      channels: { type: "string", default: "10" },
      "ws-share": { type: "string", default: "0.5" },
      growth: { type: "string", default: "0.1" },
      direct: { type: "boolean", default: false },
      heap: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
    },
  });
  const options = {
    minutes: Number(values.minutes),
    connections: Number(values.connections),
    rate: Number(values.rate),
    channels: Number(values.channels),
    wsShare: Number(values["ws-share"]),
    growth: Number(values.growth),
  };
  for (const [name, value] of Object.entries(options)) if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  if (options.wsShare > 1) throw new Error("--ws-share is a fraction from 0 to 1");
  return { ...options, direct: values.direct, heap: values.heap, force: values.force };
}

// ---------------------------------------------------------------------------------------------
// Connections

/** One held connection and what it received. */
interface Held {
  kind: "ws" | "sse";
  channel: string;
  /** The id it resumes after (its channel's last id when it connected); -1 until known. */
  start: number;
  /** The last message id received, in order. */
  last: number;
  received: number;
  /** Set when something went wrong: an id out of sequence, an unexpected end. */
  error?: string;
  close(): void;
}

/** What the soak counts across connections. */
class Tally {
  open = 0;
  deliveries = 0;
  readonly errors: string[] = [];

  fail(held: Held, error: string): void {
    if (held.error !== undefined) return;
    held.error = error;
    this.errors.push(`${held.kind} ${held.channel}: ${error}`);
  }

  /** Records message `id` on `held`: each must be the one after the last. */
  deliver(held: Held, id: number): void {
    this.deliveries++;
    if (held.start < 0) return this.fail(held, `message ${id} before the greeting`);
    if (id !== held.last + 1) this.fail(held, `got id ${id} after ${held.last}`);
    held.last = Math.max(held.last, id);
    held.received++;
  }
}

/** Opens `/v1/channels/{c}/ws` and resolves once the room greeted it (`subscribed`). */
function openWs(url: string, channel: string, tally: Tally, closing: () => boolean): Promise<Held> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(channelUrl(url.replace(/^http/, "ws"), channel, "ws"), { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
    const held: Held = { kind: "ws", channel, start: -1, last: -1, received: 0, close: () => ws.terminate() };
    let greeted = false;
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string; id?: string; lastId?: string };
      if (frame.type === "subscribed") {
        held.start = held.last = Number(frame.lastId);
        greeted = true;
        tally.open++;
        resolve(held);
      } else if (frame.type === "message") {
        tally.deliver(held, Number(frame.id));
      }
    });
    ws.on("error", (error) => {
      if (!greeted) reject(error);
    });
    ws.on("close", (code) => {
      if (!greeted) return reject(new Error(`closed ${code} before the greeting`));
      tally.open--;
      if (!closing()) tally.fail(held, `WebSocket closed (${code})`);
    });
  });
}

/**
 * Opens `/v1/channels/{c}/events` with plain node:http (one socket each, no pooling) and resolves
 * once the id-only first event gives its start position. Messages are counted by their `id:`.
 */
function openSse(url: string, channel: string, tally: Tally, closing: () => boolean): Promise<Held> {
  return new Promise((resolve, reject) => {
    const request = get(channelUrl(url, channel, "events"), { agent: false, headers: { Accept: "text/event-stream" }, timeout: CONNECT_TIMEOUT_MS });
    const held: Held = { kind: "sse", channel, start: -1, last: -1, received: 0, close: () => request.destroy() };
    let positioned = false;
    let buffer = "";
    const onEvent = (block: string): void => {
      let id: string | undefined;
      let isMessage = false;
      for (const line of block.split("\n")) {
        if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("data:")) isMessage = true;
      }
      if (id === undefined) return;
      if (!positioned) {
        positioned = true;
        held.start = held.last = Number(id);
        tally.open++;
        return resolve(held);
      }
      if (isMessage) tally.deliver(held, Number(id));
    };
    request.on("timeout", () => request.destroy(new Error("SSE connect timeout")));
    request.on("error", (error) => {
      if (!positioned) reject(error);
    });
    request.on("response", (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`SSE answered ${res.statusCode}`));
      }
      request.setTimeout(0);
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          onEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      });
      res.on("close", () => {
        if (!positioned) return reject(new Error("SSE ended before its first event"));
        tally.open--;
        if (!closing()) tally.fail(held, "SSE stream ended");
      });
    });
  });
}

/** Opens every connection, `RAMP_CONCURRENCY` at a time; a connection that fails is an error. */
async function ramp(url: string, channels: string[], options: SoakOptions, tally: Tally, closing: () => boolean): Promise<Held[]> {
  const held: Held[] = [];
  const wsCount = Math.round(options.connections * options.wsShare);
  let next = 0;
  let lastLog = Date.now();
  const worker = async (): Promise<void> => {
    while (next < options.connections) {
      const index = next++;
      const channel = channels[index % channels.length]!;
      const open = index < wsCount ? openWs : openSse;
      try {
        held.push(await open(url, channel, tally, closing));
      } catch (error) {
        tally.errors.push(`connect ${index < wsCount ? "ws" : "sse"} ${channel}: ${String(error)}`);
      }
      if (Date.now() - lastLog > 5_000) {
        lastLog = Date.now();
        console.log(`soak: ramp ${held.length}/${options.connections} open, ${tally.errors.length} errors`);
      }
    }
  };
  await Promise.all(Array.from({ length: RAMP_CONCURRENCY }, worker));
  return held;
}

// ---------------------------------------------------------------------------------------------
// Memory

/** VmRSS of a process in bytes (0 when it is gone). */
function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The summed RSS of the relay's process group (node, wrangler's runtime, workerd). */
async function relayRss(relay: Relay): Promise<number> {
  return (await groupMembers(relay.pid)).reduce((sum, pid) => sum + rssOf(pid), 0);
}

/** The soft open-files limit of this process (its children, the relay included, inherit it). */
function openFilesLimit(): number {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  return match?.[1] === undefined || match[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(match[1]);
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)}MiB`;
const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);

/** A memory reading: RSS, or the live heap. */
interface Sample {
  at: number;
  bytes: number;
}

/**
 * Flat memory: after `warmupMs` of the hold, the mean of the last third of the samples is at most
 * `growth` above the mean of the first third.
 */
function memoryVerdict(samples: Sample[], holdStart: number, warmupMs: number, growth: number) {
  const settled = samples.filter((sample) => sample.at >= holdStart + warmupMs).map((sample) => sample.bytes);
  const third = Math.floor(settled.length / 3);
  if (third === 0) return { flat: false, first: 0, last: 0, change: Number.NaN, samples: settled.length };
  const first = mean(settled.slice(0, third));
  const last = mean(settled.slice(-third));
  const change = last / first - 1;
  return { flat: change <= growth, first, last, change, samples: settled.length };
}

// ---------------------------------------------------------------------------------------------
// The run

/** Publishes round-robin over `channels` at `rate` per second until `until`; counts acknowledged ids per channel. */
async function publishSteadily(url: string, channels: string[], rate: number, until: number, published: Map<string, number>, tally: Tally): Promise<void> {
  const interval = 1000 / rate;
  let due = Date.now();
  for (let seq = 0; Date.now() < until; seq++) {
    const channel = channels[seq % channels.length]!;
    try {
      await publishOk(url, channel, JSON.stringify({ seq, at: Date.now() }));
      published.set(channel, (published.get(channel) ?? 0) + 1);
    } catch (error) {
      tally.errors.push(`publish ${seq} to ${channel}: ${String(error)}`);
    }
    due += interval;
    await sleep(Math.max(0, due - Date.now()));
  }
}

/** Errors grouped by what they say, with channel names and numbers left out; most frequent first. */
function errorKinds(errors: readonly string[]): Array<[string, number]> {
  const kinds = new Map<string, number>();
  for (const error of errors) {
    const kind = error.replace(/soak-\d+-[a-z0-9]+-[a-z0-9]+/g, "<channel>").replace(/\d+/g, "N");
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 10);
}

/** Connections that did not get every message published on their channel after they connected. */
function incomplete(held: Held[], published: Map<string, number>): Held[] {
  return held.filter((h) => h.error === undefined && h.received !== (published.get(h.channel) ?? 0));
}

/** Whether the relay still answers `GET /healthz` with 200 (within 5 s). */
async function isHealthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Whether the open-files limit fits the run (printing why not); `--force` runs regardless. */
function fitsOpenFiles(options: SoakOptions, limit: number): boolean {
  const perConnection = RELAY_FDS_PER_CONNECTION[options.direct ? "direct" : "proxy"];
  const needed = options.connections * perConnection + FD_HEADROOM;
  if (limit >= needed) return true;
  const dies = Math.floor((limit - FD_HEADROOM) / perConnection);
  const message = `soak: the open-files limit is ${limit} (ulimit -n, which the relay inherits); ${options.connections} connections need about ${needed} in the relay's front runtime, which dies near ${dies} connections.`;
  if (options.force) {
    console.warn(`${message} Running anyway (--force).`);
    return true;
  }
  console.error(`${message} Raise the limit, pass fewer --connections, or add --force to watch it fail.`);
  return false;
}

const sum = (values: Iterable<number>): number => [...values].reduce((total, value) => total + value, 0);

/** One progress line: connections, errors, publishes and deliveries (with their rate since the last line), memory. */
function progressLine(at: number, tally: Tally, published: Map<string, number>, deliveriesPerSecond: number, rss: number, heap?: number): string {
  return `soak: t=${Math.round(at / 1000)}s open=${tally.open} errors=${tally.errors.length} published=${sum(published.values())} deliveries=${tally.deliveries} (${Math.round(deliveriesPerSecond)}/s) relay.rss=${mib(rss)}${heap === undefined ? "" : ` relay.heap=${mib(heap)}`} client.rss=${mib(process.memoryUsage().rss)}`;
}

/** What the hold measured: RSS every 5 s, the live heap every 30 s (with `--heap`). */
interface HoldRecord {
  holdStart: number;
  rss: Sample[];
  heap: Sample[];
}

/** Publishes for the hold while sampling the relay's memory and printing progress every 30 s. */
async function hold(
  relay: Relay,
  heap: RelayHeap | undefined,
  url: string,
  channels: string[],
  options: SoakOptions,
  tally: Tally,
  published: Map<string, number>,
): Promise<HoldRecord> {
  const holdStart = Date.now();
  const until = holdStart + options.minutes * 60_000;
  const record: HoldRecord = { holdStart, rss: [], heap: [] };
  let lastReport = holdStart;
  let lastDeliveries = 0;
  const publishing = publishSteadily(url, channels, options.rate, until, published, tally);
  while (Date.now() < until) {
    await sleep(Math.min(SAMPLE_EVERY_MS, Math.max(0, until - Date.now())));
    const rss = await relayRss(relay);
    record.rss.push({ at: Date.now(), bytes: rss });
    if (Date.now() - lastReport < REPORT_EVERY_MS && Date.now() < until) continue;
    const live = await heap?.liveBytes();
    if (live !== undefined) record.heap.push({ at: Date.now(), bytes: live });
    const perSecond = (tally.deliveries - lastDeliveries) / ((Date.now() - lastReport) / 1000);
    console.log(progressLine(Date.now() - holdStart, tally, published, perSecond, rss, live));
    lastReport = Date.now();
    lastDeliveries = tally.deliveries;
  }
  await publishing;
  return record;
}

/** Judges the run, prints what went wrong and the verdict line; true when it passed. */
async function verdict(
  relay: Relay,
  url: string,
  options: SoakOptions,
  held: Held[],
  tally: Tally,
  published: Map<string, number>,
  run: HoldRecord,
): Promise<boolean> {
  // Messages still on their way when publishing stopped.
  const drainUntil = Date.now() + DRAIN_TIMEOUT_MS;
  while (incomplete(held, published).length > 0 && Date.now() < drainUntil) await sleep(250);
  const missing = incomplete(held, published);
  const healthy = await isHealthy(url);
  if (!healthy) tally.errors.push("the relay no longer answers /healthz");
  const holdMs = options.minutes * 60_000;
  const warmupMs = Math.min(60_000, holdMs / 4);
  const memory = memoryVerdict(run.rss, run.holdStart, warmupMs, options.growth);
  const heap = options.heap ? memoryVerdict(run.heap, run.holdStart, warmupMs, options.growth) : undefined;
  const pass = tally.errors.length === 0 && held.length === options.connections && missing.length === 0 && memory.flat && heap?.flat !== false;

  for (const [kind, count] of errorKinds(tally.errors)) console.log(`soak: errors: ${count} × ${kind}`);
  for (const h of missing.slice(0, 5)) console.log(`soak: incomplete: ${h.kind} ${h.channel} got ${h.received} of ${published.get(h.channel) ?? 0}`);
  console.log(
    `soak: verdict ${pass ? "PASS" : "FAIL"} connections=${held.length}/${options.connections} open=${tally.open} healthy=${healthy} errors=${tally.errors.length} ` +
      `published=${sum(published.values())} deliveries=${tally.deliveries} incomplete=${missing.length} rss.firstThird=${mib(memory.first)} rss.lastThird=${mib(memory.last)} ` +
      `growth=${(memory.change * 100).toFixed(1)}% (limit ${(options.growth * 100).toFixed(0)}%, ${memory.samples} samples after ${Math.round(warmupMs / 1000)} s warm-up) memory=${memory.flat ? "flat" : "NOT flat"}` +
      (heap === undefined
        ? ""
        : ` heap.firstThird=${mib(heap.first)} heap.lastThird=${mib(heap.last)} heap.growth=${(heap.change * 100).toFixed(1)}% (${heap.samples} samples) heap=${heap.flat ? "flat" : "NOT flat"}`),
  );
  if (!pass)
    console.log(
      `soak: relay process group ${relay.pid}: ${(await groupMembers(relay.pid)).length} processes alive; its last output:\n${relay.output().slice(-4_000)}`,
    );
  return pass;
}

async function main(): Promise<number> {
  const options = readOptions();
  const limit = openFilesLimit();
  if (!fitsOpenFiles(options, limit)) return 2;
  console.log(
    `soak: ${options.connections} connections (${Math.round(options.wsShare * 100)}% WebSocket, the rest SSE) on ${options.channels} channels, ${options.rate} publishes/s, held ${options.minutes} min; open-files limit ${limit}`,
  );

  // Every connection comes from 127.0.0.1, so the per-address cap is off.
  const relay = await startRelay({ vars: { MAX_CONNECTIONS_PER_IP: "0" }, env: options.heap ? inspectableRuntime() : {} });
  let heap: RelayHeap | undefined;
  let closing = false;
  const held: Held[] = [];
  const stopEverything = async (): Promise<void> => {
    closing = true;
    heap?.close();
    for (const h of held) h.close();
    await relay.stop();
    await removeState(relay.persistTo);
  };
  // Interrupted: the relay is a process group of its own, which would outlive this one.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void stopEverything().then(() => process.exit(130)));

  try {
    const tally = new Tally();
    const channels = Array.from({ length: options.channels }, (_, i) => uniqueChannel(`soak-${i}`));
    const rampStart = Date.now();
    const url = options.direct ? await directUrl(relay) : relay.url;
    if (options.heap) heap = await RelayHeap.attach(relay);
    held.push(...(await ramp(url, channels, options, tally, () => closing)));
    console.log(
      `soak: ${held.length} connections open after ${((Date.now() - rampStart) / 1000).toFixed(1)} s, ${tally.errors.length} errors; relay rss ${mib(await relayRss(relay))}`,
    );
    const published = new Map<string, number>();
    const run = await hold(relay, heap, url, channels, options, tally, published);
    return (await verdict(relay, url, options, held, tally, published, run)) ? 0 : 1;
  } finally {
    await stopEverything();
  }
}

process.exitCode = await main();
