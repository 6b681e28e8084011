import { describe, expect, it } from "vitest";
import { type Harness, harnessPerTest, recorder, sleep, waitFor } from "./support";

const start = harnessPerTest();

const attempts = (h: Harness, prefix: string) => h.relay.log.filter((line) => line.startsWith(prefix)).length;

describe("transport fallback (auto)", () => {
  it("falls back to SSE at once when the WebSocket constructor throws, and delivers there", async () => {
    const h = start({ autoConnect: false });
    h.relay.wsBlocked = "throw";
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: 0 });
    h.relay.publish("news", "one");
    h.client.connect();
    await waitFor(() => h.client.state === "open", "open");
    expect(h.client.transport).toBe("sse");
    // Straight from connecting to open: a blocked WebSocket is not an outage.
    expect(h.states.map((s) => `${s.oldState}>${s.newState}:${s.transport}`)).toEqual(["closed>connecting:ws", "connecting>open:sse"]);
    h.relay.publish("news", "two");
    await waitFor(() => news.received.length === 2, "messages over SSE");
    expect(news.received.map((m) => m.data)).toEqual(["one", "two"]);
    expect(h.relay.log.some((line) => line.startsWith("GET http://relay.test/v1/events?channel=news&since=news%3D0"))).toBe(true);
  });

  it("uses SSE where there is no WebSocket at all", async () => {
    const h = start({ WebSocket: undefined });
    // Node 20 has no global WebSocket; a test run on a newer Node must still see the injected absence.
    if (attempts(h, "WS") > 0) return;
    await waitFor(() => h.client.state === "open", "open");
    expect(h.client.transport).toBe("sse");
  });

  it("falls back to SSE when WebSockets fail while the relay answers HTTP", async () => {
    const h = start({ fallbackAfter: 2 });
    h.relay.wsBlocked = "refuse";
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: 0 });
    await waitFor(() => h.client.state === "open", "open");
    expect(h.client.transport).toBe("sse");
    expect(attempts(h, "WS")).toBe(2);
    h.relay.publish("news", "over sse");
    await waitFor(() => news.received.length === 1, "message");
  });

  it("does not fall back while the relay is simply down, nor when it comes back between two checks", async () => {
    const h = start();
    h.relay.down = true;
    await waitFor(() => attempts(h, "WS") >= 5, "attempts");
    expect(h.client.transport).toBe("ws");
    expect(attempts(h, "GET http://relay.test/v1/events")).toBe(0);
    h.relay.down = false;
    await waitFor(() => h.client.state === "open", "open");
    expect(h.client.transport).toBe("ws");
  });

  it("falls back to long-poll when the SSE stream never flows (a buffering proxy)", async () => {
    const h = start({ connectTimeout: 40, fallbackAfter: 1 });
    h.relay.wsBlocked = "throw";
    h.relay.sseBuffered = true;
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: 0 });
    h.relay.publish("news", "first");
    await waitFor(() => h.client.state === "open", "open");
    expect(h.client.transport).toBe("poll");
    h.relay.publish("news", "second");
    await waitFor(() => news.received.length === 2, "messages by long-poll");
    expect(news.received.map((m) => m.data)).toEqual(["first", "second"]);
  });

  it("keeps the place of every subscription across a transport switch", async () => {
    const h = start({ fallbackAfter: 1 });
    const a = recorder();
    const b = recorder();
    h.client.subscribe("a", a.handler, { since: 0 });
    const subB = h.client.subscribe("b", b.handler);
    await waitFor(() => h.client.state === "open" && subB.lastId !== undefined, "open on ws");
    h.relay.publish("a", "a1");
    h.relay.publish("b", "b1");
    await waitFor(() => a.received.length === 1 && b.received.length === 1, "over ws");
    h.relay.wsBlocked = "throw";
    h.relay.down = true;
    h.relay.dropAll(1006);
    h.relay.publish("a", "a2");
    h.relay.publish("b", "b2");
    h.relay.down = false;
    await waitFor(() => h.client.transport === "sse" && a.received.length === 2 && b.received.length === 2, "over sse");
    h.relay.sseBuffered = true;
    h.relay.dropAll();
    h.relay.publish("a", "a3");
    h.relay.publish("b", "b3");
    await waitFor(() => h.client.transport === "poll" && a.received.length === 3 && b.received.length === 3, "over poll", 5000);
    expect(a.received.map((m) => m.data)).toEqual(["a1", "a2", "a3"]);
    expect(b.received.map((m) => m.data)).toEqual(["b1", "b2", "b3"]);
  });

  it("tries WebSocket again after coming back online", async () => {
    const h = start({ fallbackAfter: 1, backoff: { initialDelay: 60_000, maxDelay: 60_000, factor: 2 } });
    h.relay.wsBlocked = "throw";
    h.client.subscribe("news", () => {});
    await waitFor(() => h.client.state === "open" && h.client.transport === "sse", "on sse");
    h.relay.down = true;
    h.relay.dropAll();
    await waitFor(() => h.client.state === "reconnecting", "offline");
    h.relay.down = false;
    h.relay.wsBlocked = false;
    await sleep(10);
    h.window.fire("online");
    await waitFor(() => h.client.state === "open" && h.client.transport === "ws", "back on ws", 500);
  });

  it("pins a subscription to a transport when asked, next to the default connection", async () => {
    const h = start();
    const polled = recorder();
    const sub = h.client.subscribe("news", polled.handler, { since: 0, transport: "poll" });
    h.relay.publish("news", "x");
    await waitFor(() => polled.received.length === 1, "by poll");
    expect(h.client.transport).toBe("ws");
    expect(h.relay.log.some((l) => l.includes("/v1/channels/news/poll?since=0"))).toBe(true);
    expect([...h.relay.sockets][0]?.subscribed.has("news")).toBe(false);
    sub.unsubscribe();
    await sleep(30);
    expect(h.relay.polls.size).toBe(0);
  });

  it("stops a pinned WebSocket transport that cannot exist, with an error", async () => {
    const h = start({ transport: "ws" });
    h.relay.wsBlocked = "throw";
    h.client.close();
    h.client.connect();
    await waitFor(() => h.client.state === "closed", "closed");
    expect(h.errors.map((e) => e.code)).toEqual(["unsupported"]);
  });

  it("stops when the relay refuses the stream (401 on SSE), naming the refusal", async () => {
    const h = start({ transport: "sse", token: "stale" });
    h.relay.checkToken = (token) => (token === "stale" ? "invalid" : "ok");
    h.client.subscribe("news", () => {});
    await waitFor(() => h.client.state === "closed", "closed");
    expect(h.errors.map((e) => [e.code, e.status])).toEqual([["unauthorized", 401]]);
  });
});
