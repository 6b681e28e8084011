import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { BASE, expectError } from "../worker/helpers";
import {
  APP_ORIGIN,
  FOREIGN_ORIGIN,
  HTTP_PUBLISH_LIMIT,
  HTTP_PUBLISH_PERIOD_SECONDS,
  mint,
  nowSeconds,
  outcomeOf,
  randomChannel,
  SECRET,
  send,
  type TokenSource,
  Ws,
} from "./auth-helpers";

const PERIOD_MS = HTTP_PUBLISH_PERIOD_SECONDS * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The local rate limiter counts in windows aligned to the wall clock: start early in one. */
async function startOfWindow(): Promise<void> {
  if (Date.now() % PERIOD_MS > PERIOD_MS / 2) await sleep(PERIOD_MS - (Date.now() % PERIOD_MS) + 50);
}

async function stored(channel: string): Promise<string[]> {
  const res = await send(`/v1/channels/${channel}/messages?since=0`, await mint({ subscribe: [channel] }));
  return ((await res.json()) as { messages: Array<{ data: string }> }).messages.map((m) => m.data);
}

const batchOf = (channel: string, data: string) => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ messages: [{ channel, data }] }),
});

describe("a channel's own socket takes the publish path: PUBLISH_RATE_LIMITER (5 per 10 s) counts its publishes", () => {
  it("past the limit its publishes get rate_limited error frames with their refs, stay open, and store nothing", async () => {
    const channel = randomChannel("ws-limit");
    const ws = await Ws.connect(channel, await mint({ publish: [channel], subscribe: [channel] }));
    await startOfWindow();
    // Sent at once: within the socket's own burst (WS_PUBLISH_BURST=5 lets 5 through), so only the limiter refuses.
    const refs = Array.from({ length: HTTP_PUBLISH_LIMIT + 2 }, (_, i) => `p${i}`);
    for (const ref of refs.slice(0, 5)) ws.send({ type: "publish", data: ref, ref });
    const answers = [];
    for (const ref of refs.slice(0, 5)) answers.push(await ws.waitFor((f) => f.ref === ref, `an answer to ${ref}`));
    expect(answers.map((f) => f.type)).toEqual(["ack", "ack", "ack", "ack", "ack"]);
    await sleep(500); // the socket's meter refills; the limiter does not
    for (const ref of refs.slice(5)) {
      const answer = await ws.request({ type: "publish", data: ref, ref }, (f) => f.ref === ref, `an answer to ${ref}`);
      expect(answer).toMatchObject({ type: "error", ref, error: { code: "rate_limited", message: expect.stringMatching(/per 10 s/) } });
    }
    expect(ws.closed).toBeUndefined();
    expect(await stored(channel)).toEqual(refs.slice(0, 5));
    ws.close();
  }, 15_000);

  it("counts together with the same publisher's HTTP publishes, in order: acknowledged ones first, then refusals", async () => {
    const channel = randomChannel("ws-limit-shared");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    const ws = await Ws.connect(channel, token);
    await startOfWindow();
    for (let i = 0; i < 3; i++) expect((await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: `http-${i}` })).status).toBe(201);
    for (let i = 0; i < 4; i++) ws.send({ type: "publish", data: `ws-${i}`, ref: `w${i}` });
    await ws.waitFor((f) => f.ref === "w3", "the last answer");
    const answers = ws.frames.filter((f) => typeof f.ref === "string");
    // One socket's publishes are answered in the order sent, also when the limiter makes each wait.
    expect(answers.map((f) => [f.ref, f.type === "ack" ? "ack" : (f.error as { code: string }).code])).toEqual([
      ["w0", "ack"],
      ["w1", "ack"],
      ["w2", "rate_limited"],
      ["w3", "rate_limited"],
    ]);
    expect(await stored(channel)).toEqual(["http-0", "http-1", "http-2", "ws-0", "ws-1"]);
    ws.close();
  }, 15_000);
});

