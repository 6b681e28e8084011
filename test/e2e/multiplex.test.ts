import type { Socket } from "node:net";
import { EventSource, type FetchLike, type FetchLikeResponse } from "eventsource";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import {
  Collector,
  channelUrl,
  closeAll,
  type Envelope,
  type Frame,
  type HttpResult,
  history,
  idRange,
  openWs,
  openWsAt,
  publishOk,
  request,
  uniqueChannel,
  type WsSubscriber,
  withTimeout,
} from "../support/clients";
import { type Relay, sleep, startRelay } from "../support/relay";

/**
 * Every way past the single-channel socket, end to end against `wrangler dev` with real `ws` and
 * `eventsource` clients: the multi-channel WebSocket (`/v1/ws`), the multi-channel SSE stream
 * (`/v1/events`) across a kill -9, long-poll, batch publish, presence, and the bad input of each.
 */

/** Not the default (65536), so the batch size rule is seen to follow the var. */
const MAX_MESSAGE_BYTES = 2048;

/** Shared by every test that does not kill its relay. */
let relay: Relay;
/** Killed with SIGKILL by the multi-channel SSE test, then `restarted` on its port and state. */
let crashRelay: Relay;
let restarted: Relay | undefined;
const clients: Array<{ close(): unknown }> = [];

beforeAll(async () => {
  [relay, crashRelay] = await Promise.all([startRelay({ vars: { MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) } }), startRelay()]);
});

afterAll(async () => {
  await closeAll(clients);
  await Promise.all([relay?.stop(), crashRelay?.stop(), restarted?.stop()]);
});

// ---------------------------------------------------------------------------------------------
// Clients this file needs beyond test/support/clients.ts

/** A `/v1/ws` socket: no greeting to wait for, every frame parsed and kept in order. */
interface MuxClient {
  ws: WebSocket;
  frames: Collector<Frame>;
  /** The TCP socket under the WebSocket, to drop the connection without a close frame. */
  tcp: Socket;
  send(frame: object | string): void;
  /** Frames of one type (and channel, when given), in order. */
  of(type: string, channel?: string): Frame[];
  messages(channel?: string): Envelope[];
  waitFor(predicate: (frames: readonly Frame[]) => boolean, timeoutMs?: number, what?: string): Promise<readonly Frame[]>;
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

async function openMux(url: string, timeoutMs = 10_000): Promise<MuxClient> {
  const socket = await openWsAt(`${url.replace(/^http/, "ws")}/v1/ws`, timeoutMs);
  const of = (type: string, channel?: string): Frame[] =>
    socket.frames.items.filter((f) => f.type === type && (channel === undefined || f.channel === channel));
  const client: MuxClient = {
    ws: socket.ws,
    frames: socket.frames,
    tcp: socket.tcp,
    send: socket.send,
    of,
    messages: (channel) => of("message", channel) as unknown as Envelope[],
    waitFor: socket.waitFor,
    closed: socket.closed,
    close: socket.close,
  };
  clients.push(client);
  return client;
}

interface MuxSseEvent {
  /** The event's `id:` (a cursor such as `a=3,b=1`), "" when it had none. */
  id: string;
  event: string;
  data: string;
}

/** A `/v1/events` stream read by the `eventsource` package, which reconnects by itself. */
interface MuxSse {
  es: EventSource;
  events: Collector<MuxSseEvent>;
  /** Every `id:` line the relay wrote, id-only events included (EventSource dispatches none for those). */
  idLines: Collector<string>;
  /** Each request the client made: the `Last-Event-ID` it carried, and the status or the failure. */
  requests: Array<{ lastEventId: string | null; status?: number; failed?: string }>;
  opens: Collector<number>;
  /** From now on, what the current response carries is lost before the client parses it (bytes in flight in a crash). */
  freeze(): void;
  /** While offline, the client's requests fail as if the relay could not be reached. */
  setOffline(offline: boolean): void;
  envelopes(channel?: string): Envelope[];
  close(): void;
}

async function openMuxSse(url: string, channels: string[], options: { retryMs?: number; query?: string; lastEventId?: string } = {}): Promise<MuxSse> {
  const target = new URL(`${url}/v1/events`);
  for (const channel of channels) target.searchParams.append("channel", channel);
  const events = new Collector<MuxSseEvent>();
  const idLines = new Collector<string>();
  const opens = new Collector<number>();
  const requests: MuxSse["requests"] = [];
  let offline = false;
  let current: { frozen: boolean } | undefined;

  const customFetch: FetchLike = async (input, init) => {
    const headers: Record<string, string> = { ...init.headers };
    if (headers["Last-Event-ID"] === undefined && options.lastEventId !== undefined) headers["Last-Event-ID"] = options.lastEventId;
    const record: MuxSse["requests"][number] = { lastEventId: headers["Last-Event-ID"] ?? null };
    requests.push(record);
    if (offline) {
      record.failed = "offline";
      throw new TypeError("fetch failed (the test keeps this client offline)");
    }
    const response = await fetch(input, { ...init, headers });
    record.status = response.status;
    const state = { frozen: false };
    current = state;
    const wrapped: FetchLikeResponse = {
      status: response.status,
      url: response.url,
      redirected: response.redirected,
      headers: response.headers,
      body: response.body ? passThrough(response.body, state, options.retryMs, (line) => idLines.push(line)) : null,
    };
    return wrapped;
  };

  const es = new EventSource(target, { fetch: customFetch });
  for (const name of ["message", "relay.gap", "relay.join", "relay.leave"]) {
    es.addEventListener(name, (event: MessageEvent) => events.push({ id: event.lastEventId, event: name, data: String(event.data) }));
  }
  es.addEventListener("open", () => opens.push(Date.now()));
  es.addEventListener("error", () => events.poke());

  const client: MuxSse = {
    es,
    events,
    idLines,
    requests,
    opens,
    freeze: () => {
      if (current) current.frozen = true;
    },
    setOffline: (value) => {
      offline = value;
    },
    envelopes: (channel) =>
      events.items
        .filter((e) => e.event !== "relay.gap" && e.event !== "relay.join" && e.event !== "relay.leave")
        .map((e) => JSON.parse(e.data) as Envelope)
        .filter((m) => channel === undefined || m.channel === channel),
    close: () => es.close(),
  };
  clients.push(client);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      es.addEventListener("open", () => resolve(), { once: true });
      es.addEventListener("error", (event) => {
        if (es.readyState === es.CLOSED) reject(new Error(`SSE ${target.href} failed: ${(event as { message?: string }).message ?? "error"}`));
      });
    }),
    10_000,
    `SSE open ${target.href}`,
  );
  // The id-only first event says every room has answered: from here on nothing published is missed.
  await idLines.waitFor((lines) => lines.length >= 1, 10_000, "the stream's starting cursor");
  return client;
}

