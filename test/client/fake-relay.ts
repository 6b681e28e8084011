/**
 * A protocol-level fake of Edge Relay for the client's unit tests: it speaks API.md's frames
 * (multi-channel WebSocket, multi-channel SSE, long-poll, HTTP publish, channel info) from memory,
 * and can be made to misbehave on demand: drop connections at any point (also mid-frame), go
 * down, block WebSockets, buffer streams, expire tokens.
 */

import type { FetchLike, RequestInitLike, ResponseLike, WebSocketLike } from "../../src/client/platform";
import { formatCursor, parseCursor } from "../../src/protocol/cursor";
import type { Envelope } from "../../src/protocol/envelope";
import { encodeSSE } from "../../src/sse/encode";

interface Channel {
  lastSeq: number;
  messages: Envelope[];
  keys: Map<string, Envelope>;
}

type Listener = (event: never) => void;

export type WsBlock = false | "throw" | "refuse";

export class FakeRelay {
  readonly channels = new Map<string, Channel>();
  readonly sockets = new Set<FakeSocket>();
  readonly streams = new Set<FakeStream>();
  readonly polls = new Set<FakePoll>();
  /** Nothing answers: fetch rejects, sockets fail to open. */
  down = false;
  /** WebSockets blocked: the constructor throws, or the socket fails before opening. */
  wsBlocked: WsBlock = false;
  /** SSE responses arrive but their bodies never flow (a buffering proxy). */
  sseBuffered = false;
  /** Long-polls with nothing to answer are held this long. */
  pollHoldMs = 20;
  /** A token check: undefined accepts everything. */
  checkToken: ((token: string | undefined) => "ok" | "invalid") | undefined;
  /** Every request and socket URL seen, in order. */
  readonly log: string[] = [];
  /** Every publish the relay stored, in order: [channel, data]. */
  readonly stored: Array<[string, string]> = [];
  /** Connections dropped by `drop*()`. */
  disconnects = 0;
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  // ---- relay side -------------------------------------------------------------------------

  channel(name: string): Channel {
    let channel = this.channels.get(name);
    if (!channel) {
      channel = { lastSeq: 0, messages: [], keys: new Map() };
      this.channels.set(name, channel);
    }
    return channel;
  }

  /** Stores and broadcasts a message, as a room does. */
  publish(name: string, data: string, event = "message", key?: string): Envelope {
    const channel = this.channel(name);
    const repeat = key === undefined ? undefined : channel.keys.get(key);
    if (repeat) return repeat;
    const envelope: Envelope = { type: "message", channel: name, id: String(++channel.lastSeq), event, data, ts: Date.now() };
    channel.messages.push(envelope);
    if (key !== undefined) channel.keys.set(key, envelope);
    this.stored.push([name, data]);
    for (const socket of this.sockets) socket.broadcast(envelope);
    for (const stream of this.streams) stream.broadcast(envelope);
    for (const poll of this.polls) poll.broadcast(envelope);
    return envelope;
  }

  /**
   * Stores several messages of one channel and sends them as a room sends a burst: to a socket that
   * asked for batch frames, the first alone and the rest in one batch frame; to others one by one.
   */
  publishBurst(name: string, data: string[]): Envelope[] {
    const channel = this.channel(name);
    const envelopes = data.map((d): Envelope => ({ type: "message", channel: name, id: String(++channel.lastSeq), event: "message", data: d, ts: Date.now() }));
    channel.messages.push(...envelopes);
    for (const d of data) this.stored.push([name, d]);
    for (const socket of this.sockets) socket.broadcastBurst(envelopes);
    for (const envelope of envelopes) {
      for (const stream of this.streams) stream.broadcast(envelope);
      for (const poll of this.polls) poll.broadcast(envelope);
    }
    return envelopes;
  }

  /** Forgets every message with an id below `oldest` (the counter stays). */
  prune(name: string, oldest: number): void {
    const channel = this.channel(name);
    channel.messages = channel.messages.filter((m) => Number(m.id) >= oldest);
  }

  oldestSeq(name: string): number {
    const channel = this.channel(name);
    return channel.messages.length > 0 ? Number(channel.messages[0]!.id) : channel.lastSeq + 1;
  }

  /** What a subscriber resuming after `since` gets: a gap notice when some is gone, then the retained rest. */
  replay(name: string, since: number): { gap?: { after: string; oldest: string }; messages: Envelope[] } {
    const channel = this.channel(name);
    if (since >= channel.lastSeq) return { messages: [] };
    const oldest = this.oldestSeq(name);
    const messages = channel.messages.filter((m) => Number(m.id) > since);
    return oldest > since + 1 ? { gap: { after: String(since), oldest: String(oldest) }, messages } : { messages };
  }

