import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueChannel } from "../support/clients";
import { type Relay, removeState, startRelay, waitUntil } from "../support/relay";
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
 * One relay, killed with SIGKILL and restarted on the same port and state three times while
 * every kind of publisher publishes and every kind of subscriber reads: afterwards each
 * subscriber holds every acknowledged message exactly once, in order, and history stores each
 * publish once.
 */
const RESTARTS = 3;
const [a, b] = [uniqueChannel("faults-restart-a"), uniqueChannel("faults-restart-b")] as const;
const channels = [a, b];
const checker = new DeliveryChecker("restart");
const clients: FaultClient[] = [];
let relay: Relay;

beforeAll(async () => {
  relay = await startRelay();
});

afterAll(async () => {
  await stopAll(clients);
  await relay?.stop();
  if (relay) await removeState(relay.persistTo);
});

/** `count` publishes, a little over 8 a second each, at most 5 in flight. */
function plan(to: readonly string[], count: number): PublishPlan {
  return { channels: to, count, intervalMs: 120, window: 5 };
}

describe("kill -9 and restart, three times, mid-stream", () => {
  it("every subscriber on every transport ends with every acknowledged message once, in order", async () => {
    const options: FleetOptions = { url: relay.url, checker, deadline: Date.now() + 200_000, retryMs: 200 };
    const subscribers = [
      channelWsSubscriber("channel-ws:a", options, a),
      channelWsSubscriber("channel-ws:b", options, b),
      channelSseSubscriber("channel-sse:a", options, a),
      channelSseSubscriber("channel-sse:b", options, b),
      muxWsSubscriber("mux-ws", options, channels),
      multiSseSubscriber("mux-sse", options, channels),
      pollSubscriber("poll:a", options, a),
      pollSubscriber("poll:b", options, b),
      sdkSubscriber("sdk-sub:auto", options, channels),
      sdkSubscriber("sdk-sub:sse", options, channels, "sse"),
      sdkSubscriber("sdk-sub:poll", options, channels, "poll"),
    ];
    const publishers: FaultPublisher[] = [
      httpPublisher("http:a", options, plan([a], 60)),
      httpPublisher("http:b", options, plan([b], 60)),
      channelWsPublisher("channel-ws-pub:a", options, plan([a], 60)),
      channelWsPublisher("channel-ws-pub:b", options, plan([b], 60)),
      muxWsPublisher("mux-ws-pub", options, plan(channels, 80)),
      sdkPublisher("sdk-pub", options, plan(channels, 80)),
      // Pinned to its WebSocket: `auto` may fall back to HTTP publishing, which carries keys.
      sdkPublisher("sdk-pub:ws", options, plan(channels, 80), "ws"),
    ];
    clients.push(...subscribers, ...publishers);
    const total = 480;

    for (let restart = 1; restart <= RESTARTS; restart++) {
      // Killed while publishes are in flight on every publisher.
      await waitUntil(() => checker.ackedCount >= (restart * total) / (RESTARTS + 1), `${restart}/${RESTARTS + 1} of the publishes acknowledged`, 90_000);
      const { port, persistTo } = relay;
      await relay.kill9();
      relay = await startRelay({ port, persistTo });
    }

    const converged = await converge(checker, publishers, 90_000);
    const report = checker.report();
    const stored = await checkHistory(relay.url, channels, checker);
    await stopAll(clients);
    // KEEPALIVE_SECONDS is the default 15: a departed SSE subscriber is forgotten within it.
    const left = await countsAfterLeaving(relay.url, channels, 20_000);
    console.log(
      [
        formatLine(report, { restarts: RESTARTS, converged: String(converged), storedTwice: stored.storedTwice.length, notStored: stored.notStored.length }),
        describeClients(clients),
        "faults: restart storage per publisher",
        describeStorage(stored, publishers),
        `faults: restart subscribers still counted after every client left: ${JSON.stringify(left)}`,
      ].join("\n"),
    );

    expectPublishersDone(publishers);
    expectClean(report);
    expect.soft(report.acked, "acknowledged publishes").toBe(total);
    expectStoredOnce(stored, ["sdk-pub", "sdk-pub:ws"]);
    expectNobodyLeft(left);
  });
});
