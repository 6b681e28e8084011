import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueChannel } from "../support/clients";
import { directUrl, type Relay, removeState, startRelay } from "../support/relay";
import { DeliveryChecker, formatLine } from "./checker";
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
import { CuttingProxy } from "./proxy";
import {
  checkHistory,
  converge,
  countsAfterLeaving,
  describeClients,
  describeStorage,
  expectClean,
  expectNobodyLeft,
  expectPublishersDone,
  expectStoredOnce,
  stopAll,
} from "./scenario";

/**
 * Every transport through its own cutting proxy, which resets all of its connections every
 * 150–400 ms (seeded) until it has cut CUTS_PER_TRANSPORT of them, while publishers publish and
 * subscribers read through it: afterwards each subscriber holds every acknowledged message
 * exactly once, in order, and history stores each publish once (the SDK's included).
 */
const CUTS_PER_TRANSPORT = 1000;
/** Replays a run: each proxy's schedule is seeded with SEED + its index. */
const SEED = 0x5eed;
/**
 * The bound on the cutting phase. The cut targets are normally reached in one to two and a half
 * minutes; the bound only keeps a run from hanging, so it is generous for a machine that is busy
 * (the run ends as soon as every proxy has made its cuts).
 */
const CUTTING_MS = 360_000;
const TRANSPORTS = ["http", "channel-ws", "channel-sse", "mux-ws", "mux-sse", "poll", "sdk"] as const;
type TransportKind = (typeof TRANSPORTS)[number];

const [a, b] = [uniqueChannel("faults-cut-a"), uniqueChannel("faults-cut-b")] as const;
const channels = [a, b];
const checker = new DeliveryChecker("disconnects");
const clients: FaultClient[] = [];
const proxies = new Map<TransportKind, CuttingProxy>();
let relay: Relay;

/** How soon a departed SSE subscriber must be forgotten (API.md), and how long the check waits for it. */
const KEEPALIVE_SECONDS = 5;

beforeAll(async () => {
  relay = await startRelay({
    vars: {
      // History keeps every message of the run, so it can be checked for publishes stored twice.
      HISTORY_LIMIT: "100000",
      // Every client shares 127.0.0.1, under the default MAX_CONNECTIONS_PER_IP (1000): a subscriber
      // the relay failed to forget would hold one of the address's slots until they ran out (429).
      KEEPALIVE_SECONDS: String(KEEPALIVE_SECONDS),
    },
  });
  // The proxies forward to the Worker's own listener, not to wrangler's dev proxy in front of it,
  // which keeps reading a stream whose client it lost (docs/reliability.md): the relay would see
  // that SSE client as connected and the count check below would measure wrangler, not the relay.
  const workerPort = Number(new URL(await directUrl(relay)).port);
  for (const kind of TRANSPORTS) proxies.set(kind, await CuttingProxy.start(workerPort));
});

afterAll(async () => {
  await stopAll(clients);
  await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
  await relay?.stop();
  if (relay) await removeState(relay.persistTo);
});

/** Publishes until told to finish (at most `count`), one every `intervalMs` (about three a second), at most 5 in flight. */
function plan(to: readonly string[], intervalMs = 300): PublishPlan {
  return { channels: to, count: 2_000, intervalMs, window: 5 };
}

