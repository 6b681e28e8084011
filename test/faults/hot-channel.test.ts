import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { channelUrl, request, uniqueChannel } from "../support/clients";
import { type Relay, removeState, sleep, startRelay, waitUntil } from "../support/relay";
import { occupancyAlternates, startWebhookReceiver, type WebhookReceiver } from "../support/webhooks";
import { DeliveryChecker, type Finding, formatLine } from "./checker";
import {
  channelSseSubscriber,
  channelWsPublisher,
  channelWsSubscriber,
  type FaultClient,
  type FaultPublisher,
  type FleetOptions,
  httpPublisher,
  multiSseSubscriber,
  muxWsPublisher,
  muxWsSubscriber,
  type PublishPlan,
  pollSubscriber,
  sdkPublisher,
  sdkSubscriber,
} from "./fleet";
import {
  checkHistory,
  converge,
  countsAfterLeaving,
  describeStorage,
  expectClean,
  expectNobodyLeft,
  expectPublishersDone,
  expectStoredOnce,
  type SubscriberCounts,
  stopAll,
} from "./scenario";

/**
 * Issue 12 end to end: one hot channel served through 8 shards (HOT_CHANNELS), over a thousand
 * subscribers on every transport, 4 publishers of different kinds publishing 500 messages, and the
 * relay killed with SIGKILL and restarted on the same port and state halfway. Afterwards each
 * subscriber holds every acknowledged message exactly once, in order; history stores each publish
 * once; channel info counts the subscribers across the tree exactly, before the kill and once
 * they are all back; and the channel's webhooks, from every shard, say occupied and vacated in turn,
 * ending vacated.
 */
const SHARDS = 8;
const PREFIX = "faults-hot";
const channel = uniqueChannel(PREFIX);
/** Subscribers by kind: mostly a channel's own WebSocket and SSE stream, a few dozen of each other kind. */
const MIX = { channelWs: 500, channelSse: 440, muxWs: 30, multiSse: 30, poll: 20, sdkWs: 10, sdkSse: 10, sdkPoll: 5 } as const;
const PUBLISHES = 500;
const PUBLISHERS = 4;
/** Killed once this many publishes are acknowledged. */
const KILL_AFTER = PUBLISHES / 2;
/** Subscribers opened at once while the fleet ramps up. */
const RAMP_CHUNK = 50;
/** A departed SSE subscriber is forgotten within this (API.md), which the leaving check waits for. */
const KEEPALIVE_SECONDS = 5;
const VARS = (webhookUrl: string) => ({
  WEBHOOK_URL: webhookUrl,
  WEBHOOK_SECRET: "whsec_faults",
  HOT_CHANNELS: `${PREFIX}-*:${SHARDS}`,
  // Every client shares 127.0.0.1: over a thousand connections from one address.
  MAX_CONNECTIONS_PER_IP: "0",
  // History keeps every message of the run, so it can be checked for publishes stored twice.
  HISTORY_LIMIT: "100000",
  KEEPALIVE_SECONDS: String(KEEPALIVE_SECONDS),
});

const checker = new DeliveryChecker("hot-channel");
const clients: FaultClient[] = [];
let relay: Relay;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  relay = await startRelay({ vars: VARS(receiver.url) });
});

afterAll(async () => {
  await stopAll(clients);
  await relay?.stop();
  if (relay) await removeState(relay.persistTo);
  await receiver?.close();
});

/** `count` publishes to the hot channel, about three a second, at most 5 in flight. */
function plan(count: number): PublishPlan {
  return { channels: [channel], count, intervalMs: 300, window: 5 };
}

/** What `GET /v1/channels/{c}` says about the tree. */
interface TreeInfo {
  subscribers: SubscriberCounts;
  fanout?: { shards: number; following: number; pushes: number };
}

async function treeInfo(url: string): Promise<TreeInfo> {
  const { status, body } = await request(channelUrl(url, channel));
  if (status !== 200) throw new Error(`channel info answered ${status}: ${JSON.stringify(body)}`);
  return body as TreeInfo;
}

/**
 * Polls channel info until it counts exactly `ws` WebSocket and `sse` SSE subscribers (long-polls
 * come and go, so they are left out), or `timeoutMs` passes; resolves with the last answer and how
 * long the wait took.
 */
async function countedExactly(url: string, ws: number, sse: number, timeoutMs: number): Promise<{ info: TreeInfo; ms: number; exact: boolean }> {
  const started = Date.now();
  let info: TreeInfo | undefined;
  for (;;) {
    try {
      info = await treeInfo(url);
      if (info.subscribers.ws === ws && info.subscribers.sse === sse) return { info, ms: Date.now() - started, exact: true };
    } catch {
      // Not reachable yet (a restart): ask again.
    }
    if (Date.now() - started > timeoutMs) {
      return { info: info ?? { subscribers: { ws: -1, sse: -1, poll: -1 } }, ms: Date.now() - started, exact: false };
    }
    await sleep(500);
  }
}

