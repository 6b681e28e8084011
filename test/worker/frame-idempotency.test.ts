import { describe, expect, it } from "vitest";
import { eventually, history, publish, randomChannel, WsClient } from "./helpers";

type Answer = { type: string; ref?: string; id?: string; error?: { code: string } };

const answerTo = (ws: WsClient, ref: string) => ws.waitFor((f) => f.ref === ref, `an answer to ${ref}`) as Promise<Answer>;

describe("idempotencyKey in publish frames", () => {
  it("channel socket: a repeated key is acknowledged with the first id, stored and delivered once", async () => {
    const channel = randomChannel("idem-ws");
    const publisher = await WsClient.connect(channel);
    const listener = await WsClient.connect(channel);
    publisher.send({ type: "publish", data: "first", idempotencyKey: "k1", ref: "a" });
    publisher.send({ type: "publish", data: "other", ref: "b" });
    // A resend after a lost ack, and one with another body: both are the first message.
    publisher.send({ type: "publish", data: "first", idempotencyKey: "k1", ref: "c" });
    publisher.send({ type: "publish", data: "changed", event: "x", idempotencyKey: "k1", ref: "d" });
    const answers = await Promise.all(["a", "b", "c", "d"].map((ref) => answerTo(publisher, ref)));
    expect(answers.map((f) => [f.type, f.id])).toEqual([
      ["ack", "1"],
      ["ack", "2"],
      ["ack", "1"],
      ["ack", "1"],
    ]);
    expect((await history(channel)).messages.map((m) => [m.id, m.data])).toEqual([
      ["1", "first"],
      ["2", "other"],
    ]);
    // A later message proves the listener has seen everything before it: nothing more was delivered.
    publisher.send({ type: "publish", data: "last", ref: "e" });
    await eventually(() => listener.messages().some((m) => m.data === "last"), "the last message");
    expect(listener.messages().map((m) => m.data)).toEqual(["first", "other", "last"]);
    publisher.close();
    listener.close();
  });

  it("/v1/ws: a repeated key is acknowledged with the first id and stored once; the same key on another channel is new", async () => {
    const a = randomChannel("idem-mux-a");
    const b = randomChannel("idem-mux-b");
    const ws = await WsClient.open("/v1/ws");
    ws.send({ type: "publish", channel: a, data: "one", idempotencyKey: "shared", ref: "1" });
    ws.send({ type: "publish", channel: a, data: "one", idempotencyKey: "shared", ref: "2" });
    ws.send({ type: "publish", channel: b, data: "one", idempotencyKey: "shared", ref: "3" });
    const answers = await Promise.all(["1", "2", "3"].map((ref) => answerTo(ws, ref)));
    expect(answers.map((f) => [f.type, f.id])).toEqual([
      ["ack", "1"],
      ["ack", "1"],
      ["ack", "1"],
    ]);
    expect((await history(a)).lastId).toBe("1");
    expect((await history(b)).lastId).toBe("1");
    ws.close();
  });

  it("a key is one key whatever the way in: a frame's key repeated as Idempotency-Key over HTTP gets the first message", async () => {
    const channel = randomChannel("idem-across");
    const ws = await WsClient.connect(channel);
    ws.send({ type: "publish", data: "by socket", idempotencyKey: "k-across", ref: "w" });
    expect(await answerTo(ws, "w")).toMatchObject({ type: "ack", id: "1" });
    const res = await publish(channel, "by http", { headers: { "Idempotency-Key": "k-across" } });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ id: "1", channel });
    expect((await history(channel)).messages.map((m) => m.data)).toEqual(["by socket"]);
    ws.close();
  });

  it.each([
    ["channel socket", (channel: string) => `/v1/channels/${channel}/ws`],
    ["/v1/ws", () => "/v1/ws"],
  ])("%s: a bad key is an invalid_idempotency_key error frame with the ref; nothing is stored, the socket stays open", async (_name, path) => {
    const channel = randomChannel("idem-bad");
    const ws = await WsClient.open(path(channel));
    for (const [ref, idempotencyKey] of [
      ["empty", ""],
      ["long", "k".repeat(129)],
      ["unicode", "clé"],
      ["number", 7],
    ] as const) {
      ws.send({ type: "publish", channel, data: "x", idempotencyKey, ref });
      expect(await answerTo(ws, ref)).toMatchObject({ type: "error", ref, error: { code: "invalid_idempotency_key" } });
    }
    ws.send({ type: "publish", channel, data: "fine", idempotencyKey: "k".repeat(128), ref: "ok" });
    expect(await answerTo(ws, "ok")).toMatchObject({ type: "ack", id: "1" });
    expect(ws.closed).toBeUndefined();
    expect((await history(channel)).messages.map((m) => m.data)).toEqual(["fine"]);
    ws.close();
  });
});
