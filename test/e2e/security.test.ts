import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type Answer, expectAsTabled, expectFrameError } from "../corpus/expect-answer";
import { HOSTILE_CASES, HOSTILE_CHANNELS, HOSTILE_CORPUS_VARS, HOSTILE_FRAMES, type HostileCase, type HostileFrame, rejectedMarkers } from "../corpus/hostile";
import { Collector, closeAll, DEV_PROXY_LOST, type Frame, fetchRelay, uniqueChannel, withTimeout } from "../support/clients";
import { type Relay, startRelay } from "../support/relay";
import { carry, EXPECTED, type Grants, mintWith, TOKEN_KINDS, type TokenKind, type TokenSource, tokenOfWith } from "../support/tokens";

/**
 * Security end to end, against real relay processes (`npm run dev`'s stack: wrangler's dev server
 * and workerd, over real sockets):
 *
 * 1. The hostile-input corpus (test/corpus/hostile.ts), which test/worker/hostile-corpus.test.ts
 *    runs inside workerd, sent over the wire: every HTTP case with Node's fetch (or `http.request`
 *    where fetch would change the request, see `needsRawRequest`), every WebSocket frame with `ws`.
 * 2. Authorization, CORS and the WebSocket Origin check on a relay with a secret.
 *
 * Not here: the publish rate limit. wrangler.toml ships PUBLISH_RATE_LIMITER at 1000 per 10 s, too
 * many to reach and recover from quickly; the worker-auth project (5 per 10 s) covers it.
 *
 * Tokens come from test/support/tokens.ts, shared with the worker-auth project.
 */

const WAIT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// HTTP: fetch, or a raw request