/**
 * Passes an SSE body through line by line: records `id:` lines, shortens `retry:`, and drops
 * everything once `state.frozen` is set (the response still ends when the server goes away).
 */
function passThrough(
  body: ReadableStream<Uint8Array>,
  state: { frozen: boolean },
  retryMs: number | undefined,
  onId: (id: string) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = "";
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          if (pending && !state.frozen) controller.enqueue(encoder.encode(pending));
          controller.close();
          return;
        }
        if (state.frozen) continue;
        let text = pending + decoder.decode(value, { stream: true });
        const complete = text.lastIndexOf("\n") + 1;
        pending = text.slice(complete);
        text = text.slice(0, complete);
        if (retryMs !== undefined) text = text.replace(/^retry:.*$/gm, `retry: ${retryMs}`);
        for (const match of text.matchAll(/^id: ?(.*)$/gm)) onId(match[1] ?? "");
        if (text) {
          controller.enqueue(encoder.encode(text));
          return;
        }
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** A GET that must be refused: resolves with status and JSON body, never hangs on a stream it did not expect. */
async function refusedGet(url: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    await response.body?.cancel();
    return { status: response.status, headers: response.headers, body: "(an event stream)" };
  }
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Kept as text; the assertion shows it.
  }
  return { status: response.status, headers: response.headers, body };
}

function expectJsonError(result: HttpResult, status: number, code: string, what = ""): void {
  expect(result.status, `${what} ${JSON.stringify(result.body)}`).toBe(status);
  expect(result.headers.get("content-type") ?? "", what).toMatch(/^application\/json/);
  expect(result.body, what).toMatchObject({ error: { code, message: expect.any(String) } });
}

function poll(url: string, channel: string, query: string, timeoutMs = 10_000): Promise<HttpResult> {
  return request(`${channelUrl(url, channel, "poll")}?${query}`, {}, timeoutMs);
}

async function channelInfo(url: string, channel: string): Promise<{ lastId: string; subscribers: { ws: number; sse: number; poll: number } }> {
  const result = await request(channelUrl(url, channel));
  expect(result.status).toBe(200);
  return result.body;
}

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
  return Date.now() - start;
}

function batch(url: string, body: unknown): Promise<HttpResult> {
  return request(`${url}/v1/publish`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }, 20_000);
}

/** What every message published in this file carries, so cross-talk shows in the data too. */
function payload(channel: string, n: number): string {
  return `${channel}#${n}`;
}

// ---------------------------------------------------------------------------------------------

