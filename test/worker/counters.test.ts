import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eventually, publishOk, randomChannel, relay, roomStub, SseReader, WsClient } from "./helpers";

interface Info {
  subscribers: { ws: number; sse: number; poll: number };
  counters: { published: number; delivered: number; dropped: number };
}

const info = async (channel: string) => (await (await relay(`/v1/channels/${channel}`)).json()) as Info;

describe("channel info counters: published, delivered, dropped", () => {
  it("count every stored message, every delivery to every subscriber, and every slow subscriber dropped", async () => {
    const channel = randomChannel("counters");
    const ws = await WsClient.connect(channel);
    const sse = await SseReader.open(channel);
    // A subscriber that never reads: 40 KB of events against the 16 KB SSE_BUFFER_BYTES drop it.
    const stalled = await relay(`/v1/channels/${channel}/events`);
    await eventually(async () => (await info(channel)).subscribers.sse === 2, "both SSE subscribers");
    for (let i = 0; i < 40; i++) await publishOk(channel, `${i}`.padEnd(1000, "."));
    await ws.waitForMessages(40);
    await sse.waitForIds(40);
    await eventually(async () => (await info(channel)).counters.dropped === 1, "the stalled subscriber to be counted as dropped");
    const { counters } = await info(channel);
    expect(counters.published).toBe(40);
    // 40 to the socket, 40 to the reading stream, and what the stalled one was written before it was dropped.
    expect(counters.delivered).toBeGreaterThanOrEqual(80);
    expect(counters.delivered).toBeLessThan(120);
    await stalled.body?.cancel();
    await sse.cancel();
    ws.socket.close();
  });

  it("a repeated idempotent publish is not counted again, and the counters outlive the room's memory", async () => {
    const channel = randomChannel("counters-durable");
    const ws = await WsClient.connect(channel);
    for (const key of ["a", "a", "b"]) {
      const res = await relay(`/v1/channels/${channel}/messages`, { method: "POST", body: key, headers: { "Idempotency-Key": key } });
      expect(res.status).toBe(201);
    }
    await ws.waitForMessages(2);
    ws.socket.close();
    const before = (await info(channel)).counters;
    expect(before).toEqual({ published: 2, delivered: 2, dropped: 0 });
    // A fresh instance of the room (as after an eviction) reads them from storage.
    await evictDurableObject(roomStub(channel));
    expect((await info(channel)).counters).toEqual(before);
  });
});