/** Any request with fetch; an event stream is cancelled once its headers are in. */
async function fetchAnswer(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetchRelay(url, { ...init, signal: AbortSignal.timeout(WAIT_MS) });
  if ((res.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) {
    await res.body?.cancel();
    return { status: res.status, headers: res.headers, text: "" };
  }
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/**
 * A request whose path goes on the wire byte for byte (fetch's URL parser would resolve `.` and
 * `..` segments first). Tolerates a peer that answers and closes before reading the whole request
 * (the runtime's 431): the status and whatever body arrived are the answer.
 */
function rawAnswer(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Uint8Array): Promise<Answer> {
  const { hostname, port } = new URL(base);
  const payload = body === undefined ? undefined : Buffer.from(body);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      { host: hostname, port, method, path, headers: { ...headers, ...(payload ? { "Content-Length": String(payload.length) } : {}) }, agent: false },
      (res) => {
        answered = true;
        const out = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const answer = (text: string): void => resolve({ status: res.statusCode ?? 0, headers: out, text });
        if ((out.get("Content-Type") ?? "").startsWith("text/event-stream")) {
          res.destroy();
          answer("");
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => answer(Buffer.concat(chunks).toString("utf8")));
        // "aborted": the peer closed before the body's end; keep what came.
        res.on("error", () => answer(Buffer.concat(chunks).toString("utf8")));
        res.on("close", () => answer(Buffer.concat(chunks).toString("utf8")));
      },
    );
    req.setTimeout(WAIT_MS, () => req.destroy(new Error(`no answer to ${method} ${path.slice(0, 100)} in ${WAIT_MS} ms`)));
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------
// WebSocket

interface Refused {
  refused: true;
  status: number;
  type: string;
  body: string;
}

/** A `ws` client: every text frame parsed, its exact text, and how it closed. */
class Sock {
  readonly frames = new Collector<Frame>();
  readonly raw: string[] = [];
  closed: { code: number; reason: string } | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? `(binary ${(data as Buffer).length} bytes)` : String(data);
      this.raw.push(text);
      let frame: Frame;
      try {
        frame = JSON.parse(text) as Frame;
      } catch {
        frame = { type: "(raw)", text };
      }
      this.frames.push(frame);
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.frames.poke();
    });
    // Errors show up as a close, or as the refusal `open` reports.
    ws.on("error", () => undefined);
  }

  /** Upgrades `url` (ws://…) and resolves with the open socket, or with the HTTP answer that refused it. */
  static open(url: string, options: { headers?: Record<string, string>; origin?: string } = {}): Promise<Sock | Refused> {
    const ws = new WebSocket(url, { headers: options.headers, origin: options.origin, handshakeTimeout: WAIT_MS });
    const sock = new Sock(ws);
    return withTimeout(
      new Promise<Sock | Refused>((resolve, reject) => {
        ws.once("open", () => resolve(sock));
        ws.once("unexpected-response", (req, res) => {
          const chunks: Buffer[] = [];
          const done = (): void => {
            resolve({
              refused: true,
              status: res.statusCode ?? 0,
              type: String(res.headers["content-type"] ?? ""),
              body: Buffer.concat(chunks).toString("utf8"),
            });
            req.destroy();
          };
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", done);
          res.on("error", done);
        });
        ws.once("error", reject);
      }),
      WAIT_MS + 1_000,
      `WebSocket upgrade of ${url.slice(0, 120)}`,
    ).catch((error: unknown) => {
      ws.terminate();
      throw error;
    });
  }

  /** Opens and insists on success. */
  static async connect(url: string, options: { headers?: Record<string, string>; origin?: string } = {}): Promise<Sock> {
    const sock = await Sock.open(url, options);
    if ("refused" in sock) throw new Error(`WebSocket upgrade of ${url} refused: ${sock.status} ${sock.body}`);
    return sock;
  }

  send(frame: string | Uint8Array | object): void {
    this.ws.send(typeof frame === "string" || frame instanceof Uint8Array ? frame : JSON.stringify(frame));
  }

  /** The first frame after the first `seen` frames that `predicate` accepts; rejects once the socket closed or after a bounded wait. */
  async next(seen: number, predicate: (frame: Frame) => boolean, what: string, timeoutMs = 5_000): Promise<Frame> {
    const items = await this.frames.waitFor((all) => all.slice(seen).some(predicate) || this.closed !== undefined, timeoutMs, what);
    const found = items.slice(seen).find(predicate);
    if (!found) throw new Error(`socket closed (${JSON.stringify(this.closed)}) while waiting for ${what}`);
    return found;
  }

  /** Sends a frame and resolves with the first later frame that `predicate` accepts. */
  request(frame: string | object, predicate: (frame: Frame) => boolean, what: string): Promise<Frame> {
    const seen = this.frames.items.length;
    this.send(frame);
    return this.next(seen, predicate, what);
  }

  async close(): Promise<void> {
    if (this.closed || this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(1000, "test done");
    try {
      await this.frames.waitFor(() => this.closed !== undefined, 3_000, "close handshake");
    } catch {
      this.ws.terminate();
    }
  }
}

/** Polls `condition` until it holds or `timeoutMs` passed (the caller then asserts). */
async function eventually(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 25));
}

