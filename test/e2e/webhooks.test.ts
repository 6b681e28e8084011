import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifySignature } from "../../src/webhooks/signature";
import { openWs, openWsAt, request, uniqueChannel, type WsSubscriber } from "../support/clients";
import { type Relay, startRelay } from "../support/relay";
import { mintWith } from "../support/tokens";
import { occupancyAlternates, startWebhookReceiver, type WebhookReceiver } from "../support/webhooks";

const SECRET = "relay-secret";
const WEBHOOK_SECRET = "whsec_e2e";

/** Channels named stadium-… are hot: their subscribers sit on 4 shards, not in the room. */
const RELAY_VARS = (webhookUrl: string) => ({ RELAY_JWT_SECRET: SECRET, WEBHOOK_URL: webhookUrl, WEBHOOK_SECRET, HOT_CHANNELS: "stadium-*:4" });

let relay: Relay;
let receiver: WebhookReceiver;

async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(receiver.events())}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A multi-channel socket (`/v1/ws`) with `token`, subscribed to `channel`. */
async function subscribeOverMux(token: string, channel: string): Promise<WsSubscriber> {
  const mux = await openWsAt(`${relay.url.replace(/^http/, "ws")}/v1/ws?token=${token}`);
  mux.send({ type: "subscribe", channel });
  await mux.waitFor((frames) => frames.some((f) => f.type === "subscribed"), 10_000, "subscribed over /v1/ws");
  return mux;
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  receiver.refuseNext(1);
  relay = await startRelay({ vars: RELAY_VARS(receiver.url) });
});

afterAll(async () => {
  await relay?.stop();
  await receiver?.close();
});

