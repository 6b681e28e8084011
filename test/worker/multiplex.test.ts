import { describe, expect, it } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";
import { eventually, expectError, history, publishOk, randomChannel, range, relay, SseReader, WsClient } from "./helpers";

describe("multi-channel WebSocket", () => {
  it("subscribes to many channels, each with its own since, in per-channel order without cross-talk", async () => {
    const channels = Array.from({ length: 12 }, (_, i) => randomChannel(`m${i}`));
    const outsider = randomChannel("outsider");
    for (const channel of channels) await publishOk(channel, "before");
    const ws = await WsClient.open("/v1/ws");
    for (const [i, channel] of channels.entries()) ws.send({ type: "subscribe", channel, ...(i % 2 === 0 ? { since: "0" } : {}) });
    await eventually(() => ws.frames.filter((f) => f.type === "subscribed").length === channels.length, "every subscribed frame");

    for (let round = 1; round <= 3; round++) {
      for (const channel of channels) await publishOk(channel, `r${round}`);
      await publishOk(outsider, "not yours");
    }
    await eventually(() => ws.messages().length === 6 * 4 + 6 * 3, "every message");
    channels.forEach((channel, i) => {
      const ids = ws.messages(channel).map((m) => m.id);
      expect(ids).toEqual(i % 2 === 0 ? ["1", "2", "3", "4"] : ["2", "3", "4"]);
    });
    expect(ws.messages(outsider)).toEqual([]);
    ws.close();
  });

  it("stops delivery after unsubscribe", async () => {
    const [a, b] = [randomChannel("a"), randomChannel("b")];
    const ws = await WsClient.open("/v1/ws");
    ws.send({ type: "subscribe", channel: a });
    ws.send({ type: "subscribe", channel: b });
    await eventually(() => ws.frames.filter((f) => f.type === "subscribed").length === 2, "two subscribed frames");
    ws.send({ type: "unsubscribe", channel: a });
    await ws.waitFor((f) => f.type === "unsubscribed" && f.channel === a, "unsubscribed");
    await publishOk(a, "gone");
    await publishOk(b, "still here");
    await ws.waitFor((f) => f.type === "message" && f.channel === b, "b's message");
    expect(ws.messages(a)).toEqual([]);
    ws.close();
  });

  it("publishes to any channel with acks in order, and gets its own messages where subscribed", async () => {
    const [a, b] = [randomChannel("a"), randomChannel("b")];
    const ws = await WsClient.open("/v1/ws");
    ws.send({ type: "subscribe", channel: a });
    await ws.waitFor((f) => f.type === "subscribed", "subscribed");
    for (let i = 0; i < 6; i++) ws.send({ type: "publish", channel: i % 2 ? b : a, data: `p${i}`, ref: `r${i}` });
    await eventually(() => ws.frames.filter((f) => f.type === "ack").length === 6, "six acks");
    expect(ws.frames.filter((f) => f.type === "ack").map((f) => [f.ref, f.id])).toEqual([
      ["r0", "1"],
      ["r1", "1"],
      ["r2", "2"],
      ["r3", "2"],
      ["r4", "3"],
      ["r5", "3"],
    ]);
    expect((await history(b)).messages.map((m) => m.data)).toEqual(["p1", "p3", "p5"]);
    await eventually(() => ws.messages(a).length === 3, "own messages on a");
    ws.close();
  });

  it("answers bad frames with error frames carrying the ref, and keeps going", async () => {
    const channel = randomChannel();
    const ws = await WsClient.open("/v1/ws");
    ws.send({ type: "subscribe", channel, ref: "s1" });
    await ws.waitFor((f) => f.type === "subscribed", "subscribed");
    ws.send({ type: "subscribe", channel, ref: "dup" });
    ws.send({ type: "unsubscribe", channel: "never-subscribed", ref: "unknown" });
    ws.send({ type: "subscribe", channel: "bad/name", ref: "bad" });
    ws.send({ type: "subscribe", channel, since: "nope", ref: "since" });
    ws.send({ type: "publish", data: "no channel", ref: "nochan" });
    ws.send('{"type":"ping"}');
    await ws.waitFor((f) => f.type === "pong", "pong");
    await eventually(() => ws.frames.filter((f) => f.type === "error").length === 5, "five errors");
    const errors = ws.frames.filter((f) => f.type === "error") as Array<{ ref: string; error: { code: string } }>;
    expect(errors.map((e) => [e.ref, e.error.code])).toEqual([
      ["dup", "invalid_request"],
      ["unknown", "invalid_request"],
      ["bad", "invalid_channel"],
      ["since", "invalid_request"],
      ["nochan", "invalid_channel"],
    ]);
    await publishOk(channel, "still subscribed");
    await ws.waitForMessages(1);
    ws.close();
  });

  it("refuses a plain request with 426", async () => {
    await expectError(await relay("/v1/ws"), 426, "upgrade_required");
  });
});