describe("batch: a caller who may publish nowhere is refused before the body is read", () => {
  /** A batch whose body never ends: a route that reads it never answers. */
  function endlessBatch(token: string | undefined, source: TokenSource = "header", headers: Record<string, string> = {}) {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"messages":['));
      },
    });
    const answer = send("/v1/publish", token, { method: "POST", body, source, headers: { "Content-Type": "application/json", ...headers } });
    const unread = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the body was read: no answer")), 3000));
    return Promise.race([answer, unread]);
  }

  it("no token, a bad one, one whose publish list is empty, the cookie from an unlisted origin: 401/403 at once", async () => {
    const channel = randomChannel("batch-door");
    expect(await outcomeOf(await endlessBatch(undefined), 200)).toBe("401 unauthorized");
    expect(await outcomeOf(await endlessBatch("not.a.token"), 200)).toBe("401 unauthorized");
    expect(await outcomeOf(await endlessBatch(await mint({ subscribe: ["*"] })), 200)).toBe("403 forbidden");
    const writer = await mint({ publish: [channel] });
    expect(await outcomeOf(await endlessBatch(writer, "cookie", { Origin: FOREIGN_ORIGIN }), 200)).toBe("403 forbidden");
  });
});

describe("cookie-authenticated writes and Origin (CORS_ORIGINS=https://app.example)", () => {
  const publishWith = async (channel: string, token: string, source: TokenSource, origin?: string) =>
    outcomeOf(
      await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: `from ${origin}`, source, headers: origin ? { Origin: origin } : {} }),
      201,
    );

  it("a publish the cookie authorizes from an unlisted origin is 403 forbidden and stores nothing; other writes go on", async () => {
    const channel = randomChannel("csrf");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    for (const origin of [FOREIGN_ORIGIN, "null", "https://app.example.evil.example", "http://app.example"]) {
      expect(await publishWith(channel, token, "cookie", origin), origin).toBe("403 forbidden");
    }
    const res = await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: "x", source: "cookie", headers: { Origin: FOREIGN_ORIGIN } });
    expect((await expectError(res, 403, "forbidden")).message).toMatch(/CORS_ORIGINS/);
    expect(await stored(channel)).toEqual([]);

    // The cookie still writes from a listed origin, the relay's own origin, and without Origin (not a browser).
    for (const origin of [APP_ORIGIN, new URL(BASE).origin, undefined]) expect(await publishWith(channel, token, "cookie", origin), origin).toBe("ok");
    // A token in the header or the query writes from any origin: only the cookie is sent without the page knowing.
    expect(await publishWith(channel, token, "header", FOREIGN_ORIGIN)).toBe("ok");
    expect(await publishWith(channel, token, "query", FOREIGN_ORIGIN)).toBe("ok");
    expect(await stored(channel)).toHaveLength(5);
  });

  it("a batch the cookie authorizes from an unlisted origin is 403 as a whole and stores nothing; from a listed one it works", async () => {
    const channel = randomChannel("csrf-batch");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    const foreign = await send("/v1/publish", token, {
      ...batchOf(channel, "forged"),
      source: "cookie",
      headers: { ...batchOf(channel, "").headers, Origin: FOREIGN_ORIGIN },
    });
    await expectError(foreign, 403, "forbidden");
    const listed = await send("/v1/publish", token, {
      ...batchOf(channel, "mine"),
      source: "cookie",
      headers: { ...batchOf(channel, "").headers, Origin: APP_ORIGIN },
    });
    expect(listed.status).toBe(200);
    expect(await stored(channel)).toEqual(["mine"]);
  });
});

describe("a valid token without a relay claim grants nothing: 403, not 401", () => {
  const noClaim = () => sign({ sub: `u-${crypto.randomUUID()}`, exp: nowSeconds() + 300 }, SECRET, "HS256");

  it("is 403 forbidden for publishing, batch, history and WebSocket, and may subscribe to public channels like any token", async () => {
    const channel = randomChannel("no-claim");
    const token = await noClaim();
    expect(await outcomeOf(await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: "x" }), 201)).toBe("403 forbidden");
    expect(await outcomeOf(await send("/v1/publish", token, batchOf(channel, "x")), 200)).toBe("403 forbidden");
    expect(await outcomeOf(await send(`/v1/channels/${channel}/messages`, token), 200)).toBe("403 forbidden");
    expect(await outcomeOf(await send(`/v1/channels/${channel}/ws`, token, { headers: { Upgrade: "websocket" } }), 101)).toBe("403 forbidden");
    expect(await outcomeOf(await send("/v1/channels/public.news/messages", token), 200)).toBe("ok");
    // A relay claim that is there but malformed is not a token the relay can read: still 401.
    const malformed = await sign({ exp: nowSeconds() + 300, relay: "everything" }, SECRET, "HS256");
    expect(await outcomeOf(await send(`/v1/channels/${channel}/messages`, malformed, { method: "POST", body: "x" }), 201)).toBe("401 unauthorized");
  });
});
