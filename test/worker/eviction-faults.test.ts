import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";
import { eventually, publishOk, randomChannel, range, relay, roomStub, SseReader, WsClient } from "./helpers";

/**
 * The fault suite's room-eviction scenario, inside workerd where a room can be evicted on demand:
 * publishers keep going while the room is evicted again and again (hibernating its sockets), and
 * every subscriber must end with every acknowledged message once, in order.
 */
describe("room eviction mid-stream", () => {
  it("every acknowledged message reaches every subscriber once, in order, across 5 evictions", async () => {
    const channel = randomChannel("evict");
    const plain = await WsClient.connect(channel);
    const batched = await WsClient.connect(channel, "frames=batch");
    const mux = await WsClient.open("/v1/ws?frames=batch");
    mux.send({ type: "subscribe", channel });
    await mux.waitFor((f) => f.type === "subscribed", "the multi-channel subscription");
    const multiSse = await SseReader.openPath(`/v1/events?channel=${channel}`);
    await multiSse.waitForText("id: ");

    const acked: string[] = [];
    for (let round = 0; round < 5; round++) {
      const publishing = Array.from({ length: 8 }, (_, i) => publishOk(channel, `r${round}-${i}`));
      // Evicted while publishes are in flight (once the first is in, so the room is running): some
      // land before, some after the new instance starts.
      await publishing[0];
      await evictDurableObject(roomStub(channel), { webSockets: "hibernate" });
      acked.push(...(await Promise.all(publishing)));
    }
    const expected = range(1, 40);
    expect([...acked].sort((a, b) => Number(a) - Number(b))).toEqual(expected);

    const received = (client: WsClient): string[] => {
      const ids: string[] = [];
      for (const frame of client.frames) {
        if (frame.type === "message") ids.push(String(frame.id));
        if (frame.type === "batch") for (const m of frame.messages as Envelope[]) ids.push(m.id);
      }
      return ids;
    };
    for (const [name, client] of [
      ["channel socket", plain],
      ["batch channel socket", batched],
      ["/v1/ws", mux],
    ] as const) {
      await eventually(() => received(client).length >= 40, `${name}: all 40 messages`);
      expect(received(client), name).toEqual(expected);
    }
    await eventually(() => (multiSse.text.match(/"type":"message"/g) ?? []).length >= 40, "/v1/events: all 40 messages");
    const sseIds = [...multiSse.text.matchAll(/"id":"(\d+)"/g)].map((m) => m[1]);
    expect(sseIds).toEqual(expected);

    // And the channel's own history holds each once.
    const history = (await (await relay(`/v1/channels/${channel}/messages?since=0`)).json()) as { messages: Envelope[] };
    expect(history.messages.map((m) => m.id)).toEqual(expected);
    plain.socket.close();
    batched.socket.close();
    mux.socket.close();
    await multiSse.cancel();
  });
});
