// The scenarios of issue 6. Each one drives one running system with the shared clients and
// returns one row per case; the numbers come from the generator's own clock (one clock) and
// from /proc for the server side.
import {
  type ChannelInfo,
  channelInfo,
  Deliveries,
  makePayload,
  Publisher,
  type PublishResult,
  pool,
  Seen,
  type Subscriber,
  subscribeSse,
  subscribeWs,
} from "./clients";
import { type CpuSnapshot, cpuBetween, cpuSnapshot, cpuStallMicros, fdCount, openFilesLimit, RssSampler, rssOf } from "./proc";
import { type LatencySummary, round1, round2, summarize } from "./stats";
import { HOT_CHANNEL_PREFIX, type RunningSystem, type SystemName, sleep, type Transport } from "./systems";

export const SCENARIO_NAMES = ["fanout-ws", "fanout-sse", "many-channels", "publish-throughput", "idle", "resume-storm", "hot-channel"] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export type FanoutMode = "acked" | "rate";

export interface ScenarioParams {
  /** fan-out: subscribers on the one channel. */
  subs: number;
  /** fan-out: messages published. */
  messages: number;
  /** payload bytes. */
  size: number;
  modes: FanoutMode[];
  /** messages/s in "rate" mode. */
  rate: number;
  /** "acked" mode: publishes in flight, each waiting for its 201 before its lane sends the next. */
  ackedInFlight: number;
  /** hot-channel: subscriber counts, one case each (and per mode), on every shard count. */
  hotSubs: number[];
  /** hot-channel: deliveries per case (messages = this ÷ subscribers) … */
  hotDeliveries: number;
  /** … and deliveries/s in "rate" mode (messages/s = this ÷ subscribers). */
  hotRate: number;
  /** many-channels: channels × subscribers per channel, messages per channel. */
  channels: number;
  subsPerChannel: number;
  messagesPerChannel: number;
  /** publish-throughput: requests in flight, seconds per case, channels of the spread case. */
  concurrency: number;
  durationSec: number;
  spreadChannels: number;
  /** idle: connection targets. */
  idleWs: number;
  idleSse: number;
  /** idle: seconds to wait after connecting before reading memory (lets rooms hibernate). */
  idleSettleSec: number;
  /** resume-storm: clients, messages back, transports. */
  clients: number;
  sinceBack: number;
  transports: Transport[];
  /** Subscribers connecting at once while a scenario sets up. */
  connectConcurrency: number;
  /** Longest wait for deliveries after the last publish, ms. */
  timeoutMs: number;
}

export const DEFAULT_PARAMS: ScenarioParams = {
  subs: 1000,
  messages: 200,
  size: 256,
  modes: ["acked", "rate"],
  rate: 50,
  ackedInFlight: 8,
  hotSubs: [1000, 5000],
  hotDeliveries: 200_000,
  hotRate: 20_000,
  channels: 500,
  subsPerChannel: 2,
  messagesPerChannel: 10,
  concurrency: 32,
  durationSec: 10,
  spreadChannels: 100,
  idleWs: 5000,
  idleSse: 2000,
  idleSettleSec: 12,
  clients: 1000,
  sinceBack: 100,
  transports: ["ws", "sse"],
  connectConcurrency: 50,
  timeoutMs: 60_000,
};

export interface ConnectStats {
  count: number;
  failed: number;
  totalMs: number;
  p50: number;
  p99: number;
  max: number;
  firstError?: string;
}

export interface CpuSummary {
  /** % of one core, over the measured window. */
  serverTotal: number;
  hottestThread: number;
  hottestThreadName: string;
  worker: number;
  proxy: number | null;
  loadgen: number;
  /** % of the window in which some task on the machine waited for a CPU (PSI); null without PSI. */
  stall: number | null;
  /** Length of the measured window; tick-based CPU numbers mean little under ~1 s. */
  windowMs: number;
}

export interface IdleDetail {
  target: number;
  reached: number;
  workerRssBeforeMB: number;
  workerRssAfterMB: number;
  /** Worker RSS growth per connection, after the settle time (the headline) … */
  perConnectionKB: number;
  /** … and right after the last connection opened. */
  perConnectionAtOpenKB: number;
  proxyPerConnectionKB: number | null;
  treePerConnectionKB: number;
  workerFds: number;
  workerFdLimit: number;
  /** [connections, worker RSS MB] as they were opened. */
  curve: Array<[number, number]>;
  /** A broadcast to every idle connection at the end: did all get it? */
  broadcastLoss: number;
  broadcastMs: number | null;
}