  /** Drops every connection: sockets closed with `code`, streams and polls cut. */
  dropAll(code = 1006): number {
    let dropped = 0;
    for (const socket of [...this.sockets]) dropped += socket.kill(code) ? 1 : 0;
    for (const stream of [...this.streams]) dropped += stream.kill() ? 1 : 0;
    for (const poll of [...this.polls]) dropped += poll.kill() ? 1 : 0;
    this.disconnects += dropped;
    return dropped;
  }

  // ---- client side: the constructors and fetch the client is given ----------------------------

  readonly WebSocket = ((relay: FakeRelay) =>
    class implements WebSocketLike {
      readonly socket: FakeSocket;
      constructor(url: string) {
        relay.log.push(`WS ${url}`);
        if (relay.wsBlocked === "throw") throw new Error("WebSocket blocked by policy");
        this.socket = new FakeSocket(relay, url);
      }
      get readyState(): number {
        return this.socket.readyState;
      }
      send(data: string): void {
        this.socket.clientSend(data);
      }
      close(code?: number, reason?: string): void {
        this.socket.clientClose(code ?? 1005, reason ?? "");
      }
      addEventListener(type: string, listener: Listener): void {
        this.socket.listeners.push([type, listener]);
      }
    })(this);

  readonly fetch: FetchLike = async (url: string, init: RequestInitLike = {}): Promise<ResponseLike> => {
    const method = init.method ?? "GET";
    this.log.push(`${method} ${url}`);
    await tick();
    if (init.signal?.aborted) throw abortError();
    if (this.down) throw new TypeError("fetch failed: connection refused");
    const parsed = new URL(url);
    const path = parsed.pathname;
    const token = init.headers?.Authorization?.replace(/^Bearer /, "");
    if (path === "/healthz") return json(200, { ok: true });
    if (this.checkToken?.(token) === "invalid") return json(401, { error: { code: "unauthorized", message: "bad token" } });
    if (path === "/v1/events") return new FakeStream(this, parsed, init.signal).response;
    const match = /^\/v1\/channels\/([^/]+)(\/messages|\/poll)?$/.exec(path);
    if (!match) return json(404, { error: { code: "not_found", message: `No route for ${method} ${path}` } });
    const name = decodeURIComponent(match[1]!);
    if (name.startsWith("forbidden")) return json(403, { error: { code: "forbidden", message: "not yours" } });
    if (match[2] === "/messages" && method === "POST") {
      const event = parsed.searchParams.get("event") ?? "message";
      const envelope = this.publish(name, init.body ?? "", event, init.headers?.["Idempotency-Key"]);
      return json(201, { id: envelope.id, channel: name, event: envelope.event, ts: envelope.ts });
    }
    if (match[2] === "/poll") return new FakePoll(this, name, Number(parsed.searchParams.get("since")), init.signal).answer;
    if (match[2] === undefined) {
      const channel = this.channel(name);
      return json(200, { channel: name, lastId: String(channel.lastSeq), oldestId: channel.messages[0]?.id ?? null });
    }
    return json(405, { error: { code: "method_not_allowed", message: "no" } });
  };

  /** A random whole number in [0, n). */
  randomInt(n: number): number {
    return Math.floor(this.#random() * n);
  }
}

/** The relay's end of one multiplexed WebSocket. */
export class FakeSocket {
  readyState = 0;
  readonly listeners: Array<[string, Listener]> = [];
  readonly url: URL;
  /** Channels subscribed on this socket. */
  readonly subscribed = new Set<string>();
  readonly sent: string[] = [];
  /** Batch frames sent to the client. */
  batchFramesSent = 0;
  readonly #relay: FakeRelay;
  /** Frames on their way to the client, delivered one per macrotask tick in order. */
  #outbox: Array<() => void> = [];
  #flushing = false;

  constructor(relay: FakeRelay, url: string) {
    this.#relay = relay;
    this.url = new URL(url);
    relay.sockets.add(this);
    setTimeout(() => {
      if (this.readyState !== 0) return;
      if (relay.down || relay.wsBlocked === "refuse") {
        this.readyState = 3;
        relay.sockets.delete(this);
        this.#emit("error", {});
        this.#emit("close", { code: 1006, reason: "" });
        return;
      }
      if (relay.checkToken?.(this.url.searchParams.get("token") ?? undefined) === "invalid") {
        this.readyState = 3;
        relay.sockets.delete(this);
        this.#emit("close", { code: 1006, reason: "" });
        return;
      }
      this.readyState = 1;
      this.#emit("open", {});
    }, 0);
  }

  get token(): string | undefined {
    return this.url.searchParams.get("token") ?? undefined;
  }

