import { describe, expect, it } from "vitest";
import { eventually, expectError, publish, publishOk, randomChannel, range, relay, SseReader } from "./helpers";

describe("SSE subscribers", () => {
  it("streams exact frames: retry first, then id, event and split data lines", async () => {
    const channel = randomChannel();
    const sse = await SseReader.open(channel);
    await publishOk(channel, "hello");
    expect((await publish(channel, "line 1\r\nline 2\rline 3\n", { query: "event=update" })).status).toBe(201);
    await sse.waitForIds(2);
    expect(sse.text).toBe(
      "retry: 3000\n\n" + "id: 0\n\n" + "id: 1\nevent: message\ndata: hello\n\n" + "id: 2\nevent: update\ndata: line 1\ndata: line 2\ndata: line 3\ndata: \n\n",
    );
    await sse.cancel();
  });

  it("starts with the resume position as an id without an event, so a client that drops at once resumes", async () => {
    const channel = randomChannel();
    await publishOk(channel, "old");
    const fresh = await SseReader.open(channel);
    await fresh.waitForText("id: 1\n\n");
    const resumed = await SseReader.open(channel, { query: "since=0" });
    await resumed.waitForIds(1);
    expect(resumed.text.startsWith("retry: 3000\n\nid: 0\n\nid: 1\nevent: message\ndata: old\n\n")).toBe(true);
    await fresh.cancel();
    await resumed.cancel();
  });

  it("sends keep-alive comments", async () => {
    const sse = await SseReader.open(randomChannel());
    await sse.waitForText(": keepalive\n\n");
    await sse.cancel();
  });

  it("resumes from Last-Event-ID with no gap and no duplicate at the seam", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 5; i++) await publishOk(channel, `m${i}`);
    const publishing = (async () => {
      for (let i = 6; i <= 30; i++) await publishOk(channel, `m${i}`);
    })();
    const sse = await SseReader.open(channel, { headers: { "Last-Event-ID": "2" }, query: "since=4" });
    await publishing;
    expect(await sse.waitForIds(28)).toEqual(range(3, 30));
    await sse.cancel();
  });

  it("resumes from since, and since=0 replays all history", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 3; i++) await publishOk(channel, `m${i}`);
    const sse = await SseReader.open(channel, { query: "since=0" });
    expect(await sse.waitForIds(3)).toEqual(["1", "2", "3"]);
    await sse.cancel();
  });

  it("announces a gap as relay.gap before the oldest retained message", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 55; i++) await publishOk(channel, `m${i}`);
    const sse = await SseReader.open(channel, { query: "since=0" });
    await sse.waitForIds(50);
    expect(sse.text.startsWith(`retry: 3000\n\nid: 0\n\nevent: relay.gap\ndata: {"channel":"${channel}","after":"0","oldest":"6"}\n\nid: 6\n`)).toBe(true);
    await sse.cancel();
  });

  it("refuses malformed cursors", async () => {
    const channel = randomChannel();
    await expectError(await relay(`/v1/channels/${channel}/events?since=abc`), 400, "invalid_request");
    await expectError(await relay(`/v1/channels/${channel}/events`, { headers: { "Last-Event-ID": "-1" } }), 400, "invalid_request");
  });

  it("counts SSE subscribers and forgets one that leaves", async () => {
    const channel = randomChannel();
    const sse = await SseReader.open(channel);
    const count = async () => ((await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: { sse: number } }).subscribers.sse;
    expect(await count()).toBe(1);
    await sse.cancel();
    await eventually(async () => (await count()) === 0, "SSE subscriber to be forgotten", 4000);
  });

  it("drops a subscriber that stops reading, without holding back the others", async () => {
    const channel = randomChannel();
    const stalled = await relay(`/v1/channels/${channel}/events`);
    const reader = await SseReader.open(channel);
    // 40 KB of events against a 16 KB SSE_BUFFER_BYTES.
    for (let i = 0; i < 40; i++) await publishOk(channel, `${i}`.padEnd(1000, "."));
    expect(await reader.waitForIds(40)).toEqual(range(1, 40));
    const count = async () => ((await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: { sse: number } }).subscribers.sse;
    await eventually(async () => (await count()) === 1, "the stalled subscriber to be dropped");
    // What the stalled client can still read ends early, so its EventSource would resume with Last-Event-ID.
    const text = await stalled.text().catch(() => "");
    expect(text.split("\n\nid: ").length).toBeLessThan(40);
    await reader.cancel();
  });
});
