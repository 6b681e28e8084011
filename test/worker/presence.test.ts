import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PresenceMember } from "../../src/protocol/frames";
import { eventually, randomChannel, relay, roomStub, SseReader, WsClient } from "./helpers";

interface PresenceList {
  channel: string;
  subscribers: PresenceMember[];
  counts: { ws: number; sse: number; poll: number };
}

async function presence(channel: string): Promise<PresenceList> {
  const res = await relay(`/v1/channels/${channel}/presence`);
  expect(res.status).toBe(200);
  return (await res.json()) as PresenceList;
}

describe("presence", () => {
  it("lists current subscribers with transport and join time, and counts by transport", async () => {
    const channel = randomChannel();
    const before = Date.now();
    const ws = await WsClient.connect(channel);
    const sse = await SseReader.open(channel);
    const mux = await WsClient.open("/v1/ws");
    mux.send({ type: "subscribe", channel });
    await mux.waitFor((f) => f.type === "subscribed", "subscribed");
    const list = await presence(channel);
    expect(list.counts).toEqual({ ws: 2, sse: 1, poll: 0 });
    expect(list.subscribers.map((s) => s.transport).sort()).toEqual(["sse", "ws", "ws"]);
    for (const member of list.subscribers) {
      expect(member.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(member.since).toBeGreaterThanOrEqual(before);
    }
    expect(new Set(list.subscribers.map((s) => s.id)).size).toBe(3);
    ws.close();
    mux.close();
    await sse.cancel();
    await eventually(async () => (await presence(channel)).subscribers.length === 0, "an empty list");
  });

  it("sends join and leave, in order, to subscribers that ask, and not to others", async () => {
    const channel = randomChannel();
    const watcher = await WsClient.connect(channel, "presence=1");
    const bystander = await WsClient.connect(channel);
    const sseWatcher = await SseReader.open(channel, { query: "presence=1" });
    const visitor = await WsClient.connect(channel);
    visitor.close();

    await eventually(() => watcher.frames.filter((f) => f.type === "leave").length === 1, "the visitor's leave");
    const events = watcher.frames.filter((f) => f.type === "join" || f.type === "leave") as Array<{ type: string; subscriber: PresenceMember }>;
    expect(events.map((e) => [e.type, e.subscriber.transport])).toEqual([
      ["join", "ws"],
      ["join", "sse"],
      ["join", "ws"],
      ["leave", "ws"],
    ]);
    expect(events[2]!.subscriber.id).toBe(events[3]!.subscriber.id);
    expect(bystander.frames.some((f) => f.type === "join" || f.type === "leave")).toBe(false);

    await eventually(() => sseWatcher.events().filter((e) => e.event === "relay.leave").length === 1, "SSE leave");
    const sseEvents = sseWatcher.events().filter((e) => e.event?.startsWith("relay."));
    expect(sseEvents.map((e) => e.event)).toEqual(["relay.join", "relay.leave"]);
    expect(JSON.parse(sseEvents[1]!.data)).toMatchObject({ channel, subscriber: { id: events[3]!.subscriber.id, transport: "ws" } });
    watcher.close();
    bystander.close();
    await sseWatcher.cancel();
  });

  it("is still right after the room hibernates and wakes", async () => {
    const channel = randomChannel();
    const a = await WsClient.connect(channel, "presence=1");
    const b = await WsClient.connect(channel);
    const ids = (await presence(channel)).subscribers.map((s) => s.id).sort();
    await evictDurableObject(roomStub(channel), { webSockets: "hibernate" });
    expect((await presence(channel)).subscribers.map((s) => s.id).sort()).toEqual(ids);
    b.close();
    await a.waitFor((f) => f.type === "leave", "leave after wake-up");
    expect((await presence(channel)).subscribers).toHaveLength(1);
    a.close();
  });
});
