import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";
import { type ConnectParams, connectRequest } from "../../src/room/connect-request";
import { eventually, expectError, randomChannel, range, relay, roomStub, SseReader, WsClient } from "./helpers";

/** Publishes `data` in one turn of the room, as a burst arriving while the first goes out does. */
async function publishBurst(channel: string, ...data: string[]): Promise<void> {
  await runInDurableObject(roomStub(channel), (room) => Promise.all(data.map((d) => room.publish(channel, { data: d, event: "message" }))));
}

/** The ids of every message a client got, whether alone or in batch frames, in order. */
function deliveredIds(client: Recorded, channel?: string): string[] {
  return client.frames.flatMap((frame) => {
    const envelopes = frame.type === "batch" ? (frame.messages as Envelope[]) : frame.type === "message" ? [frame as unknown as Envelope] : [];
    return envelopes.filter((e) => channel === undefined || e.channel === channel).map((e) => e.id);
  });
}

async function waitForIds(client: Recorded, count: number, channel?: string): Promise<string[]> {
  await eventually(() => deliveredIds(client, channel).length >= count, `${count} messages`);
  return deliveredIds(client, channel);
}

/** Frames a client received, parsed, in order. */
interface Recorded {
  frames: Array<Record<string, unknown>>;
}

/**
 * A client whose socket a room opens in its own turn (through `room.fetch`), so it connects while
 * messages wait for a batch. A socket opened inside a Durable Object stays its I/O: it is read only
 * while the test runs in the room (`runInDurableObject`), and only its frames reach the test.
 */
class RoomSideClient implements Recorded {
  readonly frames: Array<Record<string, unknown>> = [];

  async connect(room: { fetch(request: Request): Promise<Response> }, params: ConnectParams): Promise<void> {
    const res = await room.fetch(connectRequest(params));
    expect(res.status).toBe(101);
    const socket = res.webSocket!;
    socket.addEventListener("message", (event) => this.frames.push(JSON.parse(event.data as string) as Record<string, unknown>));
    socket.accept();
  }
}

/** What a socket without batches gets for a message: its envelope's JSON. */
const envelopeText = (envelope: Envelope): string => JSON.stringify(envelope);

describe("batch frames (?frames=batch)", () => {
  it("sends a burst's first message at once and the rest in one batch frame; a socket without the option gets one frame per message", async () => {
    const channel = randomChannel();
    const plain = await WsClient.connect(channel);
    const batched = await WsClient.connect(channel, "frames=batch");
    await publishBurst(channel, "a", "b", "c", "d");
    expect(await waitForIds(batched, 4)).toEqual(range(1, 4));
    expect(await waitForIds(plain, 4)).toEqual(range(1, 4));

    const envelopes = plain.messages();
    expect(plain.raw.slice(1)).toEqual(envelopes.map(envelopeText));
    expect(batched.frames.slice(1)).toEqual([envelopes[0], { type: "batch", messages: envelopes.slice(1) }]);
    expect(envelopes.map((e) => e.data)).toEqual(["a", "b", "c", "d"]);
    plain.close();
    batched.close();
  });

  it("replays in batch frames, after the gap notice", async () => {
    const channel = randomChannel();
    // HISTORY_LIMIT is 50 in these tests.
    await publishBurst(channel, ...range(1, 55).map((i) => `m${i}`));
    const batched = await WsClient.connect(channel, "since=2&frames=batch");
    expect(await waitForIds(batched, 50)).toEqual(range(6, 55));
    expect(batched.frames.map((f) => f.type)).toEqual(["subscribed", "gap", "batch"]);
    expect(batched.frames[1]).toEqual({ type: "gap", channel, after: "2", oldest: "6" });
    batched.close();
  });

  it("gives a subscriber that joins while messages wait each of them exactly once: in its replay, never again live", async () => {
    const channel = randomChannel();
    const early = await WsClient.connect(channel, "frames=batch");
    const resuming = new RoomSideClient();
    const live = new RoomSideClient();
    await runInDurableObject(roomStub(channel), async (room) => {
      for (const data of ["m1", "m2", "m3"]) void room.publish(channel, { data, event: "message" });
      // m2 and m3 wait for the window to end; these two connect in the same turn. A long-poll's
      // socket first: no join is announced for it, which would send what waits before it joins.
      const connecting = [
        resuming.connect(room, { channel, delivery: "socket", transport: "poll", clientId: "resuming", since: 1, batch: true }),
        live.connect(room, { channel, delivery: "socket", transport: "ws", clientId: "live", batch: true }),
      ];
      void room.publish(channel, { data: "m4", event: "message" });
      await Promise.all(connecting);
      // Their sockets are the room's I/O: they are read while this runs in the room.
      await eventually(() => deliveredIds(resuming).includes("4") && deliveredIds(live).includes("4"), "m4 on both");
      // Anything sent twice would come before the next message: wait for it, then compare.
      void room.publish(channel, { data: "m5", event: "message" });
      await eventually(() => deliveredIds(resuming).includes("5") && deliveredIds(live).includes("5"), "m5 on both");
    });
    expect(await waitForIds(early, 5)).toEqual(range(1, 5));
    // m2 and m3 did wait: they went out to the earlier subscriber together.
    expect(early.frames).toContainEqual(
      expect.objectContaining({ type: "batch", messages: [expect.objectContaining({ id: "2" }), expect.objectContaining({ id: "3" })] }),
    );
    expect(deliveredIds(resuming)).toEqual(range(2, 5));
    expect(deliveredIds(live)).toEqual(["4", "5"]);
    expect(live.frames[0]).toEqual({ type: "subscribed", channel, lastId: "3" });
    early.close();
  });

  it("sends presence after the messages published before it, as a subscriber without batches sees them", async () => {
    const channel = randomChannel();
    const batched = await WsClient.connect(channel, "frames=batch&presence=1");
    const plain = await WsClient.connect(channel, "presence=1");
    await runInDurableObject(roomStub(channel), async (room) => {
      for (const data of ["m1", "m2", "m3"]) void room.publish(channel, { data, event: "message" });
      await new RoomSideClient().connect(room, { channel, delivery: "socket", transport: "ws", clientId: "newcomer" });
    });
    const order = (client: Recorded) =>
      client.frames.flatMap((f) => {
        if (f.type === "batch") return (f.messages as Envelope[]).map((e) => e.id);
        if (f.type === "message") return [f.id as string];
        return f.type === "join" && (f.subscriber as { id: string }).id === "newcomer" ? ["join"] : [];
      });
    await eventually(() => order(batched).includes("join") && order(plain).includes("join"), "the newcomer's join");
    expect(order(plain)).toEqual(["1", "2", "3", "join"]);
    expect(order(batched)).toEqual(["1", "2", "3", "join"]);
    expect(batched.frames.some((f) => f.type === "batch")).toBe(true);
    batched.close();
    plain.close();
  });

  it("acknowledges a publish after the publisher got its own message, also when it waited for a batch", async () => {
    const channel = randomChannel();
    const publisher = await WsClient.connect(channel, "frames=batch");
    await runInDurableObject(roomStub(channel), (room, state) => {
      void room.publish(channel, { data: "m1", event: "message" });
      const [socket] = state.getWebSockets();
      for (const ref of ["r2", "r3"]) void room.webSocketMessage(socket!, JSON.stringify({ type: "publish", data: ref, ref }));
    });
    await publisher.waitFor((f) => f.type === "ack" && f.ref === "r3", "the second ack");
    expect(
      publisher.frames
        .slice(1)
        .map((f) =>
          f.type === "batch" ? `batch ${(f.messages as Envelope[]).map((e) => e.id)}` : f.type === "ack" ? `ack ${f.ref} ${f.id}` : `${f.type} ${f.id}`,
        ),
    ).toEqual(["message 1", "batch 2,3", "ack r2 2", "ack r3 3"]);
    publisher.close();
  });

  it("refuses an unknown frames option before upgrading, and opens nothing", async () => {
    const channel = randomChannel();
    await expectError(await relay(`/v1/channels/${channel}/ws?frames=all`, { headers: { Upgrade: "websocket" } }), 400, "invalid_request");
    await expectError(await relay(`/v1/channels/${channel}/ws?frames=`, { headers: { Upgrade: "websocket" } }), 400, "invalid_request");
    await expectError(await relay("/v1/ws?frames=1", { headers: { Upgrade: "websocket" } }), 400, "invalid_request");
    const info = (await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: { ws: number } };
    expect(info.subscribers.ws).toBe(0);
  });
});

