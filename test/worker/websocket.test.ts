import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eventually, history, publishOk, randomChannel, range, relay, roomStub, WsClient } from "./helpers";

describe("WebSocket subscribers", () => {
  it("greets with the last id, then receives messages in order", async () => {
    const channel = randomChannel();
    await publishOk(channel, "before");
    const ws = await WsClient.connect(channel);
    expect(ws.frames[0]).toEqual({ type: "subscribed", channel, lastId: "1" });
    for (let i = 0; i < 10; i++) await publishOk(channel, `live ${i}`);
    const messages = await ws.waitForMessages(10);
    expect(messages.map((m) => m.id)).toEqual(range(2, 11));
    expect(messages[0]).toMatchObject({ type: "message", channel, event: "message", data: "live 0" });
    ws.close();
  });

  it("publishes with an ack, and the publisher gets its own message", async () => {
    const channel = randomChannel();
    const publisher = await WsClient.connect(channel);
    const listener = await WsClient.connect(channel);
    for (let i = 0; i < 5; i++) publisher.send({ type: "publish", data: `p${i}`, event: "chat", ref: `r${i}` });
    await publisher.waitFor((f) => f.ref === "r4", "last ack");
    const acks = publisher.frames.filter((f) => f.type === "ack");
    expect(acks).toEqual(range(1, 5).map((id, i) => ({ type: "ack", ref: `r${i}`, id })));
    expect((await publisher.waitForMessages(5)).map((m) => m.data)).toEqual(["p0", "p1", "p2", "p3", "p4"]);
    expect((await listener.waitForMessages(5)).every((m) => m.event === "chat")).toBe(true);
    expect((await history(channel)).lastId).toBe("5");
    publisher.close();
    listener.close();
  });

  it("answers bad frames with error frames and keeps the socket open", async () => {
    const channel = randomChannel();
    const ws = await WsClient.connect(channel);
    ws.send("not json");
    ws.send('{"type":"subscribe-all","ref":"u1"}');
    ws.send('{"type":"publish","ref":"d1"}');
    ws.send({ type: "publish", data: "x", event: "relay.mine", ref: "e1" });
    ws.send({ type: "publish", data: "x".repeat(1025), ref: "big" });
    ws.socket.send(new Uint8Array([1, 2, 3]));
    ws.send({ type: "publish", data: "fine", ref: "ok" });
    await ws.waitFor((f) => f.type === "ack", "ack after the bad frames");
    const errors = ws.frames.filter((f) => f.type === "error") as Array<{ ref?: string; error: { code: string } }>;
    expect(errors.map((e) => [e.ref, e.error.code])).toEqual([
      [undefined, "invalid_frame"],
      ["u1", "invalid_frame"],
      ["d1", "invalid_frame"],
      ["e1", "invalid_event"],
      ["big", "message_too_large"],
      [undefined, "invalid_frame"],
    ]);
    expect(ws.closed).toBeUndefined();
    expect((await history(channel)).messages.map((m) => m.data)).toEqual(["fine"]);
    ws.close();
  });

  it("resumes many clients from the same id, each with exactly what it missed, as publishes go on between them", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 5; i++) await publishOk(channel, `m${i}`);
    const first = await Promise.all([1, 2, 3].map(() => WsClient.connect(channel, "since=2")));
    await publishOk(channel, "m6");
    const later = await WsClient.connect(channel, "since=2");
    for (const ws of first) expect((await ws.waitForMessages(4)).map((m) => m.data)).toEqual(["m3", "m4", "m5", "m6"]);
    expect((await later.waitForMessages(4)).map((m) => m.data)).toEqual(["m3", "m4", "m5", "m6"]);
    await publishOk(channel, "m7");
    for (const ws of [...first, later]) {
      expect((await ws.waitForMessages(5)).map((m) => m.id)).toEqual(range(3, 7));
      ws.close();
    }
  });

  it("answers the exact ping text with the exact pong text", async () => {
    const ws = await WsClient.connect(randomChannel());
    ws.send('{"type":"ping"}');
    await eventually(() => ws.raw.includes('{"type":"pong"}'), "pong");
    ws.close();
  });

  it("keeps delivering, and answering pings, after the room hibernates", async () => {
    const channel = randomChannel();
    const ws = await WsClient.connect(channel);
    await publishOk(channel, "before");
    await ws.waitForMessages(1);
    await evictDurableObject(roomStub(channel), { webSockets: "hibernate" });
    ws.send('{"type":"ping"}');
    await eventually(() => ws.raw.includes('{"type":"pong"}'), "pong while hibernated");
    await publishOk(channel, "after");
    const messages = await ws.waitForMessages(2);
    expect(messages.map((m) => [m.id, m.data, m.channel])).toEqual([
      ["1", "before", channel],
      ["2", "after", channel],
    ]);
    ws.send({ type: "publish", data: "from ws", ref: "w" });
    await ws.waitFor((f) => f.type === "ack" && f.id === "3", "ack after wake-up");
    ws.close();
  });

  it("resumes with since: exactly the missed messages, also while publishing goes on", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 5; i++) await publishOk(channel, `m${i}`);
    const publishing = (async () => {
      for (let i = 6; i <= 25; i++) await publishOk(channel, `m${i}`);
    })();
    const ws = await WsClient.connect(channel, "since=3");
    await publishing;
    const messages = await ws.waitForMessages(22);
    expect(messages.map((m) => m.id)).toEqual(range(4, 25));
    ws.close();
  });

  it("tells of a gap before resuming at the oldest retained message", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 60; i++) await publishOk(channel, `m${i}`);
    const ws = await WsClient.connect(channel, "since=2");
    await ws.waitForMessages(50);
    expect(ws.frames[1]).toEqual({ type: "gap", channel, after: "2", oldest: "11" });
    expect(ws.messages().map((m) => m.id)).toEqual(range(11, 60));
    ws.close();
  });

  it("refuses a malformed since before upgrading", async () => {
    const res = await relay(`/v1/channels/${randomChannel()}/ws?since=-4`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(400);
  });

  it("counts subscribers in channel info and forgets closed ones", async () => {
    const channel = randomChannel();
    const a = await WsClient.connect(channel);
    const b = await WsClient.connect(channel);
    const count = async () => ((await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: { ws: number } }).subscribers.ws;
    expect(await count()).toBe(2);
    a.close();
    await eventually(async () => (await count()) === 1, "one subscriber left");
    b.close();
  });
});
