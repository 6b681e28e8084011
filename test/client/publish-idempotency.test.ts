import { describe, expect, it } from "vitest";
import type { FetchLike } from "../../src/client/platform";
import { FakeRelay, type FakeSocket } from "./fake-relay";
import { harnessPerTest, waitFor } from "./support";

const start = harnessPerTest();

/** The `idempotencyKey` of every publish frame the relay received, over every socket so far. */
function frameKeys(sockets: FakeSocket[]): unknown[] {
  return sockets
    .flatMap((s) => s.sent.map((text) => JSON.parse(text) as { type: string; idempotencyKey?: unknown }))
    .flatMap((f) => (f.type === "publish" ? [f.idempotencyKey] : []));
}

/** Keeps every socket the relay ever had, also after it dropped them. */
function trackSockets(relay: FakeRelay): FakeSocket[] {
  const seen: FakeSocket[] = [];
  const add = relay.sockets.add.bind(relay.sockets);
  relay.sockets.add = (socket) => {
    seen.push(socket);
    return add(socket);
  };
  return seen;
}

/** The relay stores the next publish frame on `socket`, then the socket dies before its ack gets out. */
function loseTheNextAck(socket: FakeSocket): void {
  const send = socket.clientSend.bind(socket);
  socket.clientSend = (text) => {
    send(text);
    // After the relay has read the frame (a microtask), before the ack is delivered (a later task).
    if (text.includes('"publish"')) queueMicrotask(() => queueMicrotask(() => socket.kill(1006)));
  };
}

describe("a publish keeps one idempotency key across every attempt", () => {
  it("a resend after the socket dropped before the ack carries the same key, and is stored once", async () => {
    // random() = 0: a killed socket delivers none of its undelivered frames.
    const relay = new FakeRelay(() => 0);
    const sockets = trackSockets(relay);
    const h = start({}, relay);
    await waitFor(() => h.client.state === "open", "open");
    loseTheNextAck(sockets[0]!);

    const receipt = await h.client.publish("news", "once");
    expect(receipt).toEqual({ channel: "news", id: "1" });
    const keys = frameKeys(sockets);
    expect(keys).toHaveLength(2);
    expect(typeof keys[0]).toBe("string");
    expect(keys[1]).toBe(keys[0]);
    expect(relay.stored).toEqual([["news", "once"]]);
  });

  it("a resend after an ack that came too late (publishTimeout) carries the same key, and is stored once", async () => {
    const relay = new FakeRelay(() => 0);
    const sockets = trackSockets(relay);
    const h = start({ publishTimeout: 50 }, relay);
    await waitFor(() => h.client.state === "open", "open");
    // The relay stores the publish but its ack never leaves this socket.
    const first = sockets[0]!;
    const reply = first.send.bind(first);
    first.send = (frame) => {
      if (typeof frame === "object" && (frame as { type?: string }).type === "ack") return;
      reply(frame);
    };

    const receipt = await h.client.publish("news", "slow", { idempotencyKey: "order-42" });
    expect(receipt).toEqual({ channel: "news", id: "1" });
    expect(frameKeys(sockets)).toEqual(["order-42", "order-42"]);
    expect(relay.stored).toEqual([["news", "slow"]]);
  });

  it("falling back to HTTP after the socket was lost sends the same key as Idempotency-Key, and is stored once", async () => {
    const relay = new FakeRelay(() => 0);
    const sockets = trackSockets(relay);
    const httpKeys: string[] = [];
    const fetch: FetchLike = (url, init) => {
      if (init?.method === "POST") httpKeys.push(init.headers?.["Idempotency-Key"] ?? "");
      return relay.fetch(url, init);
    };
    const h = start({ fallbackAfter: 1, fetch }, relay);
    await waitFor(() => h.client.state === "open", "open");
    const socket = sockets[0]!;
    const send = socket.clientSend.bind(socket);
    socket.clientSend = (text) => {
      send(text);
      if (!text.includes('"publish"')) return;
      // Stored, the ack lost with the socket, and no WebSocket gets through any more.
      relay.wsBlocked = "refuse";
      queueMicrotask(() => queueMicrotask(() => socket.kill(1006)));
    };

    const receipt = await h.client.publish("news", "fell back");
    expect(receipt).toEqual({ channel: "news", id: "1" });
    expect(h.client.transport).not.toBe("ws");
    const [frameKey] = frameKeys(sockets);
    expect(typeof frameKey).toBe("string");
    expect(httpKeys).toEqual([frameKey]);
    expect(relay.stored).toEqual([["news", "fell back"]]);
  });

  it("refuses a key the relay would refuse, before sending anything", async () => {
    const h = start();
    await waitFor(() => h.client.state === "open", "open");
    for (const idempotencyKey of ["", "k".repeat(129), "clé"]) {
      await expect(h.client.publish("news", "x", { idempotencyKey })).rejects.toMatchObject({ code: "invalid_idempotency_key" });
    }
    expect(frameKeys([...h.relay.sockets])).toEqual([]);
    expect(h.relay.stored).toEqual([]);
  });
});
