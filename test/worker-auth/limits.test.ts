import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../src/protocol/close-codes";
import { eventually, expectError } from "../worker/helpers";
import {
  HTTP_PUBLISH_LIMIT,
  HTTP_PUBLISH_PERIOD_SECONDS,
  ManualRateLimiter,
  mint,
  outcomeOf,
  randomChannel,
  relayWith,
  send,
  WS_BURST,
  Ws,
} from "./auth-helpers";

/** How many connection leases the limiter holds for a client address. */
async function leasesHeld(address: string): Promise<number> {
  const stub = env.CONNECTION_LIMITER.get(env.CONNECTION_LIMITER.idFromName(address));
  return runInDurableObject(stub, (_limiter, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM leases").one().n);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A channel socket's publishes are limited inside its room, whose PUBLISH_RATE_LIMITER binding a
 * test cannot replace (the HTTP tests below use ManualRateLimiter): the local binding counts in
 * windows aligned to the wall clock, so this one test starts early in a window.
 */
async function startOfWindow(): Promise<void> {
  const periodMs = HTTP_PUBLISH_PERIOD_SECONDS * 1000;
  if (Date.now() % periodMs > periodMs / 2) await sleep(periodMs - (Date.now() % periodMs) + 50);
}

describe("per-channel subscriber cap (MAX_SUBSCRIBERS_PER_CHANNEL=5)", () => {
  it("holds for a hot channel's whole tree: its shards share the 5", async () => {
    const channel = randomChannel("capshard");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    const open: WebSocket[] = [];
    // Each connect lands on one of the 2 shards by chance; a full one refuses, as the whole channel would.
    for (let i = 0; i < 30 && open.length < 5; i++) {
      const res = await send(`/v1/channels/${channel}/ws`, token, { headers: { Upgrade: "websocket" } });
      if (res.status === 101) {
        res.webSocket!.accept();
        open.push(res.webSocket!);
      } else await expectError(res, 429, "rate_limited");
    }
    expect(open).toHaveLength(5);
    const info = (await (await send(`/v1/channels/${channel}`, token)).json()) as { subscribers: Record<string, number>; fanout: { shards: number } };
    expect(info).toMatchObject({ subscribers: { ws: 5, sse: 0, poll: 0 }, fanout: { shards: 2 } });
    for (let i = 0; i < 6; i++) {
      const res = await send(`/v1/channels/${channel}/events`, token);
      expect(res.status).toBe(429);
      await expectError(res, 429, "rate_limited");
    }
    for (const socket of open) socket.close();
  });

  it("the 6th subscriber, by any transport, gets 429 rate_limited with Retry-After; a departure makes room", async () => {
    const channel = randomChannel("cap");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    const sockets = [await Ws.connect(channel, token), await Ws.connect(channel, token)];
    const streams = [await send(`/v1/channels/${channel}/events`, token), await send(`/v1/events?channel=${channel}`, token)];
    for (const stream of streams) expect(stream.status).toBe(200);
    const mux = await Ws.open("/v1/ws", token);
    await mux.request({ type: "subscribe", channel }, (f) => f.type === "subscribed", "subscribed");

    const info = await send(`/v1/channels/${channel}`, token);
    expect(((await info.json()) as { subscribers: Record<string, number> }).subscribers).toEqual({ ws: 3, sse: 2, poll: 0 });

    const refusals: Array<[string, Response]> = [
      ["ws", await send(`/v1/channels/${channel}/ws`, token, { headers: { Upgrade: "websocket" } })],
      ["sse", await send(`/v1/channels/${channel}/events`, token)],
      ["multi sse", await send(`/v1/events?channel=${channel}`, token)],
      ["poll", await send(`/v1/channels/${channel}/poll?timeout=1`, token)],
    ];
    for (const [name, res] of refusals) {
      expect(res.status, name).toBe(429);
      expect(Number(res.headers.get("Retry-After")), name).toBeGreaterThan(0);
      await expectError(res, 429, "rate_limited");
    }
    const other = await Ws.open("/v1/ws", token);
    const refused = await other.request({ type: "subscribe", channel, ref: "six" }, (f) => f.ref === "six", "an answer");
    expect(refused).toMatchObject({ type: "error", error: { code: "rate_limited" } });
    expect(other.closed).toBeUndefined();

    // Publishing and reading history need no subscriber slot.
    expect(await outcomeOf(await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: "x" }), 201)).toBe("ok");
    expect(await outcomeOf(await send(`/v1/channels/${channel}/messages`, token), 200)).toBe("ok");

    sockets[0]!.close();
    await eventually(
      async () => (await send(`/v1/channels/${channel}/ws`, token, { headers: { Upgrade: "websocket" } }).then((r) => outcomeOf(r, 101))) === "ok",
      "room for a new subscriber",
    );
    sockets[1]!.close();
    mux.close();
    other.close();
    for (const stream of streams) await stream.body?.cancel();
  });
});

describe("WebSocket publish flood (WS_PUBLISH_RATE=5, WS_PUBLISH_BURST=5)", () => {
  // Every publish the relay stored is acknowledged before the flood close: a client must never
  // be left to publish again what was already stored.
  it.each([
    ["channel socket", (channel: string) => `/v1/channels/${channel}/ws`],
    ["multi-channel socket", () => "/v1/ws"],
  ])("%s: rate_limited error frames, then close 4029; only acknowledged publishes are stored", async (_name, path) => {
    const channel = randomChannel("flood");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    const ws = await Ws.open(path(channel), token);
    for (let i = 0; i < 40; i++) ws.send({ type: "publish", channel, data: `flood-${i}`, ref: `f${i}` });
    const closed = await ws.waitClosed("the flood close");
    expect(closed.code).toBe(CloseCode.RateLimited);
    expect(CloseCode.RateLimited).toBe(4029);

    const acks = ws.frames.filter((f) => f.type === "ack");
    const limited = ws.frames.filter((f) => f.type === "error" && (f.error as { code: string }).code === "rate_limited");
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited.every((f) => typeof f.ref === "string")).toBe(true);

    // Every publish the relay stored was acknowledged before the close, and nothing past the burst got in.
    await sleep(500);
    const history = await send(`/v1/channels/${channel}/messages?since=0`, token);
    const stored = ((await history.json()) as { messages: Array<{ data: string }> }).messages.map((m) => m.data);
    expect({ stored: stored.length, acknowledged: acks.length }).toEqual({ stored: stored.length, acknowledged: stored.length });
    expect(stored.length).toBeGreaterThanOrEqual(WS_BURST);
    expect(stored.length).toBeLessThanOrEqual(WS_BURST + 2);
    // Refusals come after the acknowledged burst: the first refused ref follows the last stored one.
    expect(Number(String(limited[0]!.ref).slice(1))).toBeGreaterThanOrEqual(stored.length);
  });

  it("a socket that keeps to the rate is never refused", async () => {
    const channel = randomChannel("steady");
    const ws = await Ws.connect(channel, await mint({ publish: [channel], subscribe: [channel] }));
    await startOfWindow();
    for (let i = 0; i < 8; i++) {
      const answer = await ws.request({ type: "publish", data: `steady-${i}`, ref: `s${i}` }, (f) => f.ref === `s${i}`, "an answer");
      // The socket's meter never refuses; past 5, PUBLISH_RATE_LIMITER (5 per 10 s here) does, as for HTTP.
      if (i < HTTP_PUBLISH_LIMIT) expect(answer.type).toBe("ack");
      else expect(answer).toMatchObject({ type: "error", error: { code: "rate_limited", message: expect.stringMatching(/per 10 s/) } });
      await sleep(250);
    }
    expect(ws.closed).toBeUndefined();
    ws.close();
  }, 15_000);
});

