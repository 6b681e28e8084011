import { describe, expect, it } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";
import { expectError, publishOk, randomChannel, range, relay, SseReader, WsClient } from "./helpers";

/** A channel with messages m1…m`count`. */
async function channelWith(count: number): Promise<string> {
  const channel = randomChannel("rewind");
  for (let i = 1; i <= count; i++) await publishOk(channel, `m${i}`);
  return channel;
}

const ids = (messages: Envelope[]) => messages.map((m) => m.id);

describe("rewind=N: start with the channel's last N retained messages", () => {
  it("channel WebSocket: the last N, then live, with no gap notice", async () => {
    const channel = await channelWith(5);
    const ws = await WsClient.connect(channel, "rewind=3");
    await ws.waitForMessages(3);
    await publishOk(channel, "m6");
    expect(ids(await ws.waitForMessages(4))).toEqual(["3", "4", "5", "6"]);
    expect(ws.frames.some((f) => f.type === "gap")).toBe(false);
    ws.socket.close();
  });

  it("since wins over rewind; rewind=0 and no rewind start live", async () => {
    const channel = await channelWith(5);
    const resumed = await WsClient.connect(channel, "since=1&rewind=2");
    expect(ids(await resumed.waitForMessages(4))).toEqual(["2", "3", "4", "5"]);
    const live = await WsClient.connect(channel, "rewind=0");
    await publishOk(channel, "m6");
    expect(ids(await live.waitForMessages(1))).toEqual(["6"]);
    resumed.socket.close();
    live.socket.close();
  });

  it("a rewind past retention starts at the oldest retained message and reports no gap (HISTORY_LIMIT=50)", async () => {
    const channel = await channelWith(55);
    const ws = await WsClient.connect(channel, "rewind=100");
    expect(ids(await ws.waitForMessages(50))).toEqual(range(6, 55));
    expect(ws.frames.some((f) => f.type === "gap")).toBe(false);
    ws.socket.close();
  });

  it("SSE: the last N as events; Last-Event-ID (a reconnecting browser) wins", async () => {
    const channel = await channelWith(5);
    const sse = await SseReader.open(channel, { query: "rewind=2" });
    await sse.waitForText("data: m5\n\n");
    expect(sse.text).toBe("retry: 3000\n\nid: 3\n\nid: 4\nevent: message\ndata: m4\n\nid: 5\nevent: message\ndata: m5\n\n");
    const reconnected = await SseReader.open(channel, { query: "rewind=2", headers: { "Last-Event-ID": "4" } });
    await reconnected.waitForText("data: m5\n\n");
    expect(reconnected.text).not.toContain("data: m4");
    await sse.cancel();
    await reconnected.cancel();
  });

  it("long-poll answers at once with the last N; without messages it waits as usual", async () => {
    const channel = await channelWith(5);
    const res = await relay(`/v1/channels/${channel}/poll?rewind=2&timeout=30`);
    expect(((await res.json()) as { messages: Envelope[] }).messages.map((m) => m.data)).toEqual(["m4", "m5"]);
    const empty = randomChannel("rewind-empty");
    const answer = await relay(`/v1/channels/${empty}/poll?rewind=2&timeout=1`);
    expect(await answer.json()).toEqual({ messages: [], lastId: "0" });
  });

  it("/v1/ws subscribe frames take rewind; /v1/events takes ?rewind= for every channel", async () => {
    const a = await channelWith(3);
    const b = await channelWith(4);
    const ws = await WsClient.open("/v1/ws");
    ws.send({ type: "subscribe", channel: a, rewind: 1 });
    ws.send({ type: "subscribe", channel: b, rewind: 2 });
    await ws.waitForMessages(3);
    expect(ids(ws.messages(a))).toEqual(["3"]);
    expect(ids(ws.messages(b))).toEqual(["3", "4"]);
    ws.socket.close();

    const sse = await SseReader.openPath(`/v1/events?channel=${a}&channel=${b}&rewind=1`);
    await sse.waitForText('"data":"m4"');
    expect(sse.text).toContain('"data":"m3"');
    expect(sse.text).not.toContain('"data":"m2"');
    await sse.cancel();
  });

  it("refuses a rewind that is not a whole number; above 100 counts as 100", async () => {
    const channel = await channelWith(1);
    for (const value of ["-1", "abc", "1.5"]) {
      await expectError(await relay(`/v1/channels/${channel}/events?rewind=${value}`), 400, "invalid_request");
      await expectError(await relay(`/v1/channels/${channel}/poll?rewind=${value}`), 400, "invalid_request");
    }
    const ws = await WsClient.connect(channel, "rewind=1000");
    expect(ids(await ws.waitForMessages(1))).toEqual(["1"]);
    ws.socket.close();
    const mux = await WsClient.open("/v1/ws");
    mux.send({ type: "subscribe", channel, rewind: "3", ref: "r" });
    const error = await mux.waitFor((f) => f.type === "error", "an error frame");
    expect(error).toMatchObject({ ref: "r", error: { code: "invalid_request" } });
    mux.socket.close();
  });
});