describe("multi-channel SSE", () => {
  it("carries envelopes as data with a cursor id over every channel", async () => {
    const [a, b] = [randomChannel("a"), randomChannel("b")];
    await publishOk(a, "a1");
    const sse = await SseReader.openPath(`/v1/events?channel=${a}&channel=${b}`);
    await sse.waitForText(`id: ${a}=1,${b}=0\n\n`);
    await publishOk(b, "b1");
    await publishOk(a, "a2");
    const events = await eventually(() => sse.events().length === 2, "two events").then(() => sse.events());
    expect(events.map((e) => e.id)).toEqual([`${a}=1,${b}=1`, `${a}=2,${b}=1`]);
    expect(events.map((e) => (JSON.parse(e.data) as Envelope).data)).toEqual(["b1", "a2"]);
    expect(JSON.parse(events[0]!.data)).toMatchObject({ type: "message", channel: b, id: "1", event: "message" });
    await sse.cancel();
  });

  it("resumes every channel from Last-Event-ID, with nothing lost or doubled", async () => {
    const channels = [randomChannel("a"), randomChannel("b"), randomChannel("c")];
    const query = channels.map((c) => `channel=${c}`).join("&");
    const first = await SseReader.openPath(`/v1/events?${query}`);
    for (const channel of channels) await publishOk(channel, "one");
    await eventually(() => first.events().length === 3, "three events");
    const lastEventId = first.events().at(-1)!.id!;
    await first.cancel();

    for (let i = 0; i < 4; i++) for (const channel of channels) await publishOk(channel, `missed ${i}`);
    const resumed = await SseReader.openPath(`/v1/events?${query}`, { "Last-Event-ID": lastEventId });
    await eventually(() => resumed.events().length === 12, "the twelve missed messages");
    for (const channel of channels) {
      const ids = resumed
        .events()
        .map((e) => JSON.parse(e.data) as Envelope)
        .filter((m) => m.channel === channel)
        .map((m) => m.id);
      expect(ids).toEqual(range(2, 5));
    }
    await resumed.cancel();
  });

  it("sends relay.gap with a cursor that resumes past it", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 55; i++) await publishOk(channel, `m${i}`);
    const sse = await SseReader.openPath(`/v1/events?channel=${channel}&since=${channel}=2`);
    await eventually(() => sse.events().length === 51, "gap and 50 messages");
    const [gap, first] = sse.events();
    expect(gap).toEqual({ id: `${channel}=5`, event: "relay.gap", data: JSON.stringify({ channel, after: "2", oldest: "6" }) });
    expect(first!.id).toBe(`${channel}=6`);
    await sse.cancel();
  });

  it("refuses bad channel lists and cursors", async () => {
    const a = randomChannel();
    const cases = [
      "/v1/events",
      "/v1/events?channel=bad/name",
      `/v1/events?channel=${a}&since=garbage`,
      `/v1/events?channel=${a}&since=other=1`,
      `/v1/events?${Array.from({ length: 101 }, (_, i) => `channel=c${i}`).join("&")}`,
    ];
    const codes = [];
    for (const path of cases) {
      const res = await relay(path);
      expect(res.status).toBe(400);
      codes.push(((await res.json()) as { error: { code: string } }).error.code);
    }
    expect(codes).toEqual(["invalid_request", "invalid_channel", "invalid_request", "invalid_request", "invalid_request"]);
    await expectError(await relay(`/v1/events?channel=${a}`, { headers: { "Last-Event-ID": `${a}=x` } }), 400, "invalid_request");
  });
});

describe("multi-channel WebSocket resubscribe", () => {
  it("unsubscribe and subscribe again at once: one subscription, no doubled delivery", async () => {
    const channel = randomChannel();
    const ws = await WsClient.open("/v1/ws");
    ws.send({ type: "subscribe", channel });
    ws.send({ type: "unsubscribe", channel });
    ws.send({ type: "subscribe", channel });
    await ws.waitFor((f) => f.type === "unsubscribed", "unsubscribed");
    await eventually(() => ws.frames.filter((f) => f.type === "subscribed").length >= 1, "a subscribed frame");
    const count = async () => ((await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: { ws: number } }).subscribers.ws;
    await eventually(async () => (await count()) === 1, "exactly one room socket");
    await publishOk(channel, "once");
    await ws.waitForMessages(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(ws.messages().map((m) => m.data)).toEqual(["once"]);
    ws.close();
  });
});
