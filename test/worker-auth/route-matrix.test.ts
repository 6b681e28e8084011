import { describe, expect, it } from "vitest";
import { type ErrorCode, ErrorStatus } from "../../src/protocol/errors";
import { EXPECTED, frameOutcome, outcomeOf, randomChannel, send, TOKEN_KINDS, type TokenSource, tokenOf, Ws } from "./auth-helpers";

/** One way to use a channel, run with a token (or none) carried the given way; answers "ok" or "<status> <code>". */
interface Route {
  name: string;
  run(channel: string, token: string | undefined, source: TokenSource): Promise<string>;
}

const http = (name: string, path: (channel: string) => string, success: number, init: RequestInit & { headers?: Record<string, string> } = {}): Route => ({
  name,
  run: async (channel, token, source) => outcomeOf(await send(path(channel), token, { ...init, source }), success),
});

const ROUTES: Route[] = [
  http("publish: POST /v1/channels/{c}/messages", (c) => `/v1/channels/${c}/messages`, 201, { method: "POST", body: "hello" }),
  http("history: GET /v1/channels/{c}/messages", (c) => `/v1/channels/${c}/messages?since=0`, 200),
  http("info: GET /v1/channels/{c}", (c) => `/v1/channels/${c}`, 200),
  http("SSE: GET /v1/channels/{c}/events", (c) => `/v1/channels/${c}/events`, 200),
  http("WebSocket: GET /v1/channels/{c}/ws", (c) => `/v1/channels/${c}/ws`, 101, { headers: { Upgrade: "websocket" } }),
  http("long-poll: GET /v1/channels/{c}/poll", (c) => `/v1/channels/${c}/poll?timeout=0`, 200),
  http("presence: GET /v1/channels/{c}/presence", (c) => `/v1/channels/${c}/presence`, 200),
  http("multi-channel SSE: GET /v1/events", (c) => `/v1/events?channel=${c}`, 200),
  {
    name: "batch entry: POST /v1/publish",
    run: async (channel, token, source) => {
      const body = JSON.stringify({ messages: [{ channel, data: "hello" }] });
      const res = await send("/v1/publish", token, { method: "POST", body, source, headers: { "Content-Type": "application/json" } });
      // A caller who may publish nowhere is refused as a whole, before the body is read.
      if (res.status !== 200) return outcomeOf(res, 200);
      const [result] = ((await res.json()) as { results: Array<{ id?: string; error?: { code: ErrorCode } }> }).results;
      if (result?.id !== undefined) return "ok";
      return `${ErrorStatus[result!.error!.code]} ${result!.error!.code}`;
    },
  },
  {
    name: "multi-channel WebSocket: subscribe frame on /v1/ws",
    run: async (channel, token, source) => {
      const ws = await openMultiplexed(token, source);
      if (typeof ws === "string") return ws;
      const frame = await ws.request(
        { type: "subscribe", channel, ref: "s1" },
        (f) => f.ref === "s1" || (f.type === "subscribed" && f.channel === channel),
        "an answer to subscribe",
      );
      ws.close();
      return frameOutcome(frame);
    },
  },
  {
    name: "multi-channel WebSocket: publish frame on /v1/ws",
    run: async (channel, token, source) => {
      const ws = await openMultiplexed(token, source);
      if (typeof ws === "string") return ws;
      const frame = await ws.request({ type: "publish", channel, data: "hello", ref: "p1" }, (f) => f.ref === "p1", "an answer to publish");
      ws.close();
      if (frame.type === "ack") expect(frame.id).toBe("1");
      return frameOutcome(frame);
    },
  },
];

/**
 * Opens /v1/ws: a bad token is refused at the upgrade (its outcome is returned); otherwise rights
 * are checked per channel, frame by frame.
 */
async function openMultiplexed(token: string | undefined, source: TokenSource): Promise<Ws | string> {
  const res = await send("/v1/ws", token, { source, headers: { Upgrade: "websocket" } });
  if (res.status !== 101) return outcomeOf(res, 101);
  return new Ws(res.webSocket!);
}

describe.each(ROUTES)("$name", (route) => {
  it.each(TOKEN_KINDS)("token in the header: %s", async (kind) => {
    const channel = randomChannel("matrix");
    expect(await route.run(channel, await tokenOf(kind, channel), "header")).toBe(EXPECTED[kind]);
  });

  it.each(["query", "cookie"] as const)("token in the %s: a good one works, a bad one is 401, one without the right is 403", async (source) => {
    const channel = randomChannel("matrix");
    expect(await route.run(channel, await tokenOf("right scope", channel), source)).toBe("ok");
    expect(await route.run(channel, await tokenOf("bad signature", channel), source)).toBe("401 unauthorized");
    expect(await route.run(channel, await tokenOf("expired", channel), source)).toBe("401 unauthorized");
    expect(await route.run(channel, await tokenOf("wrong scope", channel), source)).toBe("403 forbidden");
  });
});

describe("rights are checked per action", () => {
  it("a subscribe-only token may read but not publish, a publish-only token may publish but not read", async () => {
    const channel = randomChannel("split");
    const { mint } = await import("./auth-helpers");
    const reader = await mint({ subscribe: [channel] });
    const writer = await mint({ publish: [channel] });
    expect(await ROUTES[0]!.run(channel, reader, "header")).toBe("403 forbidden");
    expect(await ROUTES[0]!.run(channel, writer, "header")).toBe("ok");
    for (const route of ROUTES.slice(1, 8)) {
      expect(await route.run(channel, reader, "header"), route.name).toBe("ok");
      expect(await route.run(channel, writer, "header"), route.name).toBe("403 forbidden");
    }
  });

  it("a socket whose token may subscribe but not publish gets forbidden error frames, and stays open", async () => {
    const channel = randomChannel("readonly");
    const { mint } = await import("./auth-helpers");
    const ws = await Ws.connect(channel, await mint({ subscribe: [channel] }));
    const answer = await ws.request({ type: "publish", data: "nope", ref: "r1" }, (f) => f.ref === "r1", "an answer");
    expect(frameOutcome(answer)).toBe("403 forbidden");
    const mux = await Ws.open("/v1/ws", await mint({ subscribe: [channel] }));
    expect(frameOutcome(await mux.request({ type: "publish", channel, data: "nope", ref: "r2" }, (f) => f.ref === "r2", "an answer"))).toBe("403 forbidden");
    expect(frameOutcome(await mux.request({ type: "subscribe", channel, ref: "r3" }, (f) => f.type === "subscribed" || f.ref === "r3", "an answer"))).toBe(
      "ok",
    );
    const res = await send(`/v1/channels/${channel}/messages?since=0`, await mint({ subscribe: [channel] }));
    expect(((await res.json()) as { lastId: string }).lastId).toBe("0");
    expect(ws.closed).toBeUndefined();
    expect(mux.closed).toBeUndefined();
    ws.close();
    mux.close();
  });

  it("a wildcard grant covers the channels it names and no others", async () => {
    const { mint } = await import("./auth-helpers");
    const prefix = `team-${crypto.randomUUID().slice(0, 8)}`;
    const token = await mint({ publish: [`${prefix}.*`], subscribe: [`${prefix}.*`] });
    for (const channel of [`${prefix}.a`, `${prefix}.b.c`, `${prefix}.`]) expect(await ROUTES[0]!.run(channel, token, "header"), channel).toBe("ok");
    for (const channel of [prefix, `${prefix}x.a`, `x${prefix}.a`]) expect(await ROUTES[0]!.run(channel, token, "header"), channel).toBe("403 forbidden");
  });
});