  clientSend(text: string): void {
    if (this.readyState !== 1) throw new Error("WebSocket is not open");
    this.sent.push(text);
    // The relay reads frames in order, after the client's current task.
    queueMicrotask(() => this.#receive(text));
  }

  clientClose(code: number, reason: string): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.#relay.sockets.delete(this);
    this.#outbox = [];
    this.#queue(() => {
      this.readyState = 3;
      this.#emit("close", { code, reason });
    });
  }

  /** The relay drops the socket: frames not yet delivered are lost (some of them, at random). */
  kill(code: number, reason = ""): boolean {
    if (this.readyState >= 2) return false;
    this.readyState = 2;
    this.#relay.sockets.delete(this);
    this.#outbox.length = this.#relay.randomInt(this.#outbox.length + 1);
    this.#queue(() => {
      this.readyState = 3;
      this.#emit("close", { code, reason });
    });
    return true;
  }

  broadcast(envelope: Envelope): void {
    if (this.subscribed.has(envelope.channel)) this.send(envelope);
  }

  /** Whether the client asked for batch frames (`?frames=batch`). */
  get batchFrames(): boolean {
    return this.url.searchParams.get("frames") === "batch";
  }

  broadcastBurst(envelopes: Envelope[]): void {
    const [first, ...rest] = envelopes;
    if (!first || !this.subscribed.has(first.channel)) return;
    if (this.batchFrames) {
      this.send(first);
      this.#sendMessages(rest);
    } else {
      for (const envelope of envelopes) this.send(envelope);
    }
  }

  /** Messages as the relay sends them to this socket: several in one batch frame when it asked for them. */
  #sendMessages(envelopes: Envelope[]): void {
    if (this.batchFrames && envelopes.length > 1) {
      this.batchFramesSent++;
      this.send({ type: "batch", messages: envelopes });
    } else for (const envelope of envelopes) this.send(envelope);
  }

  send(frame: object | string): void {
    if (this.readyState !== 1) return;
    const text = typeof frame === "string" ? frame : JSON.stringify(frame);
    this.#queue(() => this.#emit("message", { data: text }));
  }

  #receive(text: string): void {
    if (this.readyState !== 1) return;
    if (text === '{"type":"ping"}') return this.send('{"type":"pong"}');
    const frame = JSON.parse(text) as { type: string; channel: string; since?: string; data?: string; event?: string; idempotencyKey?: string; ref?: string };
    const relay = this.#relay;
    switch (frame.type) {
      case "subscribe": {
        if (frame.channel.startsWith("forbidden")) return this.send({ type: "error", ref: frame.ref, error: { code: "forbidden", message: "not yours" } });
        if (this.subscribed.has(frame.channel))
          return this.send({ type: "error", ref: frame.ref, error: { code: "invalid_request", message: "Already subscribed" } });
        this.subscribed.add(frame.channel);
        this.send({ type: "subscribed", channel: frame.channel, lastId: String(relay.channel(frame.channel).lastSeq) });
        if (frame.since !== undefined) {
          const { gap, messages } = relay.replay(frame.channel, Number(frame.since));
          if (gap) this.send({ type: "gap", channel: frame.channel, ...gap });
          this.#sendMessages(messages);
        }
        return;
      }
      case "unsubscribe":
        this.subscribed.delete(frame.channel);
        return this.send({ type: "unsubscribed", channel: frame.channel });
      case "publish": {
        const envelope = relay.publish(frame.channel, frame.data ?? "", frame.event ?? "message", frame.idempotencyKey);
        return this.send({ type: "ack", ref: frame.ref, id: envelope.id });
      }
      default:
        return this.send({ type: "error", ref: frame.ref, error: { code: "invalid_frame", message: "unknown" } });
    }
  }

  #queue(deliver: () => void): void {
    this.#outbox.push(deliver);
    if (this.#flushing) return;
    this.#flushing = true;
    setTimeout(() => this.#flush(), 0);
  }

  #flush(): void {
    // A few frames per tick: the client sees them in order, interleaved with its timers.
    for (let i = 0; i < 16 && this.#outbox.length > 0; i++) this.#outbox.shift()!();
    if (this.#outbox.length > 0) setTimeout(() => this.#flush(), 0);
    else this.#flushing = false;
  }

  #emit(type: string, event: object): void {
    for (const [name, listener] of this.listeners) if (name === type) (listener as (event: object) => void)(event);
  }
}

/** The relay's end of one multi-channel SSE response. */
export class FakeStream {
  readonly response: ResponseLike;
  readonly channels: string[];
  readonly position = new Map<string, number>();
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #open = true;
  readonly #relay: FakeRelay;
  readonly #encoder = new TextEncoder();