describe("one /v1/ws socket over 50 channels", () => {
  const COUNT = 50;
  const PRE = 3;
  const ROUNDS = 4;
  const channels = Array.from({ length: COUNT }, (_, i) => uniqueChannel(`mux${i}`));
  const outsider = uniqueChannel("mux-outsider");
  /** Even channels resume from their own since ("0".."3"; "3" is the last id: nothing to replay); odd ones start live. */
  const sinceOf = (i: number): string | undefined => (i % 2 === 0 ? String((i / 2) % (PRE + 1)) : undefined);
  const unsubscribed = channels.slice(0, 10);
  const kept = channels.slice(10);
  let mux: MuxClient;

  it(`subscribes to ${COUNT} channels with subscribe frames; interleaved publishes arrive per channel in order, from each since, with no cross-talk`, async () => {
    await Promise.all(
      channels.map(async (channel) => {
        for (let n = 1; n <= PRE; n++) await publishOk(relay.url, channel, payload(channel, n));
      }),
    );
    for (let n = 1; n <= PRE; n++) await publishOk(relay.url, outsider, payload(outsider, n));

    mux = await openMux(relay.url);
    channels.forEach((channel, i) => {
      const since = sinceOf(i);
      mux.send({ type: "subscribe", channel, ref: `s${i}`, ...(since !== undefined && { since }) });
    });
    await mux.waitFor((all) => all.filter((f) => f.type === "subscribed").length === COUNT, 20_000, `${COUNT} subscribed frames`);
    expect(mux.of("error")).toEqual([]);
    for (const channel of channels) {
      const greetings = mux.of("subscribed", channel);
      expect(greetings, channel).toHaveLength(1);
      expect(greetings[0]).toMatchObject({ type: "subscribed", channel, lastId: String(PRE) });
      expect(greetings[0]).not.toHaveProperty("ref");
    }

    // Every channel's publisher and the outsider's run at once; each channel's own publishes stay in order.
    const last = PRE + ROUNDS;
    await Promise.all(
      [...channels, outsider].map(async (channel) => {
        for (let n = PRE + 1; n <= last; n++) expect(await publishOk(relay.url, channel, payload(channel, n), { timeoutMs: 20_000 })).toBe(String(n));
      }),
    );
    await mux.waitFor(() => channels.every((c) => mux.messages(c).some((m) => m.id === String(last))), 20_000, `id ${last} on every channel`);
    await sleep(300);

    channels.forEach((channel, i) => {
      const from = Number(sinceOf(i) ?? PRE) + 1;
      const got = mux.messages(channel);
      expect(
        got.map((m) => m.id),
        channel,
      ).toEqual(idRange(from, last));
      expect(
        got.map((m) => m.data),
        channel,
      ).toEqual(idRange(from, last).map((n) => payload(channel, Number(n))));
      for (const m of got) expect(m).toMatchObject({ type: "message", channel, event: "message", ts: expect.any(Number) });
      // The greeting comes before the channel's first message.
      const greetingAt = mux.frames.items.findIndex((f) => f.type === "subscribed" && f.channel === channel);
      const firstAt = mux.frames.items.findIndex((f) => f.type === "message" && f.channel === channel);
      expect(greetingAt, channel).toBeLessThan(firstAt);
    });
    expect(mux.messages(outsider)).toEqual([]);
    const known = new Set(channels);
    expect(mux.messages().filter((m) => !known.has(m.channel))).toEqual([]);
    expect(mux.of("error")).toEqual([]);
    expect(mux.frames.items.filter((f) => !["subscribed", "message"].includes(f.type))).toEqual([]);
  }, 60_000);

  it("unsubscribing from 10 channels stops their delivery while the other 40 continue", async () => {
    const next = PRE + ROUNDS + 1;
    for (const [i, channel] of unsubscribed.entries()) mux.send({ type: "unsubscribe", channel, ref: `u${i}` });
    await mux.waitFor((all) => all.filter((f) => f.type === "unsubscribed").length === unsubscribed.length, 10_000, "10 unsubscribed frames");
    for (const channel of unsubscribed) {
      const frames = mux.of("unsubscribed", channel);
      expect(frames).toHaveLength(1);
      expect(frames[0]).toEqual({ type: "unsubscribed", channel });
    }
    const countsBefore = new Map(unsubscribed.map((c) => [c, mux.messages(c).length]));

    await Promise.all(channels.map(async (channel) => expect(await publishOk(relay.url, channel, payload(channel, next))).toBe(String(next))));
    await mux.waitFor(() => kept.every((c) => mux.messages(c).some((m) => m.id === String(next))), 15_000, `id ${next} on the 40 kept channels`);
    await sleep(300);

    for (const channel of unsubscribed) {
      expect(mux.messages(channel).length, channel).toBe(countsBefore.get(channel));
      const goneAt = mux.frames.items.findIndex((f) => f.type === "unsubscribed" && f.channel === channel);
      expect(
        mux.frames.items.slice(goneAt).filter((f) => f.channel === channel && f.type === "message"),
        channel,
      ).toEqual([]);
      // Stored all the same, and the room no longer counts this socket.
      expect((await history(relay.url, channel)).lastId).toBe(String(next));
    }
    for (const channel of kept) expect(mux.messages(channel).at(-1), channel).toMatchObject({ id: String(next), data: payload(channel, next) });
    await waitUntil(async () => (await channelInfo(relay.url, unsubscribed[0]!)).subscribers.ws === 0, 5_000, "the room to drop the unsubscribed link");
    expect((await channelInfo(relay.url, kept[0]!)).subscribers.ws).toBe(1);
    expect(mux.of("error")).toEqual([]);
  }, 30_000);

  it("publish frames to several channels, subscribed or not, are acknowledged in the order sent", async () => {
    const fresh = uniqueChannel("mux-fresh");
    const targets = [kept[0]!, kept[1]!, unsubscribed[0]!, fresh];
    const base = new Map<string, number>();
    for (const channel of targets) base.set(channel, Number((await channelInfo(relay.url, channel)).lastId));
    const ackedBefore = mux.of("ack").length;
    const sent = Array.from({ length: 12 }, (_, i) => ({ channel: targets[i % targets.length]!, ref: `p${i}`, data: `frame ${i}` }));
    for (const { channel, ref, data } of sent) mux.send({ type: "publish", channel, data, ref });
    await mux.waitFor((all) => all.filter((f) => f.type === "ack").length >= ackedBefore + sent.length, 10_000, "12 acks");

    const acks = mux.of("ack").slice(ackedBefore);
    expect(acks.map((a) => a.ref)).toEqual(sent.map((s) => s.ref));
    const nextId = new Map(base);
    const expectedIds = sent.map(({ channel }) => {
      const id = (nextId.get(channel) ?? 0) + 1;
      nextId.set(channel, id);
      return String(id);
    });
    expect(acks.map((a) => a.id)).toEqual(expectedIds);
    expect(mux.of("error")).toEqual([]);

    for (const channel of targets) {
      const stored = (await history(relay.url, channel, base.get(channel))).messages;
      expect(
        stored.map((m) => m.data),
        channel,
      ).toEqual(sent.filter((s) => s.channel === channel).map((s) => s.data));
    }
    // Own envelopes come back on the subscribed channels only.
    await mux.waitFor(() => [kept[0]!, kept[1]!].every((c) => mux.messages(c).some((m) => m.id === String(nextId.get(c)))), 10_000, "own envelopes");
    await sleep(200);
    for (const channel of [kept[0]!, kept[1]!]) {
      const own = mux.messages(channel).filter((m) => Number(m.id) > base.get(channel)!);
      expect(own.map((m) => m.data)).toEqual(sent.filter((s) => s.channel === channel).map((s) => s.data));
    }
    expect(mux.messages(unsubscribed[0]!).filter((m) => Number(m.id) > base.get(unsubscribed[0]!)!)).toEqual([]);
    expect(mux.messages(fresh)).toEqual([]);
    await mux.close();
  }, 30_000);
});