function describeCount(label: string, counted: { info: TreeInfo; ms: number; exact: boolean }, ws: number, sse: number): string {
  const { subscribers, fanout } = counted.info;
  return `faults: hot-channel ${label}: expected ws=${ws} sse=${sse}, counted ${JSON.stringify(subscribers)} fanout=${JSON.stringify(fanout)} (${
    counted.exact ? "exact" : "NOT exact"
  } after ${counted.ms} ms)`;
}

/** A subscriber of the fleet, with what kind it is and whether the ramp waits for it to connect. */
interface Member {
  kind: keyof typeof MIX;
  client: FaultClient;
}

/** Opens `RAMP_CHUNK` subscribers at a time, each chunk connected (polls aside) before the next. */
async function ramp(options: FleetOptions): Promise<Member[]> {
  const makers: Array<[keyof typeof MIX, (name: string) => FaultClient]> = [
    ["channelWs", (name) => channelWsSubscriber(name, options, channel)],
    ["channelSse", (name) => channelSseSubscriber(name, options, channel)],
    ["muxWs", (name) => muxWsSubscriber(name, options, [channel])],
    ["multiSse", (name) => multiSseSubscriber(name, options, [channel])],
    ["poll", (name) => pollSubscriber(name, options, channel)],
    ["sdkWs", (name) => sdkSubscriber(name, options, [channel], "ws")],
    ["sdkSse", (name) => sdkSubscriber(name, options, [channel], "sse")],
    ["sdkPoll", (name) => sdkSubscriber(name, options, [channel], "poll")],
  ];
  // Each kind spread evenly over the ramp, so every chunk mixes transports.
  const queue = makers
    .flatMap(([kind, make]) =>
      Array.from({ length: MIX[kind] }, (_, index) => ({ at: (index + 0.5) / MIX[kind], make: (): Member => ({ kind, client: make(`${kind}:${index}`) }) })),
    )
    .sort((x, y) => x.at - y.at)
    .map(({ make }) => make);
  const members: Member[] = [];
  for (let start = 0; start < queue.length; start += RAMP_CHUNK) {
    const chunk = queue.slice(start, start + RAMP_CHUNK).map((make) => make());
    members.push(...chunk);
    clients.push(...chunk.map((member) => member.client));
    const waited = chunk.filter((member) => member.kind !== "poll" && member.kind !== "sdkPoll");
    await waitUntil(() => waited.every((member) => member.client.connects() > 0), `subscribers ${start}–${start + chunk.length - 1} connected`, 30_000);
  }
  return members;
}

/** Findings grouped by subscriber kind (the name before `:`): how many subscribers, how many findings, the lowest id. */
function byKind(findings: readonly Finding[]): string {
  const kinds = new Map<string, { subscribers: Set<string>; findings: number; lowest: number }>();
  for (const { subscriber, id } of findings) {
    const kind = subscriber.slice(0, subscriber.indexOf(":"));
    const entry = kinds.get(kind) ?? { subscribers: new Set(), findings: 0, lowest: id };
    entry.subscribers.add(subscriber);
    entry.findings++;
    entry.lowest = Math.min(entry.lowest, id);
    kinds.set(kind, entry);
  }
  const parts = [...kinds].map(([kind, { subscribers, findings: count, lowest }]) => `${kind}: ${count} in ${subscribers.size} subscribers from #${lowest}`);
  return parts.length > 0 ? parts.join(", ") : "none";
}