describe(`${CUTS_PER_TRANSPORT} forced disconnects per transport`, () => {
  it("every subscriber ends with every acknowledged message once, in order; nothing is stored twice", { timeout: CUTTING_MS + 240_000 }, async () => {
    const deadline = Date.now() + CUTTING_MS + 120_000;
    const via = (kind: TransportKind): FleetOptions => ({ url: proxies.get(kind)!.url, checker, deadline, retryMs: 50 });
    const subscribers = [
      ...[a, a, b].map((channel, i) => channelWsSubscriber(`channel-ws:${i}`, via("channel-ws"), channel)),
      ...[a, a, b, b, a].map((channel, i) => channelSseSubscriber(`channel-sse:${i}`, via("channel-sse"), channel)),
      ...[0, 1, 2, 3].map((i) => muxWsSubscriber(`mux-ws:${i}`, via("mux-ws"), channels)),
      ...[0, 1, 2, 3, 4].map((i) => multiSseSubscriber(`mux-sse:${i}`, via("mux-sse"), channels)),
      ...[a, a, a, b, b, b].map((channel, i) => pollSubscriber(`poll:${i}`, via("poll"), channel)),
      sdkSubscriber("sdk-sub:auto", via("sdk"), channels),
      sdkSubscriber("sdk-sub:sse", via("sdk"), channels, "sse"),
      sdkSubscriber("sdk-sub:poll", via("sdk"), channels, "poll"),
      // Pinned: `auto` may fall back from its WebSocket for good after a few cut handshakes.
      sdkSubscriber("sdk-sub:ws", via("sdk"), channels, "ws"),
    ];
    const publishers: FaultPublisher[] = [
      // Twice as many at half the rate: more requests in flight when a cut comes, for the same load.
      ...[a, a, a, a, b, b, b, b].map((channel, i) => httpPublisher(`http:${i}`, via("http"), plan([channel], 600))),
      channelWsPublisher("channel-ws-pub:a", via("channel-ws"), plan([a])),
      channelWsPublisher("channel-ws-pub:b", via("channel-ws"), plan([b])),
      muxWsPublisher("mux-ws-pub", via("mux-ws"), plan(channels)),
      sdkPublisher("sdk-pub", via("sdk"), plan(channels)),
      // Pinned to its WebSocket: `auto` may fall back to HTTP publishing, which carries keys.
      sdkPublisher("sdk-pub:ws", via("sdk"), plan(channels), "ws"),
    ];
    clients.push(...subscribers, ...publishers);

    const startedAt = Date.now();
    /** When each proxy reached its cut target (or its time bound), ms after the start. */
    const cutDone: Record<string, number> = {};
    await Promise.all(
      TRANSPORTS.map(async (kind, i) => {
        await proxies.get(kind)!.cutEvery({ seed: SEED + i, minMs: 150, maxMs: 400, maxCuts: CUTS_PER_TRANSPORT, durationMs: CUTTING_MS });
        cutDone[`cutMs.${kind}`] = Date.now() - startedAt;
      }),
    );
    const cuttingMs = Date.now() - startedAt;
    for (const publisher of publishers) publisher.finish();
    const converged = await converge(checker, publishers, 90_000);
    const convergeMs = Date.now() - startedAt - cuttingMs;

    const report = checker.report();
    const stored = await checkHistory(relay.url, channels, checker);
    await stopAll(clients);
    const left = await countsAfterLeaving(relay.url, channels, (KEEPALIVE_SECONDS + 5) * 1000);
    const cuts = Object.fromEntries(TRANSPORTS.map((kind) => [`cuts.${kind}`, proxies.get(kind)!.cuts]));
    console.log(
      [
        formatLine(report, {
          converged: String(converged),
          storedTwice: stored.storedTwice.length,
          notStored: stored.notStored.length,
          cuttingMs,
          convergeMs,
          ...cuts,
          ...cutDone,
        }),
        describeClients(clients),
        "faults: disconnects storage per publisher",
        describeStorage(stored, publishers),
        `faults: disconnects subscribers still counted after every client left: ${JSON.stringify(left)}`,
      ].join("\n"),
    );

    for (const kind of TRANSPORTS) expect.soft(proxies.get(kind)!.cuts, `connections cut on ${kind}`).toBeGreaterThanOrEqual(CUTS_PER_TRANSPORT);
    expectPublishersDone(publishers);
    expectClean(report);
    expectStoredOnce(stored, ["sdk-pub", "sdk-pub:ws"]);
    expectNobodyLeft(left);
  });
});