describe("one multi-channel SSE stream across a kill -9 of the relay", () => {
  it("the eventsource client's own reconnect with Last-Event-ID delivers everything missed on all three channels, once", async () => {
    const channels = ["a", "b", "c"].map((name) => uniqueChannel(`msse-${name}`));
    const sse = await openMuxSse(crashRelay.url, channels, { retryMs: 200 });
    const start = channels.map((c) => `${c}=0`).join(",");
    expect(sse.idLines.items[0]).toBe(start);

    /** Publishes round `n` to every channel (ids equal `n`: the channels are new). */
    const round = async (url: string, n: number): Promise<void> => {
      for (const channel of channels) expect(await publishOk(url, channel, payload(channel, n))).toBe(String(n));
    };

    // 1. Seen live.
    for (let n = 1; n <= 3; n++) await round(crashRelay.url, n);
    await sse.events.waitFor((all) => all.length === 9, 10_000, "9 live events");
    const seenCursor = sse.events.items.at(-1)!.id;
    expect(seenCursor).toBe(channels.map((c) => `${c}=3`).join(","));

    // 2. Stored before the crash, but lost on the way to the client.
    sse.freeze();
    sse.setOffline(true);
    for (let n = 4; n <= 5; n++) await round(crashRelay.url, n);
    await crashRelay.kill9();
    await sse.events.waitFor(() => sse.requests.some((r) => r.failed), 10_000, "the client to notice and retry on its own");

    // 3. A new relay on the same port and state; more is stored before the client gets back.
    restarted = await startRelay({ port: crashRelay.port, persistTo: crashRelay.persistTo });
    for (let n = 6; n <= 7; n++) await round(restarted.url, n);
    sse.setOffline(false);
    await sse.opens.waitFor((all) => all.length >= 2, 10_000, "the client's reconnect");

    // 4. Live again after the reconnect.
    await sse.events.waitFor((all) => all.length >= 21, 15_000, "the 12 missed messages");
    await round(restarted.url, 8);
    await sse.events.waitFor((all) => all.length >= 24, 10_000, "24 events");
    await sleep(300);

    for (const channel of channels) {
      const got = sse.envelopes(channel);
      expect(
        got.map((m) => m.id),
        channel,
      ).toEqual(idRange(1, 8));
      expect(
        got.map((m) => m.data),
        channel,
      ).toEqual(idRange(1, 8).map((n) => payload(channel, Number(n))));
      const stored = await history(restarted.url, channel);
      expect(
        stored.messages.map((m) => m.data),
        channel,
      ).toEqual(got.map((m) => m.data));
    }
    expect(sse.events.items).toHaveLength(24);
    expect(sse.events.items.filter((e) => e.event !== "message")).toEqual([]);
    // Each event id is the cursor over all three channels, moved on for this event's channel.
    const position = new Map(channels.map((c) => [c, 0]));
    for (const event of sse.events.items) {
      const m = JSON.parse(event.data) as Envelope;
      position.set(m.channel, Number(m.id));
      expect(event.id).toBe(channels.map((c) => `${c}=${position.get(c)}`).join(","));
    }
    expect(sse.events.items.at(-1)!.id).toBe(channels.map((c) => `${c}=8`).join(","));

    // The reconnect that got through carried the last cursor the client had seen, and the stream restarted there.
    const answered = sse.requests.filter((r) => r.status !== undefined);
    expect(answered.map((r) => r.status)).toEqual([200, 200]);
    expect(answered[0]!.lastEventId).toBeNull();
    expect(answered[1]!.lastEventId).toBe(seenCursor);
    expect(sse.requests.filter((r) => r.failed).every((r) => r.lastEventId === seenCursor)).toBe(true);
    expect(sse.idLines.items).toContain(seenCursor);
    expect(sse.es.readyState).toBe(sse.es.OPEN);
    sse.close();
  }, 60_000);
});

