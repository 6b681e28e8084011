import { describe, expect, it } from "vitest";
import { eventually } from "../worker/helpers";
import { frameOutcome, mint, outcomeOf, send, Ws } from "./auth-helpers";

/** A fresh channel under the `public.*` pattern of PUBLIC_CHANNELS. */
const publicChannel = () => `public.${crypto.randomUUID()}`;

/** Every subscribe-type HTTP route with its success status. */
const SUBSCRIBE_ROUTES: Array<[string, (c: string) => string, number, Record<string, string>]> = [
  ["history", (c) => `/v1/channels/${c}/messages`, 200, {}],
  ["info", (c) => `/v1/channels/${c}`, 200, {}],
  ["SSE", (c) => `/v1/channels/${c}/events`, 200, {}],
  ["WebSocket", (c) => `/v1/channels/${c}/ws`, 101, { Upgrade: "websocket" }],
  ["poll", (c) => `/v1/channels/${c}/poll?timeout=0`, 200, {}],
  ["presence", (c) => `/v1/channels/${c}/presence`, 200, {}],
  ["multi-channel SSE", (c) => `/v1/events?channel=${c}`, 200, {}],
];

async function subscribeOutcome(route: (typeof SUBSCRIBE_ROUTES)[number], channel: string, token?: string): Promise<string> {
  const [, path, success, headers] = route;
  return outcomeOf(await send(path(channel), token, { headers }), success);
}

describe("PUBLIC_CHANNELS", () => {
  it.each(SUBSCRIBE_ROUTES)("%s: anyone may subscribe without a token", async (...route) => {
    expect(await subscribeOutcome(route, publicChannel())).toBe("ok");
    expect(await subscribeOutcome(route, "lobby")).toBe("ok");
  });

  it.each(SUBSCRIBE_ROUTES)("%s: an invalid token presented on a public channel is still 401", async (...route) => {
    const channel = publicChannel();
    expect(await subscribeOutcome(route, channel, await mint({ subscribe: ["*"] }, {}, "wrong-secret"))).toBe("401 unauthorized");
    expect(await subscribeOutcome(route, channel, await mint({ subscribe: ["*"] }, { exp: Math.floor(Date.now() / 1000) - 600 }))).toBe("401 unauthorized");
    expect(await subscribeOutcome(route, channel, "not-a-token")).toBe("401 unauthorized");
  });

  it.each(SUBSCRIBE_ROUTES)("%s: a valid token without subscribe rights may still subscribe to a public channel", async (...route) => {
    expect(await subscribeOutcome(route, publicChannel(), await mint({ publish: ["elsewhere"] }))).toBe("ok");
  });

  it.each(SUBSCRIBE_ROUTES)("%s: names outside the patterns are not public", async (...route) => {
    for (const channel of ["lobby2", "xlobby", "public", "publicx.news", `private.${crypto.randomUUID()}`]) {
      expect(await subscribeOutcome(route, channel), channel).toBe("401 unauthorized");
    }
  });

  it("publishing to a public channel still needs a token with the right", async () => {
    const channel = publicChannel();
    const publish = async (token?: string) => outcomeOf(await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: "x" }), 201);
    expect(await publish()).toBe("401 unauthorized");
    expect(await publish(await mint({ subscribe: ["*"] }))).toBe("403 forbidden");
    expect(await publish(await mint({ publish: ["public.*"] }))).toBe("ok");

    const batch = await send("/v1/publish", undefined, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        messages: [
          { channel, data: "anon" },
          { channel: "lobby", data: "anon" },
        ],
      }),
    });
    // Refused as a whole, before the body is read: without a token there is nowhere to publish.
    expect(await outcomeOf(batch, 200)).toBe("401 unauthorized");
  });

  it("an anonymous socket on a public channel receives messages but may not publish, over either socket", async () => {
    const channel = publicChannel();
    const ws = await Ws.connect(channel);
    expect(frameOutcome(await ws.request({ type: "publish", data: "x", ref: "a" }, (f) => f.ref === "a", "answer"))).toBe("401 unauthorized");
    const mux = await Ws.open("/v1/ws");
    await mux.request({ type: "subscribe", channel }, (f) => f.type === "subscribed", "subscribed");
    expect(frameOutcome(await mux.request({ type: "publish", channel, data: "x", ref: "b" }, (f) => f.ref === "b", "answer"))).toBe("401 unauthorized");
    expect(frameOutcome(await mux.request({ type: "subscribe", channel: "private-x", ref: "c" }, (f) => f.ref === "c", "answer"))).toBe("401 unauthorized");

    const res = await send(`/v1/channels/${channel}/messages`, await mint({ publish: [channel] }), { method: "POST", body: "from a publisher" });
    expect(res.status).toBe(201);
    await eventually(() => ws.frames.some((f) => f.type === "message" && f.data === "from a publisher"), "the message on the channel socket");
    await eventually(() => mux.frames.some((f) => f.type === "message" && f.data === "from a publisher"), "the message on /v1/ws");
    const history = await send(`/v1/channels/${channel}/messages`, undefined);
    expect(((await history.json()) as { messages: Array<{ data: string }> }).messages.map((m) => m.data)).toEqual(["from a publisher"]);
    ws.close();
    mux.close();
  });

  it("a multi-channel SSE stream mixing public and private channels needs the right for every one", async () => {
    const pub = publicChannel();
    const priv = `private-${crypto.randomUUID()}`;
    expect(await outcomeOf(await send(`/v1/events?channel=${pub}&channel=${priv}`, undefined), 200)).toBe("401 unauthorized");
    expect(await outcomeOf(await send(`/v1/events?channel=${pub}&channel=${priv}`, await mint({ subscribe: ["other"] })), 200)).toBe("403 forbidden");
    expect(await outcomeOf(await send(`/v1/events?channel=${pub}&channel=${priv}`, await mint({ subscribe: [priv] })), 200)).toBe("ok");
  });
});