describe("HTTP publish rate limit (PUBLISH_RATE_LIMITER: 5 per 10 s per key)", () => {
  it("the 6th publish from one subject is 429 with Retry-After; other subjects are not affected; it recovers", async () => {
    const limiter = new ManualRateLimiter();
    const via = relayWith(limiter);
    const channel = randomChannel("rate");
    const alice = `alice-${crypto.randomUUID()}`;
    const aliceToken = await mint({ publish: [channel] }, { sub: alice });
    const aliceAgain = await mint({ publish: [channel] }, { sub: alice });
    const bobToken = await mint({ publish: [channel] });
    const publish = (token: string, data: string) => send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: data }, via);

    for (let i = 0; i < HTTP_PUBLISH_LIMIT; i++) expect((await publish(aliceToken, `a${i}`)).status).toBe(201);
    const limited = await publish(aliceToken, "REJECTED-6");
    expect(limited.headers.get("Retry-After")).toBe(String(HTTP_PUBLISH_PERIOD_SECONDS));
    await expectError(limited, 429, "rate_limited");
    // Another token of the same subject shares the count; another subject has its own.
    await expectError(await publish(aliceAgain, "REJECTED-7"), 429, "rate_limited");
    expect((await publish(bobToken, "b0")).status).toBe(201);

    // Batch entries and multi-channel socket publishes count against the same key.
    const batch = await send(
      "/v1/publish",
      aliceToken,
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ messages: [{ channel, data: "REJECTED-batch" }] }),
      },
      via,
    );
    expect(((await batch.json()) as { results: Array<{ error?: { code: string } }> }).results[0]?.error?.code).toBe("rate_limited");
    const ws = await Ws.open("/v1/ws", aliceToken, {}, via);
    const answer = await ws.request({ type: "publish", channel, data: "REJECTED-ws", ref: "w" }, (f) => f.ref === "w", "an answer");
    expect(answer).toMatchObject({ type: "error", error: { code: "rate_limited" } });
    ws.close();

    const history = await send(`/v1/channels/${channel}/messages?since=0`, await mint({ subscribe: [channel] }));
    const stored = ((await history.json()) as { messages: Array<{ data: string }> }).messages.map((m) => m.data);
    expect(stored).toEqual(["a0", "a1", "a2", "a3", "a4", "b0"]);

    // Recovered once the window has passed.
    limiter.nextWindow();
    expect((await publish(aliceToken, "after the window")).status).toBe(201);
  });

  it("a batch counts every entry: entries past the limit are rate_limited, the others stored", async () => {
    const channel = randomChannel("rate-batch");
    const token = await mint({ publish: [channel] });
    const via = relayWith(new ManualRateLimiter());
    const res = await send(
      "/v1/publish",
      token,
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ messages: Array.from({ length: 7 }, (_, i) => ({ channel, data: `m${i}` })) }),
      },
      via,
    );
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: Array<{ id?: string; error?: { code: string } }> };
    expect(results.map((r) => r.id ?? r.error?.code)).toEqual(["1", "2", "3", "4", "5", "rate_limited", "rate_limited"]);
  });

  it("tokens without sub are keyed by client address", async () => {
    const channel = randomChannel("rate-ip");
    const token = await mint({ publish: [channel] }, { sub: undefined });
    const ip = "198.51.100.7";
    const via = relayWith(new ManualRateLimiter());
    const publish = (address: string) =>
      send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: "x", headers: { "CF-Connecting-IP": address } }, via);
    for (let i = 0; i < HTTP_PUBLISH_LIMIT; i++) expect((await publish(ip)).status).toBe(201);
    await expectError(await publish(ip), 429, "rate_limited");
    expect((await publish("2001:db8::1")).status).toBe(201);
  });
});

