import { describe, expect, it } from "vitest";
import { CloseCode } from "../../src/protocol/close-codes";
import { type Harness, harnessPerTest, recorder, sleep, waitFor } from "./support";

const start = harnessPerTest();

const transitions = ({ states }: Harness) => states.map(({ oldState, newState }) => `${oldState}>${newState}`);

describe("state machine", () => {
  it("goes connecting → open → reconnecting → open → closed, each change once, naming the transport", async () => {
    const h = start();
    expect(h.client.state).toBe("connecting");
    await waitFor(() => h.client.state === "open", "open");
    expect(h.client.transport).toBe("ws");
    h.relay.dropAll(1006);
    await waitFor(() => h.states.length >= 3, "reconnected");
    h.client.close();
    expect(transitions(h)).toEqual(["connecting>open", "open>reconnecting", "reconnecting>open", "open>closed"]);
    expect(h.states[0]).toEqual({ oldState: "connecting", newState: "open", transport: "ws" });
    expect(h.errors).toEqual([]);
  });

  it("does not connect before connect() with autoConnect: false, and announces connecting then", async () => {
    const h = start({ autoConnect: false });
    await sleep(20);
    expect(h.client.state).toBe("closed");
    expect(h.relay.log).toEqual([]);
    h.client.connect();
    await waitFor(() => h.client.state === "open", "open");
    expect(transitions(h)).toEqual(["closed>connecting", "connecting>open"]);
  });

  it("keeps retrying with backoff while the relay is down, then opens", async () => {
    const h = start({}, undefined);
    h.relay.down = true;
    await waitFor(() => h.relay.log.filter((l) => l.startsWith("WS")).length >= 4, "several attempts");
    expect(h.client.state).toBe("reconnecting");
    // The relay was unreachable, not refusing WebSockets: no fallback.
    expect(h.client.transport).toBe("ws");
    h.relay.down = false;
    await waitFor(() => h.client.state === "open", "open");
    expect(transitions(h)).toEqual(["connecting>reconnecting", "reconnecting>open"]);
    expect(h.client.transport).toBe("ws");
  });

  it("reconnects on every retryable close code, resuming its subscription", async () => {
    const h = start();
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: 0 });
    await waitFor(() => h.client.state === "open", "open");
    let published = 0;
    for (const code of [CloseCode.Normal, CloseCode.GoingAway, CloseCode.InternalError, CloseCode.TryAgainLater, 1006, 1012]) {
      h.relay.publish("news", `m${++published}`);
      await waitFor(() => h.relay.sockets.size === 1 && [...h.relay.sockets][0]!.subscribed.has("news"), "subscribed");
      h.relay.dropAll(code);
      await waitFor(() => h.client.state === "open" && [...h.relay.sockets][0]?.subscribed.has("news") === true, `back after ${code}`);
    }
    h.relay.publish("news", "last");
    await waitFor(() => news.received.length === published + 1, "all messages");
    expect(news.ids()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(h.errors).toEqual([]);
  });

  for (const [code, name] of [
    [CloseCode.PolicyViolation, "policy_violation"],
    [CloseCode.Unauthorized, "unauthorized"],
    [CloseCode.TokenExpired, "token_expired"],
    [CloseCode.Forbidden, "forbidden"],
    [CloseCode.RateLimited, "rate_limited"],
    [4999, "closed"],
  ] as const) {
    it(`stops on terminal close ${code} (${name}) and does not reconnect`, async () => {
      const h = start({ token: "static-token" });
      await waitFor(() => h.client.state === "open", "open");
      const attempts = h.relay.log.filter((l) => l.startsWith("WS")).length;
      h.relay.dropAll(code);
      await waitFor(() => h.client.state === "closed", "closed");
      await sleep(50);
      expect(h.relay.log.filter((l) => l.startsWith("WS")).length).toBe(attempts);
      expect(h.errors.map((e) => [e.code, e.closeCode])).toEqual([[name, code]]);
      expect(transitions(h)).toEqual(["connecting>open", "open>closed"]);
      await expect(h.client.publish("news", "x")).rejects.toMatchObject({ code: "closed" });
    });
  }

  it("on 4002 with a token function, fetches a fresh token and reconnects at once", async () => {
    let issued = 0;
    const h = start({ token: () => `token-${++issued}`, backoff: { initialDelay: 60_000, maxDelay: 60_000, factor: 2 } });
    const news = recorder();
    h.client.subscribe("news", news.handler, { since: 0 });
    await waitFor(() => h.client.state === "open", "open");
    h.relay.publish("news", "before");
    await waitFor(() => news.received.length === 1, "first message");
    h.relay.dropAll(CloseCode.TokenExpired);
    // No backoff wait (it would be up to a minute here).
    await waitFor(() => h.client.state === "open" && h.relay.sockets.size === 1, "reconnected", 500);
    expect(issued).toBe(2);
    expect([...h.relay.sockets][0]!.token).toBe("token-2");
    h.relay.publish("news", "after");
    await waitFor(() => news.received.length === 2, "second message");
    expect(news.ids()).toEqual([1, 2]);
    expect(h.errors).toEqual([]);
  });

  it("stops with unauthorized when the relay refuses the token at the WebSocket upgrade (seen only by an HTTP check)", async () => {
    const h = start({ token: "revoked" });
    h.relay.checkToken = (token) => (token === "revoked" ? "invalid" : "ok");
    h.client.subscribe("news", () => {});
    await waitFor(() => h.client.state === "closed", "closed");
    expect(h.errors.map((e) => [e.code, e.status])).toEqual([["unauthorized", 401]]);
    // One refused upgrade, then the check with the same token; no fallback, no retry loop.
    expect(h.relay.log.filter((l) => l.startsWith("WS"))).toHaveLength(1);
    expect(h.relay.log.some((l) => l.startsWith("GET http://relay.test/v1/events"))).toBe(false);
  });

  it("calls the token function on every connect", async () => {
    const tokens: string[] = [];
    const h = start({ token: async () => `t${tokens.push("x")}` });
    await waitFor(() => h.client.state === "open", "open");
    h.relay.dropAll(1006);
    await waitFor(() => h.client.state === "reconnecting", "reconnecting");
    await waitFor(() => h.client.state === "open", "open again");
    expect(tokens).toHaveLength(2);
    expect(h.relay.log.filter((l) => l.startsWith("WS"))).toEqual([
      "WS ws://relay.test/v1/ws?frames=batch&token=t1",
      "WS ws://relay.test/v1/ws?frames=batch&token=t2",
    ]);
  });

  it("reconnects at once when the browser comes back online, skipping the backoff wait", async () => {
    const h = start({ backoff: { initialDelay: 60_000, maxDelay: 60_000, factor: 2 } });
    await waitFor(() => h.client.state === "open", "open");
    h.relay.down = true;
    h.relay.dropAll(1006);
    await waitFor(() => h.client.state === "reconnecting", "reconnecting");
    await sleep(30);
    h.relay.down = false;
    h.window.fire("online");
    await waitFor(() => h.client.state === "open", "open", 500);
  });

  it("reconnects at once when the tab becomes visible again", async () => {
    const h = start({ backoff: { initialDelay: 60_000, maxDelay: 60_000, factor: 2 } });
    await waitFor(() => h.client.state === "open", "open");
    h.relay.down = true;
    h.relay.dropAll(1006);
    await waitFor(() => h.client.state === "reconnecting", "reconnecting");
    await sleep(30);
    h.relay.down = false;
    h.document.visibilityState = "hidden";
    h.document.fire("visibilitychange");
    await sleep(30);
    expect(h.client.state).toBe("reconnecting");
    h.document.visibilityState = "visible";
    h.document.fire("visibilitychange");
    await waitFor(() => h.client.state === "open", "open", 500);
  });

  it("notices a dead socket by its unanswered ping", async () => {
    const h = start({ pingInterval: 20, pongTimeout: 30 });
    await waitFor(() => h.client.state === "open", "open");
    const socket = [...h.relay.sockets][0]!;
    // The socket stops answering anything (a half-open TCP connection).
    socket.send = () => {};
    await waitFor(() => h.client.state === "reconnecting", "reconnecting after a lost pong");
    await waitFor(() => h.client.state === "open", "open again");
    expect(socket.sent).toContain('{"type":"ping"}');
  });

  it("close() removes its browser listeners and stops every timer", async () => {
    const h = start();
    await waitFor(() => h.client.state === "open", "open");
    expect(h.window.count("online")).toBe(1);
    h.client.close();
    expect(h.window.count("online")).toBe(0);
    expect(h.document.count("visibilitychange")).toBe(0);
    const seen = h.relay.log.length;
    await sleep(40);
    expect(h.relay.log.length).toBe(seen);
    expect(h.relay.sockets.size).toBe(0);
  });
});