  constructor(relay: FakeRelay, url: URL, signal: AbortSignal | undefined) {
    this.#relay = relay;
    this.channels = [...new Set(url.searchParams.getAll("channel"))];
    const since = url.searchParams.get("since");
    const resume = since === null ? new Map<string, number>() : (parseCursor(since) ?? new Map<string, number>());
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => this.#end(),
    });
    this.response = { ok: true, status: 200, headers: headers({ "Content-Type": "text/event-stream" }), body, text: async () => "" };
    signal?.addEventListener("abort", () => {
      if (!this.#open) return;
      this.#end();
      this.#controller.error(abortError());
    });
    relay.streams.add(this);
    this.#write(encodeSSE({ retry: 3000 }));
    if (relay.sseBuffered) return;
    for (const channel of this.channels) this.position.set(channel, resume.get(channel) ?? relay.channel(channel).lastSeq);
    this.#write(encodeSSE({ id: formatCursor(this.position) }));
    for (const channel of this.channels) {
      const from = resume.get(channel);
      if (from === undefined) continue;
      const { gap, messages } = relay.replay(channel, from);
      if (gap) {
        this.position.set(channel, Number(gap.oldest) - 1);
        this.#write(encodeSSE({ id: formatCursor(this.position), event: "relay.gap", data: JSON.stringify({ channel, ...gap }) }));
      }
      for (const message of messages) this.#message(message);
    }
  }

  broadcast(envelope: Envelope): void {
    if (this.#open && !this.#relay.sseBuffered && this.channels.includes(envelope.channel)) this.#message(envelope);
  }

  /** Cuts the stream, sometimes in the middle of an event, by an error or a clean end. */
  kill(): boolean {
    if (!this.#open) return false;
    if (this.#relay.randomInt(3) === 0) this.#write('id: zz=1\nevent: message\ndata: {"type":"message","chan');
    this.#end();
    if (this.#relay.randomInt(2) === 0) this.#controller.close();
    else this.#controller.error(new TypeError("network error"));
    return true;
  }

  #message(envelope: Envelope): void {
    this.position.set(envelope.channel, Number(envelope.id));
    this.#write(encodeSSE({ id: formatCursor(this.position), event: envelope.event, data: JSON.stringify(envelope) }));
  }

  #write(text: string): void {
    if (this.#open) this.#controller.enqueue(this.#encoder.encode(text));
  }

  #end(): void {
    this.#open = false;
    this.#relay.streams.delete(this);
  }
}

/** One held long-poll request. */
export class FakePoll {
  readonly answer: Promise<ResponseLike>;
  #resolve!: (response: ResponseLike) => void;
  #reject!: (error: Error) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;
  readonly #relay: FakeRelay;
  readonly #channel: string;

  constructor(relay: FakeRelay, channel: string, since: number, signal: AbortSignal | undefined) {
    this.#relay = relay;
    this.#channel = channel;
    this.answer = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const { gap, messages } = relay.replay(channel, since);
    if (gap || messages.length > 0) {
      this.#finish(json(200, { messages, lastId: String(relay.channel(channel).lastSeq), ...(gap ? { gap } : {}) }));
      return;
    }
    relay.polls.add(this);
    signal?.addEventListener("abort", () => this.#fail(abortError()));
    this.#timer = setTimeout(() => this.#finish(json(200, { messages: [], lastId: String(relay.channel(channel).lastSeq) })), relay.pollHoldMs);
  }

  broadcast(envelope: Envelope): void {
    if (envelope.channel === this.#channel) this.#finish(json(200, { messages: [envelope], lastId: envelope.id }));
  }

  kill(): boolean {
    if (this.#done) return false;
    this.#fail(new TypeError("network error"));
    return true;
  }

  #finish(response: ResponseLike): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#relay.polls.delete(this);
    this.#resolve(response);
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#relay.polls.delete(this);
    this.#reject(error);
  }
}

function headers(values: Record<string, string>): ResponseLike["headers"] {
  const lower = new Map(Object.entries(values).map(([name, value]) => [name.toLowerCase(), value]));
  return { get: (name) => lower.get(name.toLowerCase()) ?? null };
}

function json(status: number, body: unknown): ResponseLike {
  const text = JSON.stringify(body);
  return { ok: status >= 200 && status < 300, status, headers: headers({ "Content-Type": "application/json" }), body: null, text: async () => text };
}

function abortError(): Error {
  const error = new Error("The operation was aborted.");
  error.name = "AbortError";
  return error;
}

function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A `window`/`document` stand-in whose events a test fires. */
export class FakeTarget {
  visibilityState = "visible";
  readonly #listeners = new Map<string, Set<() => void>>();
  addEventListener(type: string, listener: () => void): void {
    let set = this.#listeners.get(type);
    if (!set) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener);
  }
  removeEventListener(type: string, listener: () => void): void {
    this.#listeners.get(type)?.delete(listener);
  }
  fire(type: string): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) listener();
  }
  count(type: string): number {
    return this.#listeners.get(type)?.size ?? 0;
  }
}
