import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";
import type { MessageStore } from "../../src/room/message-store";
import { eventually, history, publishOk, randomChannel, range, relay, roomStub, SseReader, WsClient } from "./helpers";

// The worker project serves channels named hot-… through 4 shards (HOT_CHANNELS in vitest.config.ts).
const SHARDS = 4;

function shardStub(channel: string, index: number) {
  return env.SHARDS.get(env.SHARDS.idFromName(`${channel}/shard/${index}`));
}

/** Subscribers each shard holds, in shard order. */
async function perShard(channel: string): Promise<number[]> {
  const censuses = await Promise.all(range(0, SHARDS - 1).map((i) => shardStub(channel, Number(i)).census()));
  return censuses.map(({ counts }) => counts.ws + counts.sse + counts.poll);
}

/** The message ids a socket received, batch frames taken apart. */
function receivedIds(client: WsClient): string[] {
  const ids: string[] = [];
  for (const frame of client.frames) {
    if (frame.type === "message") ids.push(String(frame.id));
    if (frame.type === "batch") for (const m of frame.messages as Envelope[]) ids.push(m.id);
  }
  return ids;
}

function publishing(channel: string, count: number, tag = "m"): Array<Promise<string>> {
  return Array.from({ length: count }, (_, i) => publishOk(channel, `${tag}${i}`));
}

async function publishAll(channel: string, count: number, tag = "m"): Promise<string[]> {
  return Promise.all(publishing(channel, count, tag));
}

/** Evicts an object if it is running (one that hibernated and was not woken since is not). */
async function evictIfRunning(stub: DurableObjectStub): Promise<void> {
  try {
    await evictDurableObject(stub, { webSockets: "hibernate" });
  } catch (error) {
    if (!String(error).includes("not currently running")) throw error;
  }
}

/** Stores a message in the room without broadcasting or pushing it: a push that was lost. */
async function storeWithoutPushing(channel: string, data: string): Promise<void> {
  await runInDurableObject(roomStub(channel), (room) => {
    (room as unknown as { store: MessageStore }).store.append({ data, event: "message", ts: Date.now() }, 50);
  });
}