describe("webhooks through the queue to a real receiver", () => {
  it("occupied and vacated once per channel, added and removed once per member, signed, retried after a refusal", async () => {
    const channel = uniqueChannel("hooks");
    const alice = await mintWith(SECRET, { subscribe: [channel] }, { sub: "alice" });
    const bob = await mintWith(SECRET, { subscribe: [channel] }, { sub: "bob" });
    const clients: WsSubscriber[] = [];
    // Alice in two tabs on the channel's socket, Bob on the multi-channel socket.
    clients.push(await openWs(relay.url, channel, { query: { token: alice } }));
    clients.push(await openWs(relay.url, channel, { query: { token: alice } }));
    clients.push(await subscribeOverMux(bob, channel));

    await waitUntil(() => receiver.events(channel).length >= 3, "occupied and two members added");
    for (const client of clients) await client.close();
    await waitUntil(() => receiver.events(channel).length >= 6, "two members removed and vacated");

    const events = receiver.events(channel);
    const described = events.map((e) => (e.member ? `${e.type} ${e.member}` : e.type));
    expect(described.sort()).toEqual([
      "channel.occupied",
      "channel.vacated",
      "member.added alice",
      "member.added bob",
      "member.removed alice",
      "member.removed bob",
    ]);
    expect(events.find((e) => e.type === "channel.occupied")!.ts).toBeLessThanOrEqual(events.find((e) => e.type === "channel.vacated")!.ts);

    // The first POST was refused and its events came again; every POST is signed over its raw body.
    expect(receiver.posts[0]!.answered).toBe(500);
    const refusedIds = JSON.parse(receiver.posts[0]!.body).events.map((e: { id: string }) => e.id);
    const deliveredIds = new Set(receiver.events().map((e) => e.id));
    expect(refusedIds.every((id: string) => deliveredIds.has(id))).toBe(true);
    for (const post of receiver.posts) {
      const t = Number(/^t=(\d+),/.exec(post.signature ?? "")?.[1]);
      expect(await verifySignature(WEBHOOK_SECRET, post.body, post.signature, t)).toBe(true);
      expect(JSON.parse(post.body).events.length).toBeLessThanOrEqual(20);
    }
  });

  it("channel info counts what was published and delivered, durably", async () => {
    const channel = uniqueChannel("counters");
    const token = await mintWith(SECRET, { subscribe: [channel], publish: [channel] });
    const sub = await openWs(relay.url, channel, { query: { token } });
    for (let i = 0; i < 3; i++) {
      const res = await request(`${relay.url}/v1/channels/${channel}/messages`, {
        method: "POST",
        body: `m${i}`,
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(201);
    }
    await sub.waitForId("3", 10_000);
    await sub.close();
    const info = await request(`${relay.url}/v1/channels/${channel}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(info.body.counters).toEqual({ published: 3, delivered: 3, dropped: 0 });
  });
});

describe("webhooks of a hot channel, whose subscribers sit on shards", () => {
  it("are the channel's: occupied and vacated once, each member added and removed once, over every shard", async () => {
    const channel = uniqueChannel("stadium");
    const alice = await mintWith(SECRET, { subscribe: [channel] }, { sub: "alice" });
    const bob = await mintWith(SECRET, { subscribe: [channel] }, { sub: "bob" });
    // Alice in three tabs (on whichever shards they land), Bob on the multi-channel socket.
    const clients: WsSubscriber[] = [];
    for (let tab = 0; tab < 3; tab++) clients.push(await openWs(relay.url, channel, { query: { token: alice } }));
    clients.push(await subscribeOverMux(bob, channel));

    await waitUntil(() => receiver.described(channel).length >= 3, "occupied and two members added");
    const info = await request(`${relay.url}/v1/channels/${channel}`, { headers: { Authorization: `Bearer ${alice}` } });
    expect(info.body.subscribers.ws).toBe(4);
    expect(info.body.fanout.following).toBeGreaterThanOrEqual(1);

    // Two of Alice's tabs go: she is still there.
    await clients[0]!.close();
    await clients[1]!.close();
    await clients[3]!.close();
    await waitUntil(() => receiver.described(channel).length >= 4, "bob removed");
    expect(receiver.described(channel).slice(3)).toEqual(["member.removed bob"]);

    await clients[2]!.close();
    await waitUntil(() => receiver.described(channel).length >= 6, "alice removed and vacated");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const events = receiver.described(channel);
    expect(events.slice(0, 3).sort()).toEqual(["channel.occupied", "member.added alice", "member.added bob"]);
    expect(events[0]).toBe("channel.occupied");
    expect(events.slice(3)).toEqual(["member.removed bob", "member.removed alice", "channel.vacated"]);
  });

  it("after a kill -9, the subscribers the crash took are removed, and every occupied is followed by a vacated", async () => {
    const channel = uniqueChannel("stadium");
    const alice = await mintWith(SECRET, { subscribe: [channel] }, { sub: "alice" });
    const bob = await mintWith(SECRET, { subscribe: [channel] }, { sub: "bob" });
    await openWs(relay.url, channel, { query: { token: alice } });
    await waitUntil(() => receiver.described(channel).length >= 2, "occupied and alice added");

    const { port, persistTo } = relay;
    await relay.kill9();
    relay = await startRelay({ port, persistTo, vars: RELAY_VARS(receiver.url) });

    // Bob's connect wakes the room, which finds which of its shards lost their subscribers.
    const bobWs = await openWs(relay.url, channel, { query: { token: bob } });
    await waitUntil(
      () => receiver.described(channel).includes("member.removed alice") && receiver.described(channel).includes("member.added bob"),
      "alice removed, bob added",
    );
    await bobWs.close();
    await waitUntil(
      () => receiver.described(channel).at(-1) === "channel.vacated" && receiver.described(channel).includes("member.removed bob"),
      "bob removed and vacated",
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const events = receiver.described(channel);
    expect(events.filter((e) => e === "member.added alice")).toHaveLength(1);
    expect(events.filter((e) => e === "member.removed alice")).toHaveLength(1);
    expect(events.filter((e) => e === "channel.occupied").length).toBe(events.filter((e) => e === "channel.vacated").length);
    expect(occupancyAlternates(events), events.join(", ")).toBe(true);
  }, 90_000);
});