function total(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

describe("a hot channel on 8 shards, over a thousand subscribers, kill -9 and restart midway", () => {
  it("every subscriber ends with every acknowledged message once, in order, and channel info counts them exactly", async () => {
    const began = Date.now();
    const options: FleetOptions = { url: relay.url, checker, deadline: began + 300_000, retryMs: 500 };
    // Counted by channel info: WebSockets on the channel (its own, /v1/ws, the SDK's) and SSE streams (its own, /v1/events, the SDK's).
    const subscriberWs = MIX.channelWs + MIX.muxWs + MIX.sdkWs;
    const subscriberSse = MIX.channelSse + MIX.multiSse + MIX.sdkSse;

    const members = await ramp(options);
    const rampMs = Date.now() - began;
    const before = await countedExactly(relay.url, subscriberWs, subscriberSse, 30_000);

    const publishers: FaultPublisher[] = [
      httpPublisher("http", options, plan(PUBLISHES / PUBLISHERS)),
      // Its socket is one of the channel's own: a subscriber as well, counted under `ws`.
      channelWsPublisher("channel-ws-pub", options, plan(PUBLISHES / PUBLISHERS)),
      muxWsPublisher("mux-ws-pub", options, plan(PUBLISHES / PUBLISHERS)),
      sdkPublisher("sdk-pub", options, plan(PUBLISHES / PUBLISHERS)),
    ];
    clients.push(...publishers);

    // Killed while every publisher has publishes in flight.
    await waitUntil(() => checker.ackedCount >= KILL_AFTER, `${KILL_AFTER} publishes acknowledged`, 120_000);
    const killedAt = Date.now();
    const ackedAtKill = checker.ackedCount;
    const { port, persistTo } = relay;
    await relay.kill9();
    relay = await startRelay({ port, persistTo, vars: VARS(receiver.url) });
    const restartMs = Date.now() - killedAt;

    // Everyone back, the channel-ws publisher's socket included.
    const after = await countedExactly(relay.url, subscriberWs + 1, subscriberSse, 60_000);
    const recoveredMs = Date.now() - killedAt;
    const converged = await converge(checker, publishers, 90_000);
    const convergedMs = Date.now() - killedAt;
    const report = checker.report();
    const stored = await checkHistory(relay.url, [channel], checker);
    const final = await treeInfo(relay.url);
    await stopAll(clients);
    const left = await countsAfterLeaving(relay.url, [channel], (KEEPALIVE_SECONDS + 5) * 1000);
    const vacated = await waitUntil(() => receiver.described(channel).at(-1) === "channel.vacated", "channel.vacated after everyone left", 30_000).then(
      () => true,
      () => false,
    );
    const webhooks = receiver.described(channel);

    const reconnected = members.filter((member) => member.kind !== "poll" && member.kind !== "sdkPoll" && member.client.connects() >= 2).length;
    const errors = clients.filter((client) => client.errors.length > 0);
    console.log(
      [
        formatLine(report, {
          shards: SHARDS,
          following: final.fanout?.following ?? -1,
          pushes: final.fanout?.pushes ?? -1,
          ackedAtKill,
          restarts: 1,
          converged: String(converged),
          storedTwice: stored.storedTwice.length,
          notStored: stored.notStored.length,
        }),
        `faults: hot-channel timings: ramp=${rampMs}ms restart=${restartMs}ms allBack=${recoveredMs}ms converged=${convergedMs}ms (after the kill) total=${Date.now() - began}ms`,
        `faults: hot-channel fleet: ${JSON.stringify(MIX)} = ${members.length} subscribers; reconnected after the kill: ${reconnected} of ${members.length - MIX.poll - MIX.sdkPoll} connected ones`,
        `faults: hot-channel lost by kind: ${byKind(report.lost)}`,
        `faults: hot-channel duplicated by kind: ${byKind(report.duplicated)}`,
        `faults: hot-channel out of order by kind: ${byKind(report.outOfOrder)}`,
        describeCount("before the kill", before, subscriberWs, subscriberSse),
        describeCount("after the restart", after, subscriberWs + 1, subscriberSse),
        `faults: hot-channel clients with errors: ${errors.length}${errors
          .slice(0, 5)
          .map((client) => `\n  ${client.name}: ${client.errors.slice(0, 2).join("; ")}`)
          .join("")}`,
        "faults: hot-channel storage per publisher",
        describeStorage(stored, publishers),
        `faults: hot-channel subscribers still counted after every client left: ${JSON.stringify(left)}`,
        `faults: hot-channel webhooks: ${webhooks.join(", ")}`,
      ].join("\n"),
    );

    expectPublishersDone(publishers);
    expectClean(report);
    expect.soft(report.acked, "acknowledged publishes").toBe(PUBLISHES);
    expect.soft(report.subscribers, "subscribers watched").toBe(total(MIX));
    expectStoredOnce(stored, ["sdk-pub"]);
    expect.soft(before.info.subscribers, "counted across the tree before the kill").toMatchObject({ ws: subscriberWs, sse: subscriberSse });
    expect.soft(after.info.subscribers, "counted across the tree once everyone is back").toMatchObject({ ws: subscriberWs + 1, sse: subscriberSse });
    for (const [when, counted] of [
      ["before the kill", before],
      ["after the restart", after],
    ] as const) {
      expect.soft(counted.info.fanout?.shards, `fanout.shards ${when}`).toBe(SHARDS);
      // A thousand subscribers placed by hash over 8 shards: an empty one is a (7/8)^1000 event.
      expect.soft(counted.info.fanout?.following, `shards following the room ${when}`).toBe(SHARDS);
    }
    expectNobodyLeft(left);
    expect.soft(vacated, "channel.vacated once everyone left").toBe(true);
    expect.soft(occupancyAlternates(webhooks), `occupied and vacated in turn: ${webhooks.join(", ")}`).toBe(true);
  }, 420_000);
});