describe("connections per client address (MAX_CONNECTIONS_PER_IP=50)", () => {
  it("refuses the 51st WebSocket or SSE connection of one address with 429, others unaffected, and frees a slot on close", async () => {
    // A channel per connection: the channels' own cap (5) must not be what refuses.
    const prefix = randomChannel("per-ip");
    const token = await mint({ subscribe: [`${prefix}*`] });
    let n = 0;
    const channel = () => `${prefix}-${n++}`;
    const address = { "CF-Connecting-IP": `198.51.100.${Math.floor(Math.random() * 250) + 1}` };
    const held: Ws[] = [];
    for (let i = 0; i < 25; i++)
      held.push(new Ws((await send(`/v1/channels/${channel()}/ws`, token, { headers: { ...address, Upgrade: "websocket" } })).webSocket!));
    const streams: Response[] = [];
    for (let i = 0; i < 25; i++) {
      const path = i % 2 ? `/v1/channels/${channel()}/events` : `/v1/events?channel=${channel()}`;
      const stream = await send(path, token, { headers: address });
      expect(stream.status).toBe(200);
      streams.push(stream);
    }

    const refused = await send(`/v1/channels/${channel()}/ws`, token, { headers: { ...address, Upgrade: "websocket" } });
    expect(refused.headers.get("Retry-After")).not.toBeNull();
    await expectError(refused, 429, "rate_limited");
    await expectError(await send(`/v1/channels/${channel()}/events`, token, { headers: address }), 429, "rate_limited");
    // Another address is not held back.
    const other = await send(`/v1/channels/${channel()}/events`, token, { headers: { "CF-Connecting-IP": "203.0.113.9" } });
    expect(other.status).toBe(200);
    await other.body?.cancel();

    held.pop()!.socket.close(1000, "make room");
    await eventually(async () => {
      const retry = await send(`/v1/channels/${channel()}/ws`, token, { headers: { ...address, Upgrade: "websocket" } });
      if (retry.status !== 101) return false;
      held.push(new Ws(retry.webSocket!));
      return true;
    }, "a freed slot");

    for (const ws of held) ws.socket.close(1000, "done");
    for (const stream of streams) await stream.body?.cancel();
    // Every slot comes back; waiting for it also keeps releases from running into the teardown.
    for (const key of [address["CF-Connecting-IP"], "203.0.113.9"]) {
      await eventually(async () => (await leasesHeld(key)) === 0, `the leases of ${key} to be released`);
    }
  }, 30_000);
});