describe("long-poll", () => {
  it("100 concurrent long-polls (since = last id, timeout=30) are all answered by one publish, with that message", async () => {
    const channel = uniqueChannel("lp-many");
    for (let n = 1; n <= 2; n++) await publishOk(relay.url, channel, payload(channel, n));
    const polls = Array.from({ length: 100 }, () => poll(relay.url, channel, "since=2&timeout=30", 25_000));
    const waited = await waitUntil(async () => (await channelInfo(relay.url, channel)).subscribers.poll === 100, 15_000, "100 waiting polls");
    expect(waited).toBeLessThan(15_000);
    const publishedAt = Date.now();
    expect(await publishOk(relay.url, channel, payload(channel, 3))).toBe("3");
    const answers = await Promise.all(polls);
    const elapsed = Date.now() - publishedAt;
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ lastId: "3", messages: [{ type: "message", channel, id: "3", event: "message", data: payload(channel, 3) }] });
      expect(answer.body.messages).toHaveLength(1);
    }
    expect(elapsed).toBeLessThan(10_000);
    await waitUntil(async () => (await channelInfo(relay.url, channel)).subscribers.poll === 0, 5_000, "no poll left waiting");
  }, 40_000);

  it("timeout=1 answers {messages:[], lastId} after about a second", async () => {
    const channel = uniqueChannel("lp-timeout");
    for (let n = 1; n <= 2; n++) await publishOk(relay.url, channel, payload(channel, n));
    const started = Date.now();
    const answer = await poll(relay.url, channel, "since=2&timeout=1");
    const elapsed = Date.now() - started;
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ messages: [], lastId: "2" });
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(4_000);
  });

  it("a since behind the last id answers at once with what was missed", async () => {
    const channel = uniqueChannel("lp-behind");
    for (let n = 1; n <= 4; n++) await publishOk(relay.url, channel, payload(channel, n));
    const started = Date.now();
    const answer = await poll(relay.url, channel, "since=1&timeout=30");
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(answer.status).toBe(200);
    expect(answer.body.lastId).toBe("4");
    expect(answer.body.messages.map((m: Envelope) => [m.id, m.data])).toEqual(idRange(2, 4).map((n) => [n, payload(channel, Number(n))]));
    expect(answer.body).not.toHaveProperty("gap");
  });
});