// Many subscribers and shards per test, on a machine that may be busy: more than the default 5 s.
describe("hot channels (HOT_CHANNELS): subscribers on shards that follow the room", { timeout: 20_000 }, () => {
  it("places subscribers on shards, not in the room, and counts them across the tree", async () => {
    const channel = randomChannel("hot");
    const sockets = await Promise.all(range(1, 12).map(() => WsClient.connect(channel)));
    const streams = await Promise.all(range(1, 4).map(() => SseReader.open(channel)));

    const spread = await perShard(channel);
    expect(spread.reduce((a, b) => a + b)).toBe(16);
    // Placed by hash of a fresh connection id: 16 subscribers all on one of 4 shards would be a 1 in 10^8 event.
    expect(spread.filter((n) => n > 0).length).toBeGreaterThan(1);
    const info = (await (await relay(`/v1/channels/${channel}`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ subscribers: { ws: 12, sse: 4, poll: 0 }, fanout: { shards: SHARDS } });
    await runInDurableObject(roomStub(channel), (_room, state) => {
      expect(state.getWebSockets()).toHaveLength(0);
    });

    for (const socket of sockets) socket.close();
    for (const stream of streams) await stream.cancel();
    await eventually(async () => (await perShard(channel)).every((n) => n === 0), "every shard empty");
  });

  it("delivers every message to every subscriber on every shard once, in id order, on every transport", async () => {
    const channel = randomChannel("hot");
    const plain = await Promise.all(range(1, 6).map(() => WsClient.connect(channel)));
    const batched = await Promise.all(range(1, 4).map(() => WsClient.connect(channel, "frames=batch")));
    const streams = await Promise.all(range(1, 3).map(() => SseReader.open(channel)));
    const mux = await WsClient.open("/v1/ws");
    mux.send({ type: "subscribe", channel });
    await mux.waitFor((f) => f.type === "subscribed", "the multi-channel subscription");
    const multiSse = await SseReader.openPath(`/v1/events?channel=${channel}`);
    await multiSse.waitForText("id: ");

    // Four publishers at once, as the channel's room numbers them.
    const acked = (await Promise.all(range(1, 4).map((p) => publishAll(channel, 10, `p${p}-`)))).flat();
    const expected = range(1, 40);
    expect(acked.sort((a, b) => Number(a) - Number(b))).toEqual(expected);

    for (const client of [...plain, ...batched, mux]) {
      await eventually(() => receivedIds(client).length >= 40, "40 messages on a socket");
      expect(receivedIds(client)).toEqual(expected);
    }
    for (const stream of streams) expect(await stream.waitForIds(40)).toEqual(expected);
    await eventually(() => (multiSse.text.match(/"type":"message"/g) ?? []).length >= 40, "/v1/events: 40 messages");
    expect([...multiSse.text.matchAll(/"id":"(\d+)"/g)].map((m) => m[1])).toEqual(expected);

    // Counted once per subscriber and message over the whole tree (each SSE stream and /v1/events
    // subscription is one subscriber too).
    const counters = ((await (await relay(`/v1/channels/${channel}`)).json()) as { counters: Record<string, number> }).counters;
    expect(counters).toEqual({ published: 40, delivered: 40 * 15, dropped: 0 });

    // Each message's data arrives as published, the same on every shard.
    const published = (await history(channel)).messages.map((m) => m.data);
    expect(plain[0]!.messages().map((m) => m.data)).toEqual(published);

    for (const client of [...plain, ...batched, mux]) client.close();
    for (const stream of [...streams, multiSse]) await stream.cancel();
  });

  it("fills a hole from the room's history before anything after it goes out", async () => {
    const channel = randomChannel("hot");
    const clients = await Promise.all(range(1, 6).map(() => WsClient.connect(channel)));
    await publishAll(channel, 2);
    await storeWithoutPushing(channel, "lost in transit");
    await publishOk(channel, "after the hole");
    for (const client of clients) {
      await eventually(() => receivedIds(client).length >= 4, "4 messages");
      expect(receivedIds(client)).toEqual(range(1, 4));
      expect(client.messages()[2]!.data).toBe("lost in transit");
    }
    for (const client of clients) client.close();
  });

  it("a room restarted between storing and pushing tells its shards how far it got when it wakes", async () => {
    const channel = randomChannel("hot");
    const client = await WsClient.connect(channel);
    await publishOk(channel, "one");
    await storeWithoutPushing(channel, "stored, never pushed");
    await evictDurableObject(roomStub(channel));
    // Anything that wakes the room will do: here, channel info.
    await relay(`/v1/channels/${channel}`);
    await eventually(() => receivedIds(client).length >= 2, "the message the room never pushed");
    expect(receivedIds(client)).toEqual(["1", "2"]);
    client.close();
  });

  it("subscribers keep every message, once and in order, while shards hibernate and the room is evicted mid-stream", async () => {
    const channel = randomChannel("hot");
    const clients = await Promise.all(range(1, 8).map((i) => WsClient.connect(channel, Number(i) % 2 ? "" : "frames=batch")));
    const acked: string[] = [];
    for (let round = 0; round < 4; round++) {
      const inFlight = publishing(channel, 6, `r${round}-`);
      if (round % 2 === 0) {
        // A shard hibernates only after a while without work: once every message is out and it fell quiet.
        acked.push(...(await Promise.all(inFlight)));
        for (const client of clients) await eventually(() => receivedIds(client).length >= acked.length, "the round delivered");
        await new Promise((resolve) => setTimeout(resolve, 1500));
        for (let i = 0; i < SHARDS; i++) await evictIfRunning(shardStub(channel, i));
      } else {
        // The room, though, may go at any moment: once the first publish is in, some land before, some after.
        await Promise.race(inFlight);
        await evictIfRunning(roomStub(channel));
        acked.push(...(await Promise.all(inFlight)));
      }
    }
    await publishOk(channel, "after the last eviction");
    const expected = range(1, 25);
    expect(acked.sort((a, b) => Number(a) - Number(b))).toEqual(range(1, 24));
    for (const client of clients) {
      await eventually(() => receivedIds(client).length >= 25, "25 messages");
      expect(receivedIds(client)).toEqual(expected);
    }
    for (const client of clients) client.close();
  });

  it("a shard restarted mid-stream drops its subscribers' sockets, and they resume with nothing lost or twice", async () => {
    const channel = randomChannel("hot");
    const clients = await Promise.all(range(1, 8).map(() => WsClient.connect(channel)));
    /** Each subscriber's ids over its connections, reconnecting with since=<last id> as the SDK does. */
    const seen = clients.map(() => [] as string[]);
    const resume = async (i: number): Promise<void> => {
      seen[i]!.push(...receivedIds(clients[i]!));
      clients[i] = await WsClient.connect(channel, `since=${seen[i]!.at(-1) ?? 0}`);
    };
    const inFlight = publishing(channel, 20, "m");
    await Promise.race(inFlight);
    for (let i = 0; i < SHARDS; i++) {
      try {
        await evictDurableObject(shardStub(channel, i), { webSockets: "close" });
      } catch (error) {
        if (!String(error).includes("not currently running")) throw error;
      }
    }
    await Promise.all(inFlight);
    await publishOk(channel, "after the restart");
    // Each socket was closed with its shard (then it resumes) or, on a shard not running then, carries on.
    for (let i = 0; i < clients.length; i++) {
      const all = () => [...seen[i]!, ...receivedIds(clients[i]!)];
      await eventually(() => clients[i]!.closed !== undefined || all().includes("21"), `socket ${i} closed or complete`);
      if (clients[i]!.closed) await resume(i);
      await eventually(() => all().includes("21"), `every message on socket ${i}`);
      expect(all()).toEqual(range(1, 21));
    }
    for (const client of clients) client.close();
  });

  it("resumes a subscriber that lands on any shard with exactly what it missed", async () => {
    const channel = randomChannel("hot");
    const first = await WsClient.connect(channel);
    await publishAll(channel, 5);
    await eventually(() => receivedIds(first).length >= 5, "5 messages");
    first.close();
    await publishAll(channel, 5, "missed");

    // Resumers land on shards by hash: some on shards that never held anyone and read the room's history.
    const resumers = await Promise.all(range(1, 8).map(() => WsClient.connect(channel, "since=5")));
    const streams = await Promise.all(range(1, 4).map(() => SseReader.open(channel, { headers: { "Last-Event-ID": "3" } })));
    await publishOk(channel, "live");
    for (const client of resumers) {
      await eventually(() => receivedIds(client).length >= 6, "the missed five and the live one");
      expect(receivedIds(client)).toEqual(range(6, 11));
    }
    for (const stream of streams) expect(await stream.waitForIds(8)).toEqual(range(4, 11));
    // A full replay from a shard, and a rewind.
    const everything = await WsClient.connect(channel, "since=0");
    const rewound = await WsClient.connect(channel, "rewind=3");
    await eventually(() => receivedIds(everything).length >= 11 && receivedIds(rewound).length >= 3, "the replays");
    expect(receivedIds(everything)).toEqual(range(1, 11));
    expect(receivedIds(rewound)).toEqual(range(9, 11));
    for (const client of [...resumers, everything, rewound]) client.close();
    for (const stream of streams) await stream.cancel();
  });

  it("passes on only the gap the room's retention caused", async () => {
    const channel = randomChannel("hot");
    // HISTORY_LIMIT is 50 in this project: 60 messages leave 11…60.
    const early = await WsClient.connect(channel);
    for (let i = 0; i < 6; i++) await publishAll(channel, 10, `b${i}-`);
    const late = await WsClient.connect(channel, "since=2");
    await eventually(() => receivedIds(late).length >= 50, "the retained 50");
    expect(late.frames.find((f) => f.type === "gap")).toEqual({ type: "gap", channel, after: "2", oldest: "11" });
    expect(receivedIds(late)).toEqual(range(11, 60));
    // The subscriber that was there all along never hears of a gap.
    await eventually(() => receivedIds(early).length >= 60, "all 60");
    expect(early.frames.some((f) => f.type === "gap")).toBe(false);
    early.close();
    late.close();
  });

  it("lets a channel socket on a shard publish: stored by the room, its own message before its ack, everyone gets it", async () => {
    const channel = randomChannel("hot");
    const listeners = await Promise.all(range(1, 5).map(() => WsClient.connect(channel)));
    const publisher = await WsClient.connect(channel);
    publisher.send({ type: "publish", data: "from a shard", ref: "r1", idempotencyKey: "k1" });
    publisher.send({ type: "publish", data: "from a shard", ref: "r2", idempotencyKey: "k1" });
    const ack = await publisher.waitFor((f) => f.type === "ack" && f.ref === "r2", "second ack");
    expect(ack.id).toBe("1");
    const frames = publisher.frames.filter((f) => f.type !== "subscribed");
    expect(frames.map((f) => f.type)).toEqual(["message", "ack", "ack"]);
    for (const listener of listeners) {
      await eventually(() => receivedIds(listener).length >= 1, "the message");
      expect(listener.messages().map((m) => m.data)).toEqual(["from a shard"]);
    }
    expect((await history(channel)).messages).toHaveLength(1);
    for (const client of [...listeners, publisher]) client.close();
  });

  it("announces joins and leaves on every shard and lists presence across the tree", async () => {
    const channel = randomChannel("hot");
    const watcher = await WsClient.connect(channel, "presence=1");
    const others = await Promise.all(range(1, 8).map(() => WsClient.connect(channel)));
    await eventually(() => watcher.frames.filter((f) => f.type === "join").length >= 8, "8 joins");
    const presence = (await (await relay(`/v1/channels/${channel}/presence`)).json()) as { subscribers: unknown[]; counts: { ws: number } };
    expect(presence.subscribers).toHaveLength(9);
    expect(presence.counts.ws).toBe(9);
    for (const other of others) other.close();
    await eventually(() => watcher.frames.filter((f) => f.type === "leave").length >= 8, "8 leaves");
    watcher.close();
  });

  it("answers long-polls from a shard", async () => {
    const channel = randomChannel("hot");
    await publishAll(channel, 3);
    const answered = (await (await relay(`/v1/channels/${channel}/poll?since=1&timeout=5`)).json()) as { messages: Envelope[]; lastId: string };
    expect(answered.messages.map((m) => m.id)).toEqual(["2", "3"]);
    const waiting = relay(`/v1/channels/${channel}/poll?since=3&timeout=10`);
    await eventually(async () => (await perShard(channel)).some((n) => n > 0), "the poll waiting on a shard");
    await publishOk(channel, "next");
    const next = (await (await waiting).json()) as { messages: Envelope[] };
    expect(next.messages.map((m) => m.id)).toEqual(["4"]);
  });
});
