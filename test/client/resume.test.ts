import { describe, expect, it } from "vitest";
import type { GapEvent, TransportPreference } from "../../src/client/types";
import { type Harness, harnessPerTest, range, recorder, waitFor } from "./support";

const start = harnessPerTest();

const subscribeFrames = (h: Harness) =>
  [...h.relay.sockets]
    .flatMap((s) => s.sent)
    .map((t) => JSON.parse(t) as { type: string; channel?: string; since?: string })
    .filter((f) => f.type === "subscribe");

describe("resume cursors", () => {
  it("subscribes with since as the relay's id string, and resumes from the last delivered id", async () => {
    const h = start();
    for (let i = 0; i < 5; i++) h.relay.publish("news", `old ${i}`);
    const news = recorder();
    const sub = h.client.subscribe("news", news.handler, { since: "2" });
    await waitFor(() => news.received.length === 3, "replay after 2");
    expect(subscribeFrames(h)).toMatchObject([{ type: "subscribe", channel: "news", since: "2" }]);
    expect(sub.lastId).toBe("5");
    h.relay.dropAll(1006);
    await waitFor(() => h.client.state === "open" && h.relay.sockets.size === 1, "reconnected");
    await waitFor(() => subscribeFrames(h).length === 1, "resubscribed");
    expect(subscribeFrames(h)).toMatchObject([{ type: "subscribe", channel: "news", since: "5" }]);
    h.relay.publish("news", "new");
    await waitFor(() => news.received.length === 4, "live message");
    expect(news.ids()).toEqual([3, 4, 5, 6]);
  });

  it("a subscription without since starts at the channel's position and resumes from it, losing nothing published while away", async () => {
    const h = start();
    h.relay.publish("news", "before");
    const news = recorder();
    const sub = h.client.subscribe("news", news.handler);
    await waitFor(() => sub.lastId === "1", "position from the greeting");
    h.relay.down = true;
    h.relay.dropAll(1006);
    h.relay.publish("news", "while away 1");
    h.relay.publish("news", "while away 2");
    h.relay.down = false;
    await waitFor(() => news.received.length === 2, "missed messages");
    expect(news.received.map((m) => m.data)).toEqual(["while away 1", "while away 2"]);
  });

  it("keeps one cursor per subscription: several on one channel each see their own range once", async () => {
    const h = start();
    for (let i = 1; i <= 6; i++) h.relay.publish("news", `m${i}`);
    const all = recorder();
    const fromFour = recorder();
    const live = recorder();
    h.client.subscribe("news", all.handler, { since: 0 });
    await waitFor(() => all.received.length === 6, "full history");
    h.client.subscribe("news", fromFour.handler, { since: 4 });
    h.client.subscribe("news", live.handler);
    h.relay.publish("news", "m7");
    await waitFor(() => all.received.length === 7 && fromFour.received.length === 3 && live.received.length === 1, "each range");
    h.relay.dropAll(1011);
    h.relay.publish("news", "m8");
    await waitFor(() => all.received.length === 8 && fromFour.received.length === 4 && live.received.length === 2, "after reconnect");
    expect(all.ids()).toEqual(range(1, 8));
    expect(fromFour.ids()).toEqual([5, 6, 7, 8]);
    expect(live.ids()).toEqual([7, 8]);
  });

  it("a subscription that joins behind the others replays the channel without repeating anything to them", async () => {
    const h = start();
    const first = recorder();
    h.client.subscribe("news", first.handler, { since: 0 });
    for (let i = 1; i <= 5; i++) h.relay.publish("news", `m${i}`);
    await waitFor(() => first.received.length === 5, "first");
    const second = recorder();
    h.client.subscribe("news", second.handler, { since: 1 });
    await waitFor(() => second.received.length === 4, "second's replay");
    h.relay.publish("news", "m6");
    await waitFor(() => first.received.length === 6 && second.received.length === 5, "live");
    expect(first.ids()).toEqual(range(1, 6));
    expect(second.ids()).toEqual(range(2, 6));
  });

  it("unsubscribe stops delivery to that subscription only, and drops the channel when it was the last", async () => {
    const h = start();
    const a = recorder();
    const b = recorder();
    const subA = h.client.subscribe("news", a.handler);
    h.client.subscribe("news", b.handler);
    await waitFor(() => [...h.relay.sockets][0]?.subscribed.has("news") === true, "subscribed");
    h.relay.publish("news", "1");
    await waitFor(() => a.received.length === 1 && b.received.length === 1, "both");
    subA.unsubscribe();
    h.relay.publish("news", "2");
    await waitFor(() => b.received.length === 2, "b only");
    expect(a.received).toHaveLength(1);
    const solo = h.client.subscribe("solo", () => {});
    await waitFor(() => [...h.relay.sockets][0]!.subscribed.has("solo"), "solo subscribed");
    solo.unsubscribe();
    await waitFor(() => ![...h.relay.sockets][0]!.subscribed.has("solo"), "solo unsubscribed");
  });

  for (const transport of ["ws", "sse", "poll"] as TransportPreference[]) {
    it(`reports a gap once and continues at the oldest retained message (${transport})`, async () => {
      const h = start({ transport });
      for (let i = 1; i <= 10; i++) h.relay.publish("news", `m${i}`);
      h.relay.prune("news", 7);
      const gaps: GapEvent[] = [];
      h.client.on("gap", (gap) => gaps.push(gap));
      const news = recorder();
      h.client.subscribe("news", news.handler, { since: 2 });
      await waitFor(() => news.received.length === 4, "retained messages");
      expect(news.ids()).toEqual([7, 8, 9, 10]);
      expect(gaps).toEqual([{ channel: "news", after: "2", oldest: "7" }]);
      h.relay.publish("news", "m11");
      await waitFor(() => news.received.length === 5, "live");
    });

    it(`resumes every channel of one connection exactly where it was (${transport})`, async () => {
      const h = start({ transport });
      const a = recorder();
      const b = recorder();
      h.client.subscribe("a", a.handler, { since: 0 });
      const subB = h.client.subscribe("b", b.handler);
      // A live subscription's position is known once the relay said where the channel stands.
      await waitFor(() => h.client.state === "open" && subB.lastId === "0", "b positioned");
      for (let round = 0; round < 5; round++) {
        h.relay.publish("a", `a${round}`);
        h.relay.publish("b", `b${round}`);
        await waitFor(() => a.received.length === round + 1 && b.received.length === round + 1, `round ${round}`);
        h.relay.dropAll(1006);
      }
      expect(a.ids()).toEqual(range(1, 5));
      expect(b.ids()).toEqual(range(1, 5));
    });
  }
});