describe("batch publish", () => {
  it("answers one result per entry, in order, and stores only the valid entries", async () => {
    const [a, b, c] = ["a", "b", "c"].map((name) => uniqueChannel(`batch-${name}`)) as [string, string, string];
    const watcher = await openMux(relay.url);
    for (const channel of [a, b, c]) watcher.send({ type: "subscribe", channel });
    await watcher.waitFor((all) => all.filter((f) => f.type === "subscribed").length === 3, 10_000, "3 subscribed");

    const atLimit = "x".repeat(MAX_MESSAGE_BYTES);
    const entries: unknown[] = [
      { channel: a, data: "a1" },
      { channel: "bad/name", data: "x" },
      { channel: b, data: "y".repeat(MAX_MESSAGE_BYTES + 1) },
      { channel: b, data: 42 },
      { channel: b, data: "reserved", event: "relay.join" },
      { channel: a, data: "a2", event: "update" },
      { channel: b, data: "é".repeat(MAX_MESSAGE_BYTES / 2 + 1) }, // fewer characters than the limit, more UTF-8 bytes
      { channel: b, data: atLimit },
      { data: "no channel" },
      "not an object",
      null,
      { channel: "", data: "empty name" },
      { channel: c, data: null },
      { channel: a, data: "a3" },
      { channel: c, data: "empty event", event: "" },
      { channel: "_underscore", data: "x" },
      { channel: c, data: { nested: true } },
    ];
    const expected: Array<[unknown, string]> = [
      [a, "id:1"],
      ["bad/name", "invalid_channel"],
      [b, "message_too_large"],
      [b, "invalid_request"],
      [b, "invalid_event"],
      [a, "id:2"],
      [b, "message_too_large"],
      [b, "id:1"],
      [undefined, "invalid_channel"],
      [undefined, "invalid_channel"],
      [undefined, "invalid_channel"],
      ["", "invalid_channel"],
      [c, "invalid_request"],
      [a, "id:3"],
      [c, "invalid_event"],
      ["_underscore", "invalid_channel"],
      [c, "invalid_request"],
    ];
    const result = await batch(relay.url, { messages: entries });
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const results = result.body.results as Array<{ channel?: unknown; id?: string; error?: { code: string; message: string } }>;
    expect(results).toHaveLength(entries.length);
    const got = results.map((r) => [r.channel, r.id !== undefined ? `id:${r.id}` : r.error?.code]);
    expect(got).toEqual(expected);
    for (const r of results) if (r.error) expect(r.error.message.length, JSON.stringify(r)).toBeGreaterThan(10);

    const [storedA, storedB, storedC] = await Promise.all([a, b, c].map((channel) => history(relay.url, channel)));
    expect(storedA!.messages.map((m) => [m.id, m.event, m.data])).toEqual([
      ["1", "message", "a1"],
      ["2", "update", "a2"],
      ["3", "message", "a3"],
    ]);
    expect(storedB!.messages.map((m) => m.data)).toEqual([atLimit]);
    expect(storedC).toMatchObject({ messages: [], lastId: "0" });

    // Subscribers get exactly what was stored.
    await watcher.waitFor(() => watcher.messages(a).length === 3 && watcher.messages(b).length === 1, 10_000, "the stored entries");
    await sleep(200);
    expect(watcher.messages(a).map((m) => m.data)).toEqual(["a1", "a2", "a3"]);
    expect(watcher.messages(b).map((m) => m.data)).toEqual([atLimit]);
    expect(watcher.messages(c)).toEqual([]);
    await watcher.close();
  });

  it("a batch of 101 entries is 400 and stores nothing; 100 is accepted", async () => {
    const targets = ["p", "q", "r"].map((name) => uniqueChannel(`batch101-${name}`));
    const entries = (count: number): unknown[] => Array.from({ length: count }, (_, i) => ({ channel: targets[i % targets.length], data: `m${i}` }));
    const refused = await batch(relay.url, { messages: entries(101) });
    expectJsonError(refused, 400, "invalid_request", "batch of 101");
    for (const channel of targets) expect((await channelInfo(relay.url, channel)).lastId, channel).toBe("0");

    const accepted = await batch(relay.url, { messages: entries(100) });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    const results = accepted.body.results as Array<{ channel: string; id: string }>;
    expect(results).toHaveLength(100);
    // Per channel, in the order listed.
    targets.forEach((channel, t) => {
      const mine = results.filter((_, i) => i % targets.length === t);
      expect(mine.map((r) => r.channel)).toEqual(mine.map(() => channel));
      expect(mine.map((r) => r.id)).toEqual(idRange(1, mine.length));
    });
  });
});

describe("presence", () => {
  interface Member {
    id: string;
    transport: string;
    since: number;
  }
  const presenceOf = async (channel: string): Promise<{ subscribers: Member[]; counts: Record<string, number> }> => {
    const result = await request(channelUrl(relay.url, channel, "presence"));
    expect(result.status).toBe(200);
    return result.body;
  };
  const events = (watcher: WsSubscriber): Array<{ type: string; subscriber: Member }> =>
    watcher.frames.items.filter((f) => f.type === "join" || f.type === "leave") as unknown as Array<{ type: string; subscriber: Member }>;

  let channel: string;
  let watcher: WsSubscriber;

  beforeAll(async () => {
    channel = uniqueChannel("presence");
    watcher = await openWs(relay.url, channel, { query: { presence: "1" } });
    clients.push(watcher);
  });

  it("a watcher with ?presence=1 sees a visitor's join, then its leave", async () => {
    const visitor = await openWs(relay.url, channel);
    clients.push(visitor);
    await watcher.waitFor(() => events(watcher).length >= 1, 10_000, "the visitor's join");
    const listed = await presenceOf(channel);
    expect(listed.subscribers).toHaveLength(2);
    await visitor.close();
    await watcher.waitFor(() => events(watcher).length >= 2, 10_000, "the visitor's leave");
    await sleep(200);

    const [join, leave] = events(watcher);
    expect(events(watcher)).toHaveLength(2);
    expect(join).toMatchObject({ type: "join", channel, subscriber: { transport: "ws", id: expect.any(String), since: expect.any(Number) } });
    expect(leave).toMatchObject({ type: "leave", channel, subscriber: join!.subscriber });
    expect(listed.subscribers.map((s) => s.id)).toContain(join!.subscriber.id);
    // Not told of its own join.
    const own = listed.subscribers.find((s) => s.id !== join!.subscriber.id)!;
    expect(events(watcher).some((e) => e.subscriber.id === own.id)).toBe(false);
    expect((await presenceOf(channel)).subscribers.map((s) => s.id)).toEqual([own.id]);
  });

  it("a channel-socket visitor that vanishes without a close frame (terminate) leaves the list, and the watcher gets its leave", async () => {
    const visitor = await openWs(relay.url, channel);
    clients.push(visitor);
    await watcher.waitFor(() => events(watcher).length >= 3, 10_000, "the join");
    const joined = events(watcher)[2]!;
    expect(joined.type).toBe("join");
    expect((await presenceOf(channel)).subscribers.map((s) => s.id)).toContain(joined.subscriber.id);

    visitor.ws.terminate();
    const gone = await waitUntil(
      async () => !(await presenceOf(channel)).subscribers.some((s) => s.id === joined.subscriber.id),
      20_000,
      "the vanished visitor to leave the list",
    );
    await watcher.waitFor(() => events(watcher).length >= 4, 10_000, "the leave");
    expect(events(watcher)[3]).toMatchObject({ type: "leave", channel, subscriber: joined.subscriber });
    const after = await presenceOf(channel);
    expect(after.subscribers).toHaveLength(1);
    expect(after.counts).toMatchObject({ ws: 1, sse: 0 });
    expect(gone).toBeLessThan(20_000);
  }, 40_000);

  it("a /v1/ws visitor whose TCP socket is destroyed leaves the list too, and the watcher gets its leave", async () => {
    const visitor = await openMux(relay.url);
    visitor.send({ type: "subscribe", channel, ref: "v" });
    await visitor.waitFor((all) => all.some((f) => f.type === "subscribed"), 10_000, "subscribed");
    await watcher.waitFor(() => events(watcher).length >= 5, 10_000, "the join");
    const joined = events(watcher)[4]!;
    expect(joined).toMatchObject({ type: "join", channel, subscriber: { transport: "ws" } });
    expect((await presenceOf(channel)).subscribers.map((s) => s.id)).toContain(joined.subscriber.id);

    visitor.tcp.destroy();
    await waitUntil(
      async () => !(await presenceOf(channel)).subscribers.some((s) => s.id === joined.subscriber.id),
      20_000,
      "the vanished /v1/ws visitor to leave the list",
    );
    await watcher.waitFor(() => events(watcher).length >= 6, 10_000, "the leave");
    expect(events(watcher)[5]).toMatchObject({ type: "leave", channel, subscriber: joined.subscriber });
    expect((await presenceOf(channel)).subscribers).toHaveLength(1);
  }, 40_000);
});