/** A live raw SSE stream read with fetch: the text so far, and a way to end it. */
function readSse(url: string): { text: () => string; status: Promise<number>; cancel: () => Promise<void> } {
  const controller = new AbortController();
  let text = "";
  const decoder = new TextDecoder();
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const status = fetch(url, { signal: controller.signal }).then((res) => {
    reader = res.body?.getReader();
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader!.read();
          if (done) return;
          text += decoder.decode(value, { stream: true });
        }
      } catch {
        // Cancelled.
      }
    })();
    return res.status;
  });
  status.catch(() => undefined);
  return {
    text: () => text,
    status,
    cancel: async () => {
      await reader?.cancel().catch(() => undefined);
      controller.abort();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1. The hostile corpus, end to end

/**
 * Request heads the runtime's HTTP stack refuses before the Worker runs: workerd answers
 * `431 text/plain` ("ERROR: header too large.") once a request head passes about 128 KiB, and in the
 * dev stack the URL counts twice (the request line, and miniflare's `MF-Original-URL` header on the
 * hop to the Worker), so any URL over ~64 KiB is answered by the runtime. Headers of 100 KB alone
 * still reach the Worker (#60, #65, #176, #178 pass against the table).
 */
const RUNTIME_URL_LIMIT = 64 * 1024;
const answeredByRuntime = (c: HostileCase) => c.path.length > RUNTIME_URL_LIMIT;

/**
 * The corpus cases the runtime answers before the Worker (all a URL of 80–200 KB), checked below
 * for a 4xx answer and a healthy relay instead of the table's status and JSON code:
 *   #24 channel of 100 KB · #50 event of 100 KB · #70 100 KB of an unknown query parameter ·
 *   #71 100 KB since · #72 100 KB limit of digits counts as the maximum ·
 *   #73 10,000 since parameters, the first one counts · #74 100 KB channel name on /v1/events ·
 *   #75 10,000 distinct channel= parameters on /v1/events · #76 10,000 channel= parameters with
 *   invalid names · #78 10,000 copies of one channel= parameter are one channel ·
 *   #84 a token of 100 KB is not looked at without a secret
 * (The same inputs reach the Worker, and are checked against the table, in the workerd runner.)
 */
const RUNTIME_ANSWERED_IDS = [24, 50, 70, 71, 72, 73, 74, 75, 76, 78, 84];

/** fetch resolves `.`/`..` segments (plain or %2e-encoded) before sending: those go raw, as the corpus writes them. */
function needsRawRequest(c: HostileCase): boolean {
  const url = new URL(c.path, "http://relay.test");
  return answeredByRuntime(c) || url.pathname + url.search !== c.path;
}

describe("the hostile corpus against a real relay", () => {
  let relay: Relay;
  /** Live watchers of every corpus channel: they see a message even if history later pruned it. */
  const watchers = new Map<string, Sock>();
  /** The corpus's two kinds of socket, opened before the frames and checked after them. */
  const sockets = new Map<string, Sock>();
  let sse: ReturnType<typeof readSse> | undefined;
  const rawSent: number[] = [];

  beforeAll(async () => {
    relay = await startRelay({ vars: { ...HOSTILE_CORPUS_VARS } });
    const ws = relay.url.replace(/^http/, "ws");
    for (const channel of HOSTILE_CHANNELS) watchers.set(channel, await Sock.connect(`${ws}/v1/channels/${channel}/ws`));
    await Promise.all([...watchers.values()].map((w) => w.next(0, (f) => f.type === "subscribed", "subscribed")));
    for (const path of new Set(HOSTILE_FRAMES.map((f) => f.path))) {
      const sock = await Sock.connect(`${ws}${path}`);
      if (path !== "/v1/ws") await sock.next(0, (f) => f.type === "subscribed", `subscribed on ${path}`);
      sockets.set(path, sock);
    }
    sse = readSse(`${relay.url}/v1/channels/hostile-sse/events`);
    expect(await withTimeout(sse.status, WAIT_MS, "SSE on hostile-sse")).toBe(200);
  });

  afterAll(async () => {
    await sse?.cancel();
    await closeAll([...watchers.values(), ...sockets.values()]);
    await relay?.stop();
  });

  async function send(c: HostileCase): Promise<Answer> {
    if (needsRawRequest(c)) {
      rawSent.push(c.id);
      return rawAnswer(relay.url, c.method, c.path, c.headers, c.body);
    }
    return fetchAnswer(`${relay.url}${c.path}`, { method: c.method, headers: c.headers, body: c.body as BodyInit | undefined });
  }

  it("the cases answered by the runtime are exactly the ones listed, and they are few", () => {
    expect(HOSTILE_CASES.length).toBeGreaterThanOrEqual(100);
    expect(HOSTILE_CASES.filter(answeredByRuntime).map((c) => c.id)).toEqual(RUNTIME_ANSWERED_IDS);
  });

  it.each(HOSTILE_CASES)("#$id $name", async (c) => {
    const where = `#${c.id} ${c.name}: ${c.method} ${c.path.slice(0, 120)}`;
    const res = await send(c);
    if (!answeredByRuntime(c)) {
      expectAsTabled(c, res, where);
      return;
    }
    // Refused by the HTTP stack before the Worker: any 4xx, and the relay keeps working. Should
    // the Worker answer after all (a runtime with a larger limit), the table applies. Now and then
    // wrangler's dev proxy loses the runtime's 431 (the runtime drops the connection of a POST whose
    // head it refused) and answers its own 503 instead; the Worker never saw the request. A real
    // restart would close every watcher, which "every socket is still open" below would catch.
    const lostByDevProxy = res.status === 503 && res.text.includes(DEV_PROXY_LOST);
    if (!lostByDevProxy) {
      expect(res.status, `${where}: ${res.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${where}: ${res.text.slice(0, 200)}`).toBeLessThan(500);
    }
    if ((res.headers.get("Content-Type") ?? "").startsWith("application/json")) expectAsTabled(c, res, where);
    const health = await fetchAnswer(`${relay.url}/healthz`);
    expect(health.status, `healthz after ${where}`).toBe(200);
  });

  it("sent raw (not with fetch) only the runtime-answered cases and the four whose dot segments fetch would resolve", () => {
    expect(rawSent).toEqual([7, 8, 9, 11, ...RUNTIME_ANSWERED_IDS].sort((a, b) => a - b));
  });

  it("has frames for both kinds of socket", () => {
    expect(HOSTILE_FRAMES.filter((f) => f.path === "/v1/ws").length).toBeGreaterThan(20);
    expect(HOSTILE_FRAMES.filter((f) => f.path !== "/v1/ws").length).toBeGreaterThan(20);
  });

  it.each(HOSTILE_FRAMES)("frame #F$id $name", async (f: HostileFrame) => {
    const sock = sockets.get(f.path)!;
    const where = `#F${f.id} ${f.name}`;
    const seen = sock.frames.items.length;
    sock.send(f.frame);
    const answer = await sock.next(seen, (x) => x.type !== "message", `an answer to ${where}`);
    expect(sock.closed, where).toBeUndefined();
    expectFrameError(f, answer, where);
  });

  it("every socket is still open and working after the frames", async () => {
    for (const [path, sock] of sockets) {
      expect(sock.closed, path).toBeUndefined();
      const seen = sock.frames.items.length;
      sock.send('{"type":"ping"}');
      await sock.next(seen, (f) => f.type === "pong", `pong on ${path}`);
      expect(sock.raw).toContain('{"type":"pong"}');
      const frame =
        path === "/v1/ws"
          ? { type: "publish", channel: "hostile-mux", data: "still alive", ref: "alive" }
          : { type: "publish", data: "still alive", ref: "alive" };
      sock.send(frame);
      const ack = await sock.next(seen, (f) => f.type === "ack" && f.ref === "alive", `an ack on ${path}`);
      expect(ack.id).toMatch(/^[1-9][0-9]*$/);
    }
    for (const [channel, watcher] of watchers) expect(watcher.closed, `watcher of ${channel}`).toBeUndefined();
  });

  it("the relay is healthy", async () => {
    const res = await fetchAnswer(`${relay.url}/healthz`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ ok: true });
  });

  it("no corpus channel holds, or ever delivered, the payload of a refused request or frame; the accepted ones are there", async () => {
    const refused = [...rejectedMarkers(), ...HOSTILE_FRAMES.flatMap((f) => f.markers ?? [])];
    expect(refused.length).toBeGreaterThan(100);
    const texts: string[] = [];
    const found: string[] = [];
    const check = (where: string, data: string, encoding?: string) => {
      const text = encoding === "base64" ? Buffer.from(data, "base64").toString("utf8") : data;
      texts.push(text);
      for (const m of refused) if (text.includes(m)) found.push(`${where}: ${m}`);
    };
    for (const channel of HOSTILE_CHANNELS) {
      const res = await fetchAnswer(`${relay.url}/v1/channels/${channel}/messages?since=0&limit=1000`);
      expect(res.status, channel).toBe(200);
      const page = JSON.parse(res.text) as { messages: Array<{ data: string; encoding?: string }> };
      for (const message of page.messages) check(`history of ${channel}`, message.data, message.encoding);
      for (const frame of watchers.get(channel)!.frames.items) {
        if (frame.type === "message") check(`live on ${channel}`, String(frame.data), frame.encoding as string | undefined);
      }
    }
    expect(found).toEqual([]);

    // Not vacuous: what the table says was stored on these channels is there. (Case #10 publishes
    // to "a..b", not a corpus channel; the runtime-answered cases never reached the Worker.)
    const accepted = HOSTILE_CASES.filter((c) => c.markers && c.expect.status < 300 && c.id !== 10 && !answeredByRuntime(c)).flatMap((c) =>
      c.markers!.filter((_, i) => !c.expect.results || c.expect.results[i] === "ok"),
    );
    expect(accepted.length).toBeGreaterThan(10);
    expect(accepted.filter((m) => !texts.some((t) => t.includes(m)))).toEqual([]);
  });

  it("the SSE stream of a corpus channel holds only well-formed fields: nothing was injected", async () => {
    await eventually(() => sse!.text().includes("[HOSTILE-"), 5_000);
    const text = sse!.text();
    expect(text).toContain("[HOSTILE-");
    const bad = text.split("\n").filter((line) => line !== "" && !line.startsWith(":") && !/^(id|event|data|retry):( |$)/.test(line));
    expect(bad).toEqual([]);
    expect(text).not.toContain("\r");
    const events = text
      .split("\n")
      .filter((line) => line.startsWith("event:"))
      .map((line) => line.slice("event:".length).trim());
    expect(events.filter((e) => e !== "message")).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Authorization, CORS and origins

const SECRET = "e2e-security-secret";
const APP_ORIGIN = "https://app.example";
const FOREIGN_ORIGIN = "https://evil.example";

const mint = (grants: Grants, claims: Record<string, unknown> = {}) => mintWith(SECRET, grants, claims);
const tokenOf = (kind: TokenKind, channel: string) => tokenOfWith(SECRET, kind, channel);

/** "ok" for the success status, else "<status> <code>" from the JSON error body. */
function outcome(status: number, type: string, text: string, success: number): string {
  if (status === success) return "ok";
  expect(type, `status ${status}: ${text.slice(0, 200)}`).toMatch(/^application\/json/);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  expect(body.error.message.length).toBeGreaterThan(10);
  return `${status} ${body.error.code}`;
}

type Route = "publish" | "SSE" | "WebSocket" | "long-poll" | "history";
const ROUTES: Route[] = ["publish", "SSE", "WebSocket", "long-poll", "history"];

describe("authorization, CORS and origins on a relay with a secret", () => {
  let relay: Relay;

  beforeAll(async () => {
    relay = await startRelay({ vars: { RELAY_JWT_SECRET: SECRET, PUBLIC_CHANNELS: "public.*", CORS_ORIGINS: APP_ORIGIN } });
  });

  afterAll(async () => {
    await relay?.stop();
  });

  /** One request on `route` for `channel`, with `token` carried by `source`; "ok" or "<status> <code>". */
  async function attempt(
    route: Route,
    channel: string,
    token: string | undefined,
    source: TokenSource = "header",
    extra: Record<string, string> = {},
  ): Promise<string> {
    const resource = { publish: "messages", SSE: "events", WebSocket: "ws", "long-poll": "poll?timeout=0", history: "messages" }[route];
    const { url, headers } = carry(`/v1/channels/${channel}/${resource}`, token, source, extra);
    if (route === "WebSocket") {
      const sock = await Sock.open(`${relay.url.replace(/^http/, "ws")}${url}`, { headers });
      if ("refused" in sock) return outcome(sock.status, sock.type, sock.body, 101);
      try {
        await sock.next(0, (f) => f.type === "subscribed", `subscribed on ${channel}`);
      } finally {
        await sock.close();
      }
      return "ok";
    }
    if (route === "SSE") {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), WAIT_MS);
      try {
        const res = await fetch(`${relay.url}${url}`, { headers, signal: controller.signal });
        if (res.status !== 200) return outcome(res.status, res.headers.get("Content-Type") ?? "", await res.text(), 200);
        expect(res.headers.get("Content-Type")).toMatch(/^text\/event-stream/);
        // The first bytes (retry:, the opening id), then away.
        const reader = res.body!.getReader();
        const first = await reader.read();
        expect(first.value?.length ?? 0).toBeGreaterThan(0);
        await reader.cancel().catch(() => undefined);
        return "ok";
      } finally {
        clearTimeout(timer);
        controller.abort();
      }
    }
    const init: RequestInit = route === "publish" ? { method: "POST", body: "auth e2e", headers } : { headers };
    const res = await fetchAnswer(`${relay.url}${url}`, init);
    return outcome(res.status, res.headers.get("Content-Type") ?? "", res.text, route === "publish" ? 201 : 200);
  }

  it.each(ROUTES)("%s: no token, bad signature, HS512, alg none, expired, nbf in the future, wrong scope, right scope", async (route) => {
    const channel = uniqueChannel(`auth-${route === "long-poll" ? "poll" : route.toLowerCase()}`);
    const outcomes = {} as Record<TokenKind, string>;
    for (const kind of TOKEN_KINDS) outcomes[kind] = await attempt(route, channel, await tokenOf(kind, channel));
    expect(outcomes).toEqual(EXPECTED);
  });

  it.each(["header", "query", "cookie"] as const)("a token in the %s works on every route", async (source) => {
    const channel = uniqueChannel(`auth-${source}`);
    const token = await mint({ publish: [channel], subscribe: [channel] });
    const outcomes: Record<string, string> = {};
    for (const route of ROUTES) outcomes[route] = await attempt(route, channel, token, source);
    expect(outcomes).toEqual(Object.fromEntries(ROUTES.map((r) => [r, "ok"])));
  });

  it("/v1/ws: an invalid token is refused at the upgrade; without one, or with the wrong scope, each subscribe is refused by frame", async () => {
    const channel = uniqueChannel("auth-mux");
    const ws = relay.url.replace(/^http/, "ws");
    const outcomes = {} as Record<TokenKind, string>;
    for (const kind of TOKEN_KINDS) {
      const carried = carry(`${ws}/v1/ws`, await tokenOf(kind, channel), "query");
      const sock = await Sock.open(carried.url, { headers: carried.headers });
      if ("refused" in sock) {
        outcomes[kind] = `upgrade ${outcome(sock.status, sock.type, sock.body, 101)}`;
        continue;
      }
      try {
        const answer = await sock.request(
          { type: "subscribe", channel, ref: "s" },
          (f) => (f.type === "error" && f.ref === "s") || (f.type === "subscribed" && f.channel === channel),
          `an answer to subscribe (${kind})`,
        );
        outcomes[kind] = answer.type === "subscribed" ? "subscribed" : `frame ${(answer.error as { code: string }).code}`;
      } finally {
        await sock.close();
      }
    }
    expect(outcomes).toEqual({
      none: "frame unauthorized",
      "bad signature": "upgrade 401 unauthorized",
      "wrong algorithm": "upgrade 401 unauthorized",
      "alg none": "upgrade 401 unauthorized",
      expired: "upgrade 401 unauthorized",
      "nbf in future": "upgrade 401 unauthorized",
      "wrong scope": "frame forbidden",
      "right scope": "subscribed",
    });
  });

  it("a malformed Authorization header wins over a good query token: 401", async () => {
    const channel = uniqueChannel("auth-precedence");
    const good = await mint({ publish: [channel], subscribe: [channel] });
    const res = await fetchAnswer(`${relay.url}/v1/channels/${channel}/messages?token=${good}`, { headers: { Authorization: "Bearer not.a.token" } });
    expect(outcome(res.status, res.headers.get("Content-Type") ?? "", res.text, 200)).toBe("401 unauthorized");
    expect(await attempt("history", channel, good, "query")).toBe("ok");
  });

  it("a public channel subscribes without a token on every subscribing route; publishing there still needs the right", async () => {
    const channel = uniqueChannel("public.feed");
    const outcomes: Record<string, string> = {};
    for (const route of ROUTES) outcomes[route] = await attempt(route, channel, undefined);
    expect(outcomes).toEqual({ publish: "401 unauthorized", SSE: "ok", WebSocket: "ok", "long-poll": "ok", history: "ok" });
    // Any valid token may subscribe there, but an invalid one is refused, public or not.
    const other = await mint({ subscribe: ["other-*"] });
    expect(await attempt("history", channel, other)).toBe("ok");
    expect(await attempt("publish", channel, other)).toBe("403 forbidden");
    expect(await attempt("WebSocket", channel, await tokenOf("bad signature", channel))).toBe("401 unauthorized");
  });

  it("a CORS preflight from the listed origin is answered 204 with Access-Control-Allow-Origin; a foreign one gets no allow header", async () => {
    const preflight = (origin: string) =>
      fetchAnswer(`${relay.url}/v1/channels/${uniqueChannel("cors")}/messages`, {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, idempotency-key" },
      });
    const listed = await preflight(APP_ORIGIN);
    expect(listed.status).toBe(204);
    expect(listed.headers.get("Access-Control-Allow-Origin")).toBe(APP_ORIGIN);
    expect(listed.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(listed.headers.get("Access-Control-Allow-Methods") ?? "").toMatch(/POST/);
    expect((listed.headers.get("Access-Control-Allow-Headers") ?? "").toLowerCase()).toMatch(/authorization/);
    const foreign = await preflight(FOREIGN_ORIGIN);
    expect(foreign.headers.get("Access-Control-Allow-Origin")).toBeNull();

    // A simple request from the listed origin: echoed, with Vary: Origin.
    const channel = uniqueChannel("public.cors");
    const simple = await fetchAnswer(`${relay.url}/v1/channels/${channel}/messages`, { headers: { Origin: APP_ORIGIN } });
    expect(simple.status).toBe(200);
    expect(simple.headers.get("Access-Control-Allow-Origin")).toBe(APP_ORIGIN);
    expect(simple.headers.get("Vary") ?? "").toMatch(/Origin/i);
  });

  it("a WebSocket upgrade from a foreign Origin is refused 403 on both kinds of socket, even with a good token; listed and own origins connect", async () => {
    const channel = uniqueChannel("auth-origin");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    const ws = relay.url.replace(/^http/, "ws");
    for (const path of [`/v1/channels/${channel}/ws`, "/v1/ws"]) {
      for (const [origin, expected] of [
        [FOREIGN_ORIGIN, "403 forbidden"],
        ["null", "403 forbidden"],
        [APP_ORIGIN, "ok"],
        [relay.url, "ok"],
      ] as const) {
        for (const source of ["query", "cookie"] as const) {
          const carried = carry(`${ws}${path}`, token, source);
          const sock = await Sock.open(carried.url, { headers: carried.headers, origin });
          const got = "refused" in sock ? outcome(sock.status, sock.type, sock.body, 101) : "ok";
          if (!("refused" in sock)) await sock.close();
          expect(got, `${path} from ${origin}, token in the ${source}`).toBe(expected);
        }
      }
    }
  });

  it("the relay is healthy afterwards", async () => {
    const res = await fetchAnswer(`${relay.url}/healthz`);
    expect(res.status).toBe(200);
  });
});