/** What the room itself did per publish (hot-channel), from Edge Relay's channel info before and after the load. */
export interface RoomWork {
  /** Objects the channel's subscribers sit on: 1 is the room alone, more are shards following it. */
  shards: number;
  /** Shards following the room at the end of the load. */
  following: number;
  /** "sends": the room handed each message to each of its own subscribers; "calls": it pushed messages to shards. */
  unit: "sends" | "calls";
  /** Sends, or push calls, per acknowledged publish. */
  perPublish: number;
  /**
   * CPU time of the Worker's whole workerd process (the Worker, the room, the shards: locally one
   * thread runs every Durable Object) over the load window, ms per acknowledged publish.
   */
  workerCpuMsPerPublish: number | null;
}

export interface Row extends DeliveryTally {
  scenario: ScenarioName;
  case: string;
  system: SystemName;
  transport: Transport | "-";
  path: string;
  subscribers: number;
  channels: number;
  /** Publishes attempted, answered 201, and not. */
  published: number;
  acked: number;
  publishErrors: number;
  publishErrorSample?: string;
  expectedDeliveries: number;
  durationMs: number;
  deliveriesPerSec: number | null;
  publishPerSec: number | null;
  /** What `latency` measures in this row. */
  latencyKind: string;
  latency: LatencySummary | null;
  /** POST round trips as the publisher saw them. */
  publishLatency: LatencySummary | null;
  connect: ConnectStats | null;
  peakRssTreeMB: number;
  peakRssWorkerMB: number;
  peakRssProxyMB: number | null;
  cpu: CpuSummary;
  idle?: IdleDetail;
  roomWork?: RoomWork;
  /** Which repetition this row is (1-based). */
  rep: number;
  /** With --repeat: this row is the median one of `n`; the headline metric ranged over min–max. */
  repeats?: { n: number; pick: "median" | "best"; metric: string; min: number; max: number };
  notes: string[];
}

export interface ScenarioContext {
  system: RunningSystem;
  params: ScenarioParams;
  progress: (text: string) => void;
  /** A run-unique prefix for channel names. */
  runId: string;
  /** Which repetition (1-based). */
  rep: number;
}

// ---------------------------------------------------------------------------------------------
// Measuring the server side

const MB = 1024 * 1024;

class Meter {
  readonly #system: RunningSystem;
  readonly #sampler: RssSampler;
  #cpu0: CpuSnapshot | undefined;
  #loadgen0: NodeJS.CpuUsage | undefined;
  #stall0: number | undefined;
  #cpu: CpuSummary | undefined;

  constructor(system: RunningSystem) {
    this.#system = system;
    this.#sampler = new RssSampler(system.pid);
  }

  /** Starts the CPU window (the load itself, not the set-up). */
  begin(): void {
    this.#cpu0 = cpuSnapshot(this.#system.pids());
    this.#loadgen0 = process.cpuUsage();
    this.#stall0 = cpuStallMicros();
  }

