import { describe, expect, it } from "vitest";
import { DEFAULTS, resolveOptions } from "../../src/client/defaults";
import { RelayClientError } from "../../src/client/errors";
import { harnessPerTest, recorder, sleep, waitFor } from "./support";

const start = harnessPerTest();

const fetch = async () => {
  throw new Error("unused");
};

describe("options", () => {
  it("derives the HTTP and WebSocket bases from the relay URL, path prefix included", () => {
    expect(resolveOptions({ url: "https://relay.example.com", fetch })).toMatchObject({
      httpBase: "https://relay.example.com",
      wsBase: "wss://relay.example.com",
    });
    expect(resolveOptions({ url: "http://127.0.0.1:8787/", fetch })).toMatchObject({ httpBase: "http://127.0.0.1:8787", wsBase: "ws://127.0.0.1:8787" });
    expect(resolveOptions({ url: "wss://edge.example/relay/", fetch })).toMatchObject({
      httpBase: "https://edge.example/relay",
      wsBase: "wss://edge.example/relay",
    });
    expect(() => resolveOptions({ url: "ftp://x", fetch })).toThrow(TypeError);
  });

  it("needs a URL outside a page, and fills every default from one object", () => {
    expect(() => resolveOptions({ fetch })).toThrow(/options.url/);
    const resolved = resolveOptions({ url: "http://x", fetch, backoff: { maxDelay: 5 } });
    expect(resolved).toMatchObject({
      transport: DEFAULTS.transport,
      maxQueuedPublishes: 100,
      connectTimeout: 10_000,
      pingInterval: 25_000,
      pongTimeout: 10_000,
      publishTimeout: 10_000,
      streamIdleTimeout: 45_000,
      pollTimeout: 25_000,
      fallbackAfter: 2,
      autoConnect: true,
      backoff: { initialDelay: 1000, maxDelay: 5, factor: 2 },
    });
  });
});

describe("subscribe", () => {
  it("refuses a bad channel name or since at once", () => {
    const h = start({ autoConnect: false });
    expect(() => h.client.subscribe("a/b", () => {})).toThrow(RelayClientError);
    expect(() => h.client.subscribe("", () => {})).toThrow(expect.objectContaining({ code: "invalid_channel" }));
    expect(() => h.client.subscribe("news", () => {}, { since: -1 })).toThrow(expect.objectContaining({ code: "invalid_request" }));
    expect(() => h.client.subscribe("news", () => {}, { since: "5a" })).toThrow(expect.objectContaining({ code: "invalid_request" }));
  });

  it("reports a handler that throws and goes on delivering", async () => {
    const h = start();
    let calls = 0;
    h.client.subscribe(
      "news",
      () => {
        calls++;
        throw new Error("app bug");
      },
      { since: 0 },
    );
    h.relay.publish("news", "1");
    h.relay.publish("news", "2");
    await waitFor(() => calls === 2, "both messages");
    expect(h.errors.map((e) => [e.code, e.channel])).toEqual([
      ["handler_failed", "news"],
      ["handler_failed", "news"],
    ]);
  });

  it("drops a subscription the relay refuses, with an error naming the channel, and keeps the others", async () => {
    const h = start();
    const ok = recorder();
    h.client.subscribe("forbidden-room", () => {});
    h.client.subscribe("news", ok.handler, { since: 0 });
    await waitFor(() => h.errors.length === 1, "refusal");
    expect(h.errors[0]).toMatchObject({ code: "forbidden", channel: "forbidden-room" });
    h.relay.publish("news", "still here");
    await waitFor(() => ok.received.length === 1, "other channel");
    h.relay.dropAll(1006);
    await waitFor(() => h.client.state === "open" && h.relay.sockets.size === 1, "reconnected");
    await sleep(20);
    // Not asked for again after the reconnect.
    expect([...h.relay.sockets][0]!.subscribed.has("forbidden-room")).toBe(false);
  });

  it("delivers base64-carried data with its encoding marked", async () => {
    const h = start();
    const got = recorder();
    h.client.subscribe("bin", got.handler, { since: 0 });
    const channel = h.relay.channel("bin");
    channel.lastSeq = 1;
    channel.messages.push({ type: "message", channel: "bin", id: "1", event: "message", data: "/w==", ts: 1, encoding: "base64" });
    await waitFor(() => got.received.length === 1, "message");
    expect(got.received[0]).toEqual({ channel: "bin", id: "1", event: "message", data: "/w==", ts: 1, encoding: "base64" });
  });
});