describe("bad input over the real server", () => {
  it("/v1/ws: invalid channels, duplicate subscribes, unknown unsubscribes and bad since get error frames with their ref; the socket keeps working", async () => {
    const good = uniqueChannel("bad-ws-good");
    const racing = uniqueChannel("bad-ws-racing");
    const mux = await openMux(relay.url);
    mux.send({ type: "subscribe", channel: good, ref: "good" });
    await mux.waitFor((all) => all.some((f) => f.type === "subscribed"), 10_000, "subscribed");

    const bad: Array<[object, string]> = [
      [{ type: "subscribe", channel: "bad/name", ref: "slash" }, "invalid_channel"],
      [{ type: "subscribe", channel: "", ref: "empty" }, "invalid_channel"],
      [{ type: "subscribe", channel: "_under", ref: "underscore" }, "invalid_channel"],
      [{ type: "subscribe", channel: "a".repeat(129), ref: "long" }, "invalid_channel"],
      [{ type: "subscribe", channel: "a b", ref: "space" }, "invalid_channel"],
      [{ type: "subscribe", channel: 5, ref: "number" }, "invalid_channel"],
      [{ type: "subscribe", ref: "missing" }, "invalid_channel"],
      [{ type: "subscribe", channel: good, ref: "dup" }, "invalid_request"],
      [{ type: "unsubscribe", channel: uniqueChannel("never"), ref: "unknown" }, "invalid_request"],
      [{ type: "unsubscribe", channel: "bad/name", ref: "unsub-bad" }, "invalid_channel"],
      [{ type: "subscribe", channel: uniqueChannel("s"), since: 5, ref: "since-number" }, "invalid_request"],
      [{ type: "subscribe", channel: uniqueChannel("s"), since: "abc", ref: "since-abc" }, "invalid_request"],
      [{ type: "subscribe", channel: uniqueChannel("s"), since: "-1", ref: "since-negative" }, "invalid_request"],
      [{ type: "subscribe", channel: uniqueChannel("s"), since: "1e3", ref: "since-exponent" }, "invalid_request"],
      [{ type: "subscribe", channel: uniqueChannel("s"), presence: "yes", ref: "presence" }, "invalid_request"],
      [{ type: "publish", data: "no channel", ref: "pub-nochan" }, "invalid_channel"],
    ];
    for (const [frame] of bad) mux.send(frame);
    // Two subscribes back to back: the second comes while the first is still being set up.
    mux.send({ type: "subscribe", channel: racing, ref: "race1" });
    mux.send({ type: "subscribe", channel: racing, ref: "race2" });
    mux.send('{"type":"ping"}');
    await mux.waitFor(
      (all) => all.filter((f) => f.type === "error").length >= bad.length + 1 && all.some((f) => f.type === "subscribed" && f.channel === racing),
      10_000,
      "every error frame",
    );
    await mux.waitFor((all) => all.some((f) => f.type === "pong"), 5_000, "pong");
    await sleep(200);

    const errors = mux.of("error") as Array<Frame & { ref?: string; error: { code: string; message: string } }>;
    expect(errors.map((e) => [e.ref, e.error.code])).toEqual([
      ...bad.map(([frame, code]) => [(frame as { ref: string }).ref, code]),
      ["race2", "invalid_request"],
    ]);
    for (const e of errors) expect(e.error.message.length).toBeGreaterThan(10);
    expect(mux.of("subscribed").map((f) => f.channel)).toEqual([good, racing]);

    // Still one subscription each, not two: one publish, one delivery.
    await publishOk(relay.url, good, "once");
    await publishOk(relay.url, racing, "once");
    await mux.waitFor(() => mux.messages().length >= 2, 10_000, "the two messages");
    await sleep(300);
    expect(mux.messages().map((m) => [m.channel, m.data])).toEqual([
      [good, "once"],
      [racing, "once"],
    ]);
    expect((await channelInfo(relay.url, racing)).subscribers.ws).toBe(1);
    await mux.close();
  });

  it("/v1/events: a malformed cursor, or one naming a channel not in the stream, is 400 JSON (since and Last-Event-ID)", async () => {
    const [a, b] = [uniqueChannel("cur-a"), uniqueChannel("cur-b")];
    const stranger = uniqueChannel("cur-x");
    const base = `${relay.url}/v1/events?channel=${a}&channel=${b}`;
    const cursors = [
      "garbage",
      "5",
      `${a}=`,
      `${a}=x`,
      `${a}=-1`,
      `${a}=1.5`,
      `${a}=1e3`,
      `${a}=1,${a}=2`,
      `${a}=1,`,
      `=1`,
      `${a}=1;${b}=2`,
      `${a}=1 ,${b}=2`,
      `_bad=1`,
      `${a}=1,${stranger}=2`,
      `${stranger}=0`,
    ];
    for (const cursor of cursors) {
      expectJsonError(await refusedGet(`${base}&since=${encodeURIComponent(cursor)}`), 400, "invalid_request", `since=${cursor}`);
      expectJsonError(await refusedGet(base, { "Last-Event-ID": cursor }), 400, "invalid_request", `Last-Event-ID: ${cursor}`);
    }
    // The header wins over since: a good since does not save a bad header.
    expectJsonError(await refusedGet(`${base}&since=${a}=1`, { "Last-Event-ID": `${stranger}=1` }), 400, "invalid_request", "bad header, good since");
    // Bad channel lists.
    expectJsonError(await refusedGet(`${relay.url}/v1/events`), 400, "invalid_request", "no channel");
    expectJsonError(await refusedGet(`${relay.url}/v1/events?channel=${a}&channel=bad%2Fname`), 400, "invalid_channel", "bad channel");

    // An EventSource given a bad cursor gets the refusal and stops (no reconnect loop).
    await expect(openMuxSse(relay.url, [a, b], { lastEventId: `${stranger}=1` })).rejects.toThrow(/failed/);

    // A cursor that leaves a channel out is fine: that channel starts live.
    await publishOk(relay.url, a, payload(a, 1));
    await publishOk(relay.url, a, payload(a, 2));
    const sse = await openMuxSse(relay.url, [a, b], { lastEventId: `${a}=1` });
    expect(sse.idLines.items[0]).toBe(`${a}=1,${b}=0`);
    await sse.events.waitFor((all) => all.length >= 1, 10_000, "the replayed message");
    expect(sse.envelopes().map((m) => [m.channel, m.id])).toEqual([[a, "2"]]);
    sse.close();
  });

  it("long-poll: timeout -1 / abc is 400, timeout=0 answers at once, a huge timeout is held and answers on publish", async () => {
    const channel = uniqueChannel("lp-bad");
    await publishOk(relay.url, channel, payload(channel, 1));
    for (const query of ["timeout=-1", "timeout=abc", "timeout=1.5", "timeout=", "timeout=%201", "since=-1", "since=abc", "since=", "since=1e1"]) {
      expectJsonError(await poll(relay.url, channel, query), 400, "invalid_request", query);
    }

    let started = Date.now();
    let answer = await poll(relay.url, channel, "since=1&timeout=0");
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ messages: [], lastId: "1" });

    started = Date.now();
    answer = await poll(relay.url, channel, "since=0&timeout=0");
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(answer.body.messages.map((m: Envelope) => m.data)).toEqual([payload(channel, 1)]);
    expect(answer.body.lastId).toBe("1");

    // Clamped to 60 s rather than refused: it waits, and a publish answers it.
    let settled = false;
    const held = poll(relay.url, channel, "since=1&timeout=999999999", 20_000).finally(() => (settled = true));
    await waitUntil(async () => (await channelInfo(relay.url, channel)).subscribers.poll === 1, 10_000, "the held poll");
    await sleep(1_000);
    expect(settled).toBe(false);
    await publishOk(relay.url, channel, payload(channel, 2));
    answer = await held;
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ lastId: "2", messages: [{ id: "2", data: payload(channel, 2) }] });
  }, 30_000);
});