  end(): void {
    if (!this.#cpu0 || !this.#loadgen0) throw new Error("Meter.end() before begin()");
    const cpu1 = cpuSnapshot(this.#system.pids());
    const use = cpuBetween(this.#cpu0, cpu1);
    const seconds = Math.max(1e-3, (cpu1.at - this.#cpu0.at) / 1000);
    const lg = process.cpuUsage(this.#loadgen0);
    const stall1 = cpuStallMicros();
    const pct = (pid: number | undefined): number | null => (pid === undefined ? null : (use.processes.find((p) => p.pid === pid)?.percent ?? 0));
    this.#cpu = {
      serverTotal: use.totalPercent,
      hottestThread: use.hottestThread?.percent ?? 0,
      hottestThreadName: use.hottestThread ? `${use.hottestThread.name} (pid ${use.hottestThread.pid})` : "",
      worker: pct(this.#system.workerPid) ?? 0,
      proxy: pct(this.#system.proxyPid),
      loadgen: round1(((lg.user + lg.system) / 1e6 / seconds) * 100),
      windowMs: round1(seconds * 1000),
      stall: stall1 === undefined || this.#stall0 === undefined ? null : round1(((stall1 - this.#stall0) / 1e6 / seconds) * 100),
    };
  }

  finish(): Pick<Row, "peakRssTreeMB" | "peakRssWorkerMB" | "peakRssProxyMB" | "cpu"> {
    this.#sampler.sample();
    this.#sampler.stop();
    if (!this.#cpu) this.end();
    const peakOf = (pid: number | undefined): number | null => (pid === undefined ? null : round1((this.#sampler.peakByPid.get(pid)?.bytes ?? 0) / MB));
    return {
      peakRssTreeMB: round1(this.#sampler.peakTreeBytes / MB),
      peakRssWorkerMB: peakOf(this.#system.workerPid) ?? 0,
      peakRssProxyMB: peakOf(this.#system.proxyPid),
      cpu: this.#cpu as CpuSummary,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function channelName(ctx: ScenarioContext, what: string): string {
  return `${what}-${ctx.runId}-${Math.random().toString(36).slice(2, 7)}`;
}

async function connectMany(
  ctx: ScenarioContext,
  count: number,
  open: (i: number) => Promise<Subscriber>,
  label: string,
  concurrency = ctx.params.connectConcurrency,
): Promise<{ subscribers: Array<Subscriber | undefined>; stats: ConnectStats }> {
  const started = performance.now();
  const times: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let done = 0;
  const subscribers = await pool(count, concurrency, async (i) => {
    try {
      const sub = await open(i);
      times.push(sub.connectMs);
      return sub;
    } catch (error) {
      failed++;
      firstError ??= (error as Error).message;
      return undefined;
    } finally {
      done++;
      if (done % 100 === 0 || done === count) ctx.progress(`${label}: connected ${done - failed}/${count}${failed ? ` (${failed} failed)` : ""}`);
    }
  });
  const summary = summarize(times);
  return {
    subscribers,
    stats: {
      count: times.length,
      failed,
      totalMs: round1(performance.now() - started),
      p50: summary?.p50 ?? 0,
      p99: summary?.p99 ?? 0,
      max: summary?.max ?? 0,
      firstError,
    },
  };
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, onTick?: () => void): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  let lastTick = 0;
  while (!predicate()) {
    if (performance.now() > deadline) return false;
    if (onTick && performance.now() - lastTick > 1000) {
      lastTick = performance.now();
      onTick();
    }
    await sleep(10);
  }
  return true;
}

function closeAll(subscribers: Array<Subscriber | undefined>): void {
  for (const sub of subscribers) sub?.close();
}

function subscribeWith(ctx: ScenarioContext, transport: Transport, channel: string, seen: Seen, deliveries: Deliveries, since?: string): Promise<Subscriber> {
  const urls = ctx.system.urls(channel);
  const timeoutMs = 30_000;
  const resuming = (url: string): string => (since === undefined ? url : `${url}${url.includes("?") ? "&" : "?"}since=${since}`);
  if (transport === "ws") return subscribeWs(resuming(urls.ws), { seen, deliveries, timeoutMs });
  return subscribeSse(resuming(urls.sse), { seen, deliveries, timeoutMs });
}

interface DeliveryTally {
  deliveries: number;
  /** Acknowledged messages a live subscriber never received. */
  loss: number;
  duplicates: number;
  outOfOrder: number;
  /** Messages a subscriber should not have received (e.g. replayed before `since`). */
  unexpected: number;
  /** Subscribers the server closed before they had everything. */
  dropped: number;
}

/** Counts, over every subscriber, the acknowledged seqs it should have and did or did not get. */
function tally(subscribers: Array<Subscriber | undefined>, expectedSeqs: (i: number) => number[]): DeliveryTally {
  const t: DeliveryTally = { deliveries: 0, loss: 0, duplicates: 0, outOfOrder: 0, unexpected: 0, dropped: 0 };
  subscribers.forEach((sub, i) => {
    if (!sub) return;
    const want = expectedSeqs(i);
    let missing = 0;
    for (const seq of want) if (!sub.seen.has(seq)) missing++;
    t.loss += missing;
    t.deliveries += sub.seen.unique;
    t.duplicates += sub.seen.duplicates;
    t.outOfOrder += sub.seen.outOfOrder;
    t.unexpected += sub.seen.unexpected;
    if (missing > 0 && sub.closed()) t.dropped++;
  });
  return t;
}

function publishFailure(results: Array<PublishResult | undefined>): { errors: number; sample?: string } {
  const failed = results.filter((r): r is PublishResult => r !== undefined && r.status !== 201);
  const first = failed[0];
  return { errors: failed.length, sample: first ? `${first.status || "network"}: ${first.error ?? ""}`.slice(0, 160) : undefined };
}

function baseRow(
  ctx: ScenarioContext,
  scenario: ScenarioName,
  kase: string,
  transport: Transport | "-",
): Pick<Row, "scenario" | "case" | "system" | "transport" | "path" | "notes" | "rep"> {
  return { scenario, case: kase, system: ctx.system.name, transport, path: ctx.system.pathLabel, notes: [], rep: ctx.rep };
}

// ---------------------------------------------------------------------------------------------
// fanout-ws / fanout-sse: 1 publisher → N subscribers on one channel
// hot-channel: the same over WebSocket, on a channel the system serves through 1 or N shards

export function fanout(ctx: ScenarioContext, transport: Transport, mode: FanoutMode): Promise<Row> {
  const { subs, messages, rate } = ctx.params;
  return fanoutCase(ctx, transport, mode, {
    scenario: transport === "ws" ? "fanout-ws" : "fanout-sse",
    kase: modeLabel(mode, rate),
    subs,
    messages,
    rate,
    channel: `fanout-${transport}`,
    roomWork: false,
  });
}

export function hotChannel(ctx: ScenarioContext, subs: number, mode: FanoutMode): Promise<Row> {
  return fanoutCase(ctx, "ws", mode, {
    scenario: "hot-channel",
    kase: hotChannelCase(ctx.params, subs, mode),
    subs,
    ...hotLoad(ctx.params, subs),
    channel: HOT_CHANNEL_PREFIX,
    roomWork: true,
  });
}

/** A hot-channel case's name; it starts with the mode, as fanout's do ("rate …" rows are compared by latency). */
export function hotChannelCase(params: ScenarioParams, subs: number, mode: FanoutMode): string {
  return `${modeLabel(mode, hotLoad(params, subs).rate)}, ${subs} subs`;
}

/**
 * The hot-channel load at `subs` subscribers: the same deliveries per case (`hotDeliveries`) and,
 * in "rate" mode, per second (`hotRate`) at every size, so only the width of the fan-out changes.
 */
function hotLoad(params: ScenarioParams, subs: number): { messages: number; rate: number } {
  const width = Math.max(1, subs);
  return { messages: Math.max(1, Math.round(params.hotDeliveries / width)), rate: round2(params.hotRate / width) };
}

function modeLabel(mode: FanoutMode, rate: number): string {
  return mode === "acked" ? "acked" : `rate ${rate}/s`;
}

/** One fan-out measurement: what it reports as, how many subscribers and messages, on which channel. */
interface FanoutShape {
  scenario: ScenarioName;
  kase: string;
  subs: number;
  messages: number;
  /** Messages/s in "rate" mode. */
  rate: number;
  /** The channel name's prefix (the hot systems serve `bench-hot-*` through their shards). */
  channel: string;
  /** Also read what the room did per publish from channel info (Edge Relay only). */
  roomWork: boolean;
}

async function fanoutCase(ctx: ScenarioContext, transport: Transport, mode: FanoutMode, shape: FanoutShape): Promise<Row> {
  const { size, ackedInFlight, timeoutMs } = ctx.params;
  const { scenario, kase, subs, messages } = shape;
  const label = `${ctx.system.name} ${scenario} ${kase}`;
  const meter = new Meter(ctx.system);
  const channel = channelName(ctx, shape.channel);
  const deliveries = new Deliveries();

  const { subscribers, stats: connect } = await connectMany(
    ctx,
    subs,
    () => subscribeWith(ctx, transport, channel, new Seen(messages, messages), deliveries),
    label,
  );
  const live = subscribers.filter((s): s is Subscriber => s !== undefined);

  const publisher = new Publisher(mode === "acked" ? ackedInFlight : 512);
  const url = ctx.system.urls(channel).publish;
  const infoUrl = ctx.system.urls(channel).info;
  if (shape.roomWork && !infoUrl) throw new Error(`${ctx.system.name} has no channel info to read the room's work from`);
  const infoBefore = shape.roomWork && infoUrl ? await channelInfo(infoUrl) : undefined;
  const results: Array<PublishResult | undefined> = new Array(messages + 1);
  const ackedSeqs: number[] = [];
  const onResult = (seq: number, r: PublishResult): void => {
    results[seq] = r;
    if (r.status === 201) ackedSeqs.push(seq);
  };

  meter.begin();
  const started = performance.now();
  if (mode === "acked") {
    await pool(messages, ackedInFlight, async (i) => {
      const seq = i + 1;
      onResult(seq, await publisher.post(url, makePayload(seq, size)));
      if (seq % 50 === 0) ctx.progress(`${label}: published ${seq}/${messages}, ${deliveries.count} deliveries`);
    });
  } else {
    const inflight: Array<Promise<void>> = [];
    const interval = 1000 / shape.rate;
    for (let seq = 1; seq <= messages; seq++) {
      const wait = started + (seq - 1) * interval - performance.now();
      if (wait > 0) await sleep(wait);
      inflight.push(publisher.post(url, makePayload(seq, size)).then((r) => onResult(seq, r)));
      if (seq % 50 === 0) ctx.progress(`${label}: published ${seq}/${messages}, ${deliveries.count} deliveries`);
    }
    await Promise.all(inflight);
  }
  const publishedAt = performance.now();
  const acked = ackedSeqs.length;
  for (const sub of live) sub.seen.expect(acked);
  const complete = await waitUntil(
    () => live.every((s) => s.seen.doneAt !== undefined || s.closed()),
    timeoutMs,
    () => ctx.progress(`${label}: waiting, ${deliveries.count}/${acked * live.length} deliveries`),
  );
  meter.end();
  await sleep(300); // duplicates or stragglers would arrive right behind
  publisher.close();
  const infoAfter = infoBefore && infoUrl ? await channelInfo(infoUrl) : undefined;

  const t = tally(subscribers, () => ackedSeqs);
  const failure = publishFailure(results);
  const end = deliveries.count > 0 ? deliveries.lastAt : performance.now();
  const durationMs = end - started;
  const row: Row = {
    ...baseRow(ctx, scenario, kase, transport),
    subscribers: live.length,
    channels: 1,
    published: messages,
    acked,
    publishErrors: failure.errors,
    publishErrorSample: failure.sample,
    expectedDeliveries: acked * live.length,
    ...t,
    durationMs: round1(durationMs),
    deliveriesPerSec: deliveries.count > 0 ? Math.round(deliveries.count / (durationMs / 1000)) : null,
    publishPerSec: round1(messages / ((publishedAt - started) / 1000)),
    latencyKind: "publish→receive, ms",
    latency: summarize(deliveries.values()),
    publishLatency: summarize(results.filter((r): r is PublishResult => r !== undefined).map((r) => r.ms)),
    connect,
    ...meter.finish(),
  };
  if (infoBefore && infoAfter) {
    row.roomWork = roomWork(infoBefore, infoAfter, row);
    if (row.roomWork.unit === "sends" && Math.round(row.roomWork.perPublish) !== row.subscribers)
      row.notes.push(`the room handed ${row.roomWork.perPublish} messages per publish to ${row.subscribers} subscribers`);
    if (row.roomWork.shards > 1 && row.roomWork.following < row.roomWork.shards)
      row.notes.push(`only ${row.roomWork.following} of ${row.roomWork.shards} shards followed the room`);
  }
  if (mode === "acked") row.notes.push(`${ackedInFlight} publishes in flight`);
  if (!complete) row.notes.push(`timed out after ${timeoutMs} ms waiting for deliveries`);
  if (connect.failed) row.notes.push(`${connect.failed} subscribers failed to connect (${connect.firstError})`);
  if (publisher.retries) row.notes.push(`${publisher.retries} publishes re-sent after a kept-alive socket was closed under them`);
  closeAll(subscribers);
  await sleep(1000);
  return row;
}

/**
 * The room's work per publish between two reads of channel info: a channel served through shards
 * costs the room its push calls (what piled up goes in one call per shard); one it serves alone, a
 * send per subscriber (its delivery counter). CPU is the whole workerd process: one thread runs
 * every Durable Object here, so the room's share cannot be told apart.
 */
function roomWork(before: ChannelInfo, after: ChannelInfo, row: Row): RoomWork {
  const publishes = Math.max(1, row.acked);
  const cpuMs = row.cpu.windowMs >= 1000 ? round2((row.cpu.worker / 100) * row.cpu.windowMs) : null;
  const common = { workerCpuMsPerPublish: cpuMs === null ? null : round2(cpuMs / publishes) };
  if (after.fanout) {
    const calls = after.fanout.pushes - (before.fanout?.pushes ?? 0);
    return { shards: after.fanout.shards, following: after.fanout.following, unit: "calls", perPublish: round2(calls / publishes), ...common };
  }
  const sends = after.counters.delivered - before.counters.delivered;
  return { shards: 1, following: 0, unit: "sends", perPublish: round2(sends / publishes), ...common };
}

// ---------------------------------------------------------------------------------------------
// many-channels: C channels × S subscribers, publishes spread round-robin over the channels

export async function manyChannels(ctx: ScenarioContext, transport: Transport): Promise<Row> {
  const { channels, subsPerChannel, messagesPerChannel, size, concurrency, timeoutMs } = ctx.params;
  const label = `${ctx.system.name} many-channels ${transport}`;
  const meter = new Meter(ctx.system);
  const names = Array.from({ length: channels }, (_, i) => channelName(ctx, `mc${i}`));
  const total = channels * messagesPerChannel;
  const deliveries = new Deliveries();
  const channelOfSeq = (seq: number): number => (seq - 1) % channels;

  const { subscribers, stats: connect } = await connectMany(
    ctx,
    channels * subsPerChannel,
    (i) => subscribeWith(ctx, transport, names[i % channels] as string, new Seen(total, messagesPerChannel), deliveries),
    label,
  );
  const live = subscribers.filter((s): s is Subscriber => s !== undefined);
  const publisher = new Publisher(concurrency);
  const results: Array<PublishResult | undefined> = new Array(total + 1);
  const ackedByChannel: number[][] = names.map(() => []);

  meter.begin();
  const started = performance.now();
  let sent = 0;
  await pool(total, concurrency, async (i) => {
    const seq = i + 1;
    const c = channelOfSeq(seq);
    const r = await publisher.post(ctx.system.urls(names[c] as string).publish, makePayload(seq, size));
    results[seq] = r;
    if (r.status === 201) ackedByChannel[c]?.push(seq);
    if (++sent % 500 === 0) ctx.progress(`${label}: published ${sent}/${total}, ${deliveries.count} deliveries`);
  });
  const publishedAt = performance.now();
  for (const [i, sub] of subscribers.entries()) sub?.seen.expect(ackedByChannel[i % channels]?.length ?? 0);
  const acked = ackedByChannel.reduce((n, list) => n + list.length, 0);
  const complete = await waitUntil(
    () => live.every((s) => s.seen.doneAt !== undefined || s.closed()),
    timeoutMs,
    () => ctx.progress(`${label}: waiting, ${deliveries.count} deliveries`),
  );
  meter.end();
  await sleep(300);
  publisher.close();

  const t = tally(subscribers, (i) => ackedByChannel[i % channels] ?? []);
  const failure = publishFailure(results);
  const durationMs = (deliveries.count > 0 ? deliveries.lastAt : performance.now()) - started;
  const row: Row = {
    ...baseRow(ctx, "many-channels", `${channels}ch × ${subsPerChannel}`, transport),
    subscribers: live.length,
    channels,
    published: total,
    acked,
    publishErrors: failure.errors,
    publishErrorSample: failure.sample,
    expectedDeliveries: subscribers.reduce((n, sub, i) => n + (sub ? (ackedByChannel[i % channels]?.length ?? 0) : 0), 0),
    ...t,
    durationMs: round1(durationMs),
    deliveriesPerSec: deliveries.count > 0 ? Math.round(deliveries.count / (durationMs / 1000)) : null,
    publishPerSec: round1(total / ((publishedAt - started) / 1000)),
    latencyKind: "publish→receive, ms",
    latency: summarize(deliveries.values()),
    publishLatency: summarize(results.filter((r): r is PublishResult => r !== undefined).map((r) => r.ms)),
    connect,
    ...meter.finish(),
  };
  row.notes.push(`${concurrency} publishes in flight`);
  if (publisher.retries) row.notes.push(`${publisher.retries} publishes re-sent after a kept-alive socket was closed under them`);
  if (!complete) row.notes.push(`timed out after ${timeoutMs} ms waiting for deliveries`);
  if (connect.failed) row.notes.push(`${connect.failed} subscribers failed to connect (${connect.firstError})`);
  closeAll(subscribers);
  await sleep(1000);
  return row;
}

// ---------------------------------------------------------------------------------------------
// publish-throughput: POST/s with `concurrency` in flight, on one channel and spread over many

export async function publishThroughput(ctx: ScenarioContext, spread: boolean): Promise<Row> {
  const { concurrency, durationSec, size } = ctx.params;
  const channels = spread ? ctx.params.spreadChannels : 1;
  const label = `${ctx.system.name} publish-throughput ${channels}ch`;
  const meter = new Meter(ctx.system);
  const names = Array.from({ length: channels }, (_, i) => channelName(ctx, `pt${i}`));
  const publisher = new Publisher(concurrency);
  // Wake every room first, so the window measures publishing and not first-touch start-up.
  await pool(channels, concurrency, (i) => publisher.post(ctx.system.urls(names[i] as string).publish, makePayload(0, size)));

  const results: PublishResult[] = [];
  meter.begin();
  const started = performance.now();
  const stopAt = started + durationSec * 1000;
  let seq = 0;
  let lastReport = started;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stopAt) {
        const mine = ++seq;
        results.push(await publisher.post(ctx.system.urls(names[mine % channels] as string).publish, makePayload(mine, size)));
        if (performance.now() - lastReport > 1000) {
          lastReport = performance.now();
          ctx.progress(`${label}: ${results.length} POSTs, ${Math.round((results.length / (lastReport - started)) * 1000)}/s`);
        }
      }
    }),
  );
  const elapsed = performance.now() - started;
  meter.end();
  publisher.close();
  const acked = results.filter((r) => r.status === 201).length;
  const failure = publishFailure(results);
  const row: Row = {
    ...baseRow(ctx, "publish-throughput", spread ? `${channels} channels` : "1 channel", "-"),
    subscribers: 0,
    channels,
    published: results.length,
    acked,
    publishErrors: failure.errors,
    publishErrorSample: failure.sample,
    expectedDeliveries: 0,
    deliveries: 0,
    loss: 0,
    duplicates: 0,
    outOfOrder: 0,
    unexpected: 0,
    dropped: 0,
    durationMs: round1(elapsed),
    deliveriesPerSec: null,
    publishPerSec: round1((acked / elapsed) * 1000),
    latencyKind: "POST round trip, ms",
    latency: summarize(results.map((r) => r.ms)),
    publishLatency: summarize(results.map((r) => r.ms)),
    connect: null,
    ...meter.finish(),
  };
  row.notes.push(`${concurrency} POSTs in flight for ${durationSec} s`);
  if (publisher.retries) row.notes.push(`${publisher.retries} POSTs re-sent after a kept-alive socket was closed under them`);
  return row;
}

// ---------------------------------------------------------------------------------------------
// idle: hold as many connections as the target allows; memory per connection

export async function idle(ctx: ScenarioContext, transport: Transport): Promise<Row> {
  const target = transport === "ws" ? ctx.params.idleWs : ctx.params.idleSse;
  const label = `${ctx.system.name} idle ${transport}`;
  const { system } = ctx;
  const meter = new Meter(system);
  const channel = channelName(ctx, `idle-${transport}`);
  const deliveries = new Deliveries();
  const publisher = new Publisher(1);
  // Wake the room so its own start-up is not counted per connection.
  await publisher.post(system.urls(channel).publish, makePayload(0, ctx.params.size));
  await sleep(1500);
  const before = { worker: rssOf(system.workerPid), proxy: system.proxyPid ? rssOf(system.proxyPid) : 0, tree: treeRss(system) };

  const subscribers: Subscriber[] = [];
  const curve: Array<[number, number]> = [[0, round1(before.worker / MB)]];
  const batch = 250;
  let failed = 0;
  let firstError: string | undefined;
  const times: number[] = [];
  const started = performance.now();
  for (let opened = 0; opened < target && failed < Math.max(50, target * 0.02); ) {
    const n = Math.min(batch, target - opened);
    const { subscribers: got, stats } = await connectMany(
      ctx,
      n,
      () => subscribeWith(ctx, transport, channel, new Seen(1, 1), deliveries),
      `${label} (${opened + n}/${target})`,
    );
    for (const sub of got) if (sub) subscribers.push(sub);
    failed += stats.failed;
    firstError ??= stats.firstError;
    times.push(stats.p50);
    opened += n;
    curve.push([subscribers.length, round1(rssOf(system.workerPid) / MB)]);
    if (stats.failed === n) break; // nothing connects any more
  }
  const connectMs = performance.now() - started;
  const peakWorker = rssOf(system.workerPid);
  ctx.progress(`${label}: ${subscribers.length} open; waiting ${ctx.params.idleSettleSec} s (hibernation, GC) before reading memory`);
  await sleep(ctx.params.idleSettleSec * 1000);
  const after = { worker: rssOf(system.workerPid), proxy: system.proxyPid ? rssOf(system.proxyPid) : 0, tree: treeRss(system) };
  const workerFds = fdCount(system.workerPid);
  let workerFdLimit = 0;
  try {
    workerFdLimit = openFilesLimit(system.workerPid).soft;
  } catch {
    // The process is gone (crashed under the load): reported as such below.
  }
  const alive = subscribers.filter((s) => !s.closed());

  // Every idle connection still works: one broadcast must reach all of them.
  meter.begin();
  const bStart = performance.now();
  const r = await publisher.post(system.urls(channel).publish, makePayload(1, ctx.params.size));
  const complete = r.status === 201 && (await waitUntil(() => alive.every((s) => s.seen.doneAt !== undefined || s.closed()), ctx.params.timeoutMs));
  meter.end();
  const broadcastLoss = r.status === 201 ? alive.filter((s) => !s.seen.has(1)).length : alive.length;
  publisher.close();

  const n = Math.max(1, subscribers.length);
  const kb = (bytes: number): number => round1(bytes / 1024 / n);
  const row: Row = {
    ...baseRow(ctx, "idle", `${transport} ×${target}`, transport),
    subscribers: subscribers.length,
    channels: 1,
    published: 1,
    acked: r.status === 201 ? 1 : 0,
    publishErrors: r.status === 201 ? 0 : 1,
    publishErrorSample: r.status === 201 ? undefined : `${r.status}: ${r.error ?? ""}`,
    expectedDeliveries: alive.length,
    deliveries: deliveries.count,
    loss: broadcastLoss,
    duplicates: subscribers.reduce((s, x) => s + x.seen.duplicates, 0),
    outOfOrder: 0,
    unexpected: 0,
    dropped: subscribers.length - alive.length,
    durationMs: round1(connectMs),
    deliveriesPerSec: null,
    publishPerSec: null,
    latencyKind: "final broadcast to all, publish→receive, ms",
    latency: summarize(deliveries.values()),
    publishLatency: summarize([r.ms]),
    connect: { count: subscribers.length, failed, totalMs: round1(connectMs), p50: summarize(times)?.p50 ?? 0, p99: 0, max: 0, firstError },
    idle: {
      target,
      reached: subscribers.length,
      workerRssBeforeMB: round1(before.worker / MB),
      workerRssAfterMB: round1(after.worker / MB),
      perConnectionKB: kb(after.worker - before.worker),
      perConnectionAtOpenKB: kb(peakWorker - before.worker),
      proxyPerConnectionKB: system.proxyPid ? kb(after.proxy - before.proxy) : null,
      treePerConnectionKB: kb(after.tree - before.tree),
      workerFds,
      workerFdLimit,
      curve,
      broadcastLoss,
      broadcastMs: complete ? round1(performance.now() - bStart) : null,
    },
    ...meter.finish(),
  };
  if (subscribers.length < target) row.notes.push(`reached ${subscribers.length} of ${target}: ${firstError ?? "stopped"}`);
  if (!complete) row.notes.push("the final broadcast did not reach every idle connection in time");
  closeAll(subscribers);
  await sleep(2000);
  return row;
}

function treeRss(system: RunningSystem): number {
  return system.pids().reduce((sum, pid) => sum + rssOf(pid), 0);
}

// ---------------------------------------------------------------------------------------------
// resume-storm: N clients reconnect at once with `since` = lastId − K

export async function resumeStorm(ctx: ScenarioContext, transport: Transport): Promise<Row> {
  const { clients, sinceBack, size, timeoutMs } = ctx.params;
  const label = `${ctx.system.name} resume-storm ${transport}`;
  const meter = new Meter(ctx.system);
  const channel = channelName(ctx, `storm-${transport}`);
  const historyCount = sinceBack * 2;
  const publisher = new Publisher(8);
  const url = ctx.system.urls(channel).publish;
  let lastId = "0";
  let errors = 0;
  await pool(historyCount, 1, async (i) => {
    const r = await publisher.post(url, makePayload(i + 1, size));
    if (r.status === 201 && r.id) lastId = r.id;
    else errors++;
  });
  publisher.close();
  ctx.progress(`${label}: history of ${historyCount} messages stored (last id ${lastId})`);
  const since = String(Number(lastId) - sinceBack);
  const wantSeqs = Array.from({ length: sinceBack }, (_, i) => historyCount - sinceBack + 1 + i);

  // Storm latency: from the moment every client starts reconnecting, not from the publish.
  const deliveries = new Deliveries();
  meter.begin();
  const stormStart = performance.now();
  deliveries.origin = stormStart;
  const { subscribers, stats: connect } = await connectMany(
    ctx,
    clients,
    () => subscribeWith(ctx, transport, channel, new Seen(historyCount, sinceBack), deliveries, since),
    label,
    clients, // all at once
  );
  const live = subscribers.filter((s): s is Subscriber => s !== undefined);
  const complete = await waitUntil(
    () => live.every((s) => s.seen.doneAt !== undefined || s.closed()),
    timeoutMs,
    () => ctx.progress(`${label}: ${deliveries.count}/${live.length * sinceBack} replayed`),
  );
  meter.end();
  await sleep(300);

  const t = tally(subscribers, () => wantSeqs);
  // Anything before `since` that arrived was replayed in excess.
  let excess = 0;
  for (const sub of live) for (let seq = 1; seq <= historyCount - sinceBack; seq++) if (sub.seen.has(seq)) excess++;
  const completion = live.map((s) => (s.seen.doneAt ?? performance.now()) - stormStart);
  const durationMs = (deliveries.count > 0 ? deliveries.lastAt : performance.now()) - stormStart;
  const row: Row = {
    ...baseRow(ctx, "resume-storm", `${clients} × since −${sinceBack}`, transport),
    subscribers: live.length,
    channels: 1,
    published: historyCount,
    acked: historyCount - errors,
    publishErrors: errors,
    expectedDeliveries: live.length * sinceBack,
    ...t,
    unexpected: t.unexpected + excess,
    durationMs: round1(durationMs),
    deliveriesPerSec: deliveries.count > 0 ? Math.round(deliveries.count / (durationMs / 1000)) : null,
    publishPerSec: null,
    latencyKind: "reconnect → caught up, ms",
    latency: summarize(completion),
    publishLatency: null,
    connect,
    ...meter.finish(),
  };
  if (!complete) row.notes.push(`timed out after ${timeoutMs} ms waiting for replays`);
  if (connect.failed) row.notes.push(`${connect.failed} clients failed to reconnect (${connect.firstError})`);
  closeAll(subscribers);
  await sleep(1000);
  return row;
}

export { round2 };
