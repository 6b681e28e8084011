import { describe, expect, it } from "vitest";
import type { FakeSocket } from "./fake-relay";
import { harnessPerTest, range, recorder, waitFor } from "./support";

const start = harnessPerTest();

function onlySocket(sockets: Set<FakeSocket>): FakeSocket {
  expect(sockets.size).toBe(1);
  return [...sockets][0]!;
}

describe("batch frames in the SDK", () => {
  it("asks for batch frames by default (not with batchFrames: false) and hands each message of a batch frame to the handler on its own, in order", async () => {
    const h = start();
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: "0" });
    await waitFor(() => h.client.state === "open" && onlySocket(h.relay.sockets).subscribed.has("news"), "subscribed");
    expect(onlySocket(h.relay.sockets).url.searchParams.get("frames")).toBe("batch");
    h.relay.publishBurst("news", ["a", "b", "c", "d"]);
    await waitFor(() => news.received.length === 4, "four messages");
    expect(news.received.map((m) => [m.id, m.data, m.channel])).toEqual([
      ["1", "a", "news"],
      ["2", "b", "news"],
      ["3", "c", "news"],
      ["4", "d", "news"],
    ]);
    expect(onlySocket(h.relay.sockets).batchFramesSent).toBe(1);

    // Turned off, the same burst comes one message per frame.
    const off = start({ batchFrames: false });
    const offNews = recorder();
    off.client.subscribe("news", offNews.handler, { since: "0" });
    await waitFor(() => off.client.state === "open" && onlySocket(off.relay.sockets).subscribed.has("news"), "subscribed");
    expect(onlySocket(off.relay.sockets).url.searchParams.has("frames")).toBe(false);
    off.relay.publishBurst("news", ["a", "b", "c", "d"]);
    await waitFor(() => offNews.received.length === 4, "four messages");
    expect(offNews.received).toEqual(news.received.map((m) => ({ ...m, ts: expect.any(Number) })));
    expect(onlySocket(off.relay.sockets).batchFramesSent).toBe(0);
  });

  it("replays in batch frames on resume, exactly once, and goes on live", async () => {
    const h = start();
    h.relay.publishBurst("news", ["m1", "m2", "m3", "m4", "m5"]);
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: "2" });
    await waitFor(() => news.received.length === 3, "the replay after 2");
    expect(onlySocket(h.relay.sockets).batchFramesSent).toBe(1);
    h.relay.dropAll(1006);
    h.relay.publishBurst("news", ["m6", "m7", "m8"]);
    await waitFor(() => news.received.length === 6, "the replay after the reconnect");
    expect(news.ids()).toEqual(range(3, 8));
  });

  it("keeps each subscription's own range when a batch frame overlaps what it already has", async () => {
    const h = start();
    h.relay.publishBurst("news", ["m1", "m2", "m3"]);
    const fromStart = recorder();
    const fromTwo = recorder();
    h.client.subscribe("news", fromStart.handler, { since: "0" });
    h.client.subscribe("news", fromTwo.handler, { since: "2" });
    await waitFor(() => fromStart.received.length === 3 && fromTwo.received.length === 1, "both caught up");
    // A batch that repeats 2 and 3 and brings 4: each subscription gets only what it lacks.
    const channel = h.relay.channel("news");
    const repeat = channel.messages.slice(1);
    // m4 is stored without being broadcast: it arrives only in the batch frame.
    const next = { type: "message" as const, channel: "news", id: String(++channel.lastSeq), event: "message", data: "m4", ts: Date.now() };
    channel.messages.push(next);
    onlySocket(h.relay.sockets).send({ type: "batch", messages: [...repeat, next] });
    await waitFor(() => fromStart.received.length === 4 && fromTwo.received.length === 2, "4 from the batch");
    h.relay.publish("news", "m5");
    await waitFor(() => fromStart.received.length === 5 && fromTwo.received.length === 3, "the live messages");
    expect(fromStart.ids()).toEqual(range(1, 5));
    expect(fromTwo.ids()).toEqual(range(3, 5));
  });
});
