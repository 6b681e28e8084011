import { describe, expect, it } from "vitest";
import type { FetchLike } from "../../src/client/platform";
import type { PublishReceipt } from "../../src/client/types";
import { FakeRelay } from "./fake-relay";
import { type Harness, harnessPerTest, recorder, sleep, waitFor } from "./support";

const start = harnessPerTest();

const publishFrames = (h: Harness) => [...h.relay.sockets].flatMap((s) => s.sent).filter((t) => t.includes('"publish"'));
const httpPublishes = (h: Harness) => h.relay.log.filter((l) => l.startsWith("POST"));

describe("publish", () => {
  it("goes over the open WebSocket and resolves with the relay's ack", async () => {
    const h = start();
    await waitFor(() => h.client.state === "open", "open");
    const receipt = await h.client.publish("news", "hello", { event: "greeting" });
    expect(receipt).toEqual({ channel: "news", id: "1" });
    expect(JSON.parse(publishFrames(h)[0]!)).toMatchObject({ type: "publish", channel: "news", data: "hello", event: "greeting" });
    expect(httpPublishes(h)).toEqual([]);
    expect(h.relay.channel("news").messages[0]).toMatchObject({ data: "hello", event: "greeting" });
  });

  it("goes over HTTP with an Idempotency-Key when there is no WebSocket", async () => {
    const h = start({ transport: "sse" });
    await waitFor(() => h.client.state === "open", "open");
    const receipt = await h.client.publish("news", "hi there", { event: "note" });
    expect(receipt).toEqual({ channel: "news", id: "1" });
    expect(httpPublishes(h)).toEqual(["POST http://relay.test/v1/channels/news/messages?event=note"]);
  });

  it("rejects bad names before sending anything, and relays the relay's refusals", async () => {
    const h = start({ transport: "poll" });
    await waitFor(() => h.client.state === "open", "open");
    await expect(h.client.publish("bad/name", "x")).rejects.toMatchObject({ code: "invalid_channel" });
    await expect(h.client.publish("news", "x", { event: "relay.gap" })).rejects.toMatchObject({ code: "invalid_event" });
    await expect(h.client.publish("forbidden-room", "x")).rejects.toMatchObject({ code: "forbidden", status: 403 });
    expect(httpPublishes(h)).toEqual(["POST http://relay.test/v1/channels/forbidden-room/messages"]);
  });

  it("queues publishes while offline, up to maxQueuedPublishes, and sends them in order on reconnect", async () => {
    const h = start({ maxQueuedPublishes: 3 });
    await waitFor(() => h.client.state === "open", "open");
    h.relay.down = true;
    h.relay.dropAll(1006);
    await waitFor(() => h.client.state === "reconnecting", "offline");
    const queued = [h.client.publish("news", "q1"), h.client.publish("news", "q2"), h.client.publish("other", "q3")];
    await expect(h.client.publish("news", "q4")).rejects.toMatchObject({ code: "queue_full" });
    await sleep(20);
    expect(h.relay.stored).toEqual([]);
    h.relay.down = false;
    const receipts = await Promise.all(queued);
    expect(receipts).toEqual<PublishReceipt[]>([
      { channel: "news", id: "1" },
      { channel: "news", id: "2" },
      { channel: "other", id: "1" },
    ]);
    expect(h.relay.stored).toEqual([
      ["news", "q1"],
      ["news", "q2"],
      ["other", "q3"],
    ]);
    // The bound is on what waits: once flushed, there is room again.
    await expect(h.client.publish("news", "q5")).resolves.toEqual({ channel: "news", id: "3" });
  });

  it("retries an HTTP publish whose answer was lost with the same Idempotency-Key, storing it once", async () => {
    const relay = new FakeRelay();
    const keys: string[] = [];
    let lostAnswers = 2;
    // The relay stores the first attempts, but their answers are lost on the way back.
    const fetch: FetchLike = async (url, init) => {
      const response = await relay.fetch(url, init);
      if (init?.method !== "POST") return response;
      keys.push(init.headers?.["Idempotency-Key"] ?? "");
      if (lostAnswers-- > 0) throw new TypeError("connection reset");
      return response;
    };
    const { client } = start({ transport: "poll", fetch }, relay);
    await waitFor(() => client.state === "open", "open");
    await expect(client.publish("news", "once")).resolves.toEqual({ channel: "news", id: "1" });
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(relay.stored).toEqual([["news", "once"]]);
  });

  it("retries an HTTP publish cut after its 201 but before the body, with the same Idempotency-Key, storing it once", async () => {
    const relay = new FakeRelay();
    const keys: string[] = [];
    let cutBodies = 1;
    const fetch: FetchLike = async (url, init) => {
      const response = await relay.fetch(url, init);
      if (init?.method !== "POST") return response;
      keys.push(init.headers?.["Idempotency-Key"] ?? "");
      if (cutBodies-- > 0)
        return { ...response, ok: response.ok, status: response.status, headers: response.headers, text: () => Promise.reject(new TypeError("terminated")) };
      return response;
    };
    const { client } = start({ transport: "poll", fetch }, relay);
    await waitFor(() => client.state === "open", "open");
    await expect(client.publish("news", "once")).resolves.toEqual({ channel: "news", id: "1" });
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(1);
    expect(relay.stored).toEqual([["news", "once"]]);
  });

  it("sends a WebSocket publish again when its socket drops before the ack", async () => {
    const h = start();
    await waitFor(() => h.client.state === "open", "open");
    const socket = [...h.relay.sockets][0]!;
    // The relay goes away before it reads the frame.
    socket.clientSend = () => {
      socket.kill(1006);
    };
    const receipt = await h.client.publish("news", "resent");
    expect(receipt).toEqual({ channel: "news", id: "1" });
    expect(h.relay.stored).toEqual([["news", "resent"]]);
  });

  it("keeps the order of publishes across a socket drop", async () => {
    const h = start();
    await waitFor(() => h.client.state === "open", "open");
    const socket = [...h.relay.sockets][0]!;
    const send = socket.clientSend.bind(socket);
    let frames = 0;
    socket.clientSend = (text) => {
      if (text.includes('"publish"') && ++frames === 3) return void socket.kill(1006);
      send(text);
    };
    const receipts = await Promise.all(Array.from({ length: 6 }, (_, i) => h.client.publish("news", `p${i}`)));
    expect(receipts.map((r) => r.id)).toEqual(["1", "2", "3", "4", "5", "6"]);
    expect(h.relay.stored.map(([, data]) => data)).toEqual(["p0", "p1", "p2", "p3", "p4", "p5"]);
  });

  it("rejects what is queued when the client is closed", async () => {
    const h = start();
    h.relay.down = true;
    await waitFor(() => h.client.state === "reconnecting", "offline");
    const pending = h.client.publish("news", "never");
    h.client.close();
    await expect(pending).rejects.toMatchObject({ code: "closed" });
  });

  it("delivers its own published messages to its subscriptions once", async () => {
    const h = start();
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: 0 });
    await waitFor(() => h.client.state === "open", "open");
    await h.client.publish("news", "mine");
    await waitFor(() => news.received.length === 1, "echo");
    await sleep(20);
    expect(news.received.map((m) => m.data)).toEqual(["mine"]);
  });
});