describe("batch frames through the Worker", () => {
  it("/v1/ws forwards batch frames to a client that asked for them and unpacks them for one that did not", async () => {
    const channel = randomChannel();
    const other = randomChannel();
    const batched = await WsClient.open("/v1/ws?frames=batch");
    const plain = await WsClient.open("/v1/ws");
    for (const client of [batched, plain]) {
      client.send({ type: "subscribe", channel });
      client.send({ type: "subscribe", channel: other });
      await eventually(() => client.frames.filter((f) => f.type === "subscribed").length === 2, "both subscribed");
    }
    await publishBurst(channel, "a", "b", "c");
    await publishBurst(other, "x", "y", "z");
    for (const client of [batched, plain]) {
      expect(await waitForIds(client, 3, channel)).toEqual(range(1, 3));
      expect(await waitForIds(client, 3, other)).toEqual(range(1, 3));
    }

    const envelopes = plain.messages();
    const texts = plain.raw.filter((text) => JSON.parse(text).type === "message");
    expect(texts).toEqual(envelopes.map(envelopeText));
    const batches = batched.frames.filter((f) => f.type === "batch") as unknown as Array<{ messages: Envelope[] }>;
    expect(batches.map((b) => b.messages)).toEqual([
      envelopes.filter((e) => e.channel === channel).slice(1),
      envelopes.filter((e) => e.channel === other).slice(1),
    ]);
    batched.close();
    plain.close();
  });

  it("/v1/events gets its rooms' messages in batch frames and sends each as its own event", async () => {
    const channel = randomChannel();
    const sse = await SseReader.openPath(`/v1/events?channel=${channel}`);
    await sse.waitForText("id: ");
    const batchSockets = await runInDurableObject(roomStub(channel), (_room, state) => state.getWebSockets("json:batch").length);
    expect(batchSockets).toBe(1);
    await publishBurst(channel, "a", "b", "c");
    await eventually(() => sse.events().filter((e) => e.event === "message").length === 3, "three events");
    const events = sse.events().filter((e) => e.event === "message");
    expect(events.map((e) => e.id)).toEqual([`${channel}=1`, `${channel}=2`, `${channel}=3`]);
    expect(events.map((e) => (JSON.parse(e.data) as Envelope).data)).toEqual(["a", "b", "c"]);
    await sse.cancel();
  });
});
