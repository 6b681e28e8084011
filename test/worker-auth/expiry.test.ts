import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CLOCK_LEEWAY_SECONDS, tokenDeadlineMs } from "../../src/auth/claims";
import { CloseCode } from "../../src/protocol/close-codes";
import { eventually, roomStub, SseReader } from "../worker/helpers";
import { mint, nowSeconds, randomChannel, send, Ws } from "./auth-helpers";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An `exp` whose token the relay honours for `seconds` more: exp plus the 30 s leeway is then. */
const expIn = (seconds: number) => nowSeconds() + seconds - CLOCK_LEEWAY_SECONDS;

/** Waits until a token with `exp` is no longer honoured, then fires the channels' alarms instead of waiting for them. */
async function passExpiry(exp: number, channels: string[]): Promise<void> {
  const wait = tokenDeadlineMs(exp) - Date.now() + 50;
  if (wait > 0) await sleep(wait);
  // The alarm may well have fired by itself already; either way the sockets must be closed.
  for (const channel of channels) await runDurableObjectAlarm(roomStub(channel));
}

describe("a connection whose token expires is closed", () => {
  it("channel WebSocket: closed with 4002 at exp + leeway, while a socket with a longer token stays", async () => {
    const channel = randomChannel("expiry");
    const exp = expIn(2);
    const short = await Ws.connect(channel, await mint({ publish: [channel], subscribe: [channel] }, { exp }));
    const long = await Ws.connect(channel, await mint({ subscribe: [channel] }));
    const publicWatcher = await Ws.connect(channel, await mint({ subscribe: [channel] }, { exp: exp + 600 }));
    expect(short.closed).toBeUndefined();
    await passExpiry(exp, [channel]);
    expect(await short.waitClosed("the expired socket's close")).toEqual({ code: CloseCode.TokenExpired, reason: "token expired" });
    expect(CloseCode.TokenExpired).toBe(4002);
    await sleep(100);
    expect(long.closed).toBeUndefined();
    expect(publicWatcher.closed).toBeUndefined();
    long.close();
    publicWatcher.close();
  }, 15_000);

  it("channel WebSocket: a token inside the 30 s leeway is accepted at connect and the socket stays open, as the door said", async () => {
    const channel = randomChannel("expiry");
    const res = await send(`/v1/channels/${channel}/ws`, await mint({ subscribe: [channel] }, { exp: nowSeconds() - 5 }), {
      headers: { Upgrade: "websocket" },
    });
    expect(res.status).toBe(101);
    const ws = new Ws(res.webSocket!);
    await ws.waitFor((f) => f.type === "subscribed", "subscribed frame");
    await runDurableObjectAlarm(roomStub(channel));
    // Delivered after the alarm ran: the socket was not closed at exp.
    const published = await send(`/v1/channels/${channel}/messages`, await mint({ publish: [channel] }), { method: "POST", body: "still here" });
    expect(published.status).toBe(201);
    await ws.waitFor((f) => f.type === "message" && f.data === "still here", "the message after the alarm");
    expect(ws.closed).toBeUndefined();
    ws.close();
  });

  it("multi-channel WebSocket: a token inside the leeway gets a session that stays open and publishes", async () => {
    const channel = randomChannel("expiry-leeway");
    const ws = await Ws.open("/v1/ws", await mint({ publish: [channel], subscribe: [channel] }, { exp: nowSeconds() - 5 }));
    await ws.request({ type: "subscribe", channel }, (f) => f.type === "subscribed", "subscribed");
    await runDurableObjectAlarm(roomStub(channel));
    const ack = await ws.request({ type: "publish", channel, data: "in the leeway", ref: "p1" }, (f) => f.ref === "p1", "an answer");
    expect(ack.type).toBe("ack");
    await ws.waitFor((f) => f.type === "message" && f.data === "in the leeway", "its own message");
    expect(ws.closed).toBeUndefined();
    ws.close();
  });

  it("channel SSE: the stream ends at exp + leeway", async () => {
    const channel = randomChannel("expiry");
    const exp = expIn(2);
    const res = await send(`/v1/channels/${channel}/events`, await mint({ subscribe: [channel] }, { exp }));
    expect(res.status).toBe(200);
    const reader = new SseReader(res);
    await reader.waitForText("retry:");
    expect(reader.ended).toBe(false);
    await passExpiry(exp, [channel]);
    await eventually(() => reader.ended, "the SSE stream's end");
  }, 15_000);

  it("multi-channel WebSocket subscribed to channels: closed with 4002 at exp + leeway", async () => {
    const [a, b] = [randomChannel("expiry-a"), randomChannel("expiry-b")];
    const exp = expIn(2);
    const ws = await Ws.open("/v1/ws", await mint({ subscribe: [a, b] }, { exp }));
    ws.send({ type: "subscribe", channel: a });
    ws.send({ type: "subscribe", channel: b });
    await eventually(() => ws.frames.filter((f) => f.type === "subscribed").length === 2, "two subscribed frames");
    await passExpiry(exp, [a, b]);
    expect((await ws.waitClosed()).code).toBe(CloseCode.TokenExpired);
  }, 15_000);

  it("multi-channel SSE: the stream ends at exp + leeway", async () => {
    const [a, b] = [randomChannel("expiry-a"), randomChannel("expiry-b")];
    const exp = expIn(2);
    const res = await send(`/v1/events?channel=${a}&channel=${b}`, await mint({ subscribe: [a, b] }, { exp }));
    expect(res.status).toBe(200);
    const reader = new SseReader(res);
    await reader.waitForText("id:");
    await passExpiry(exp, [a, b]);
    await eventually(() => reader.ended, "the SSE stream's end");
  }, 15_000);

  // A /v1/ws connection that subscribes to nothing has no room to close it at exp: the Worker does.
  it("multi-channel WebSocket that only publishes: closed with 4002 at exp + leeway, and publishes after exp are not stored", async () => {
    const channel = randomChannel("expiry-publisher");
    const exp = expIn(2);
    const ws = await Ws.open("/v1/ws", await mint({ publish: [channel] }, { exp }));
    const before = await ws.request({ type: "publish", channel, data: "in time", ref: "p1" }, (f) => f.ref === "p1", "first answer");
    expect(before.type).toBe("ack");
    await sleep(tokenDeadlineMs(exp) - Date.now() + 1500);
    if (ws.closed === undefined) {
      const after = await ws
        .request({ type: "publish", channel, data: "AFTER-EXPIRY", ref: "p2" }, (f) => f.ref === "p2", "second answer")
        .catch(() => undefined);
      const history = await send(`/v1/channels/${channel}/messages?since=0`, await mint({ subscribe: [channel] }));
      const stored = ((await history.json()) as { messages: Array<{ data: string }> }).messages.map((m) => m.data);
      expect({ closed: ws.closed, answer: after?.type, stored }).toEqual({
        closed: { code: CloseCode.TokenExpired, reason: expect.any(String) },
        answer: undefined,
        stored: ["in time"],
      });
    }
    expect(ws.closed?.code).toBe(CloseCode.TokenExpired);
  }, 15_000);
});

describe("expiry on its own clock", () => {
  it.each([
    ["channel SSE", (channel: string) => `/v1/channels/${channel}/events?`],
    ["multi-channel SSE", (channel: string) => `/v1/events?channel=${channel}&`],
  ])(
    "%s: ends one stream after another at each token's exp + leeway, without anyone firing the alarm",
    async (_, path) => {
      const channel = randomChannel("expiry-sse-series");
      for (let round = 0; round < 3; round++) {
        const exp = expIn(2);
        const token = await mint({ subscribe: [channel] }, { exp });
        const reader = await SseReader.openPath(`${path(channel)}token=${token}`);
        await eventually(() => reader.ended, `round ${round}: the stream's end`, 6000);
        expect(Date.now()).toBeGreaterThanOrEqual(tokenDeadlineMs(exp) - 50);
      }
    },
    30_000,
  );
});
