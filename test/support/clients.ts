import type { Socket } from "node:net";
import { EventSource, type FetchLike, type FetchLikeResponse } from "eventsource";
import WebSocket from "ws";
import { sleep } from "./relay";

/** Frames and envelopes as a black-box client sees them (API.md); extra fields are allowed. */
export interface Envelope {
  type: "message";
  channel: string;
  id: string;
  event: string;
  data: string;
  ts: number;
  encoding?: "base64";
}

export type Frame = { type: string; [field: string]: unknown };

const DEFAULT_WAIT_MS = 10_000;

export function channelUrl(url: string, channel: string, resource = ""): string {
  return `${url}/v1/channels/${encodeURIComponent(channel)}${resource ? `/${resource}` : ""}`;
}

/** A unique channel name per test, so reruns on a kept state directory never collide. */
export function uniqueChannel(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * Items collected from a live source, with `waitFor(predicate)` that resolves as soon as the
 * predicate holds over everything collected so far, or rejects after a bounded time.
 */
export class Collector<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const check of [...this.#waiters]) check();
  }

  /** Wakes waiters without a new item (a close, an error). */
  poke(): void {
    for (const check of [...this.#waiters]) check();
  }

  waitFor(predicate: (items: readonly T[]) => boolean, timeoutMs = DEFAULT_WAIT_MS, what = "condition"): Promise<readonly T[]> {
    if (predicate(this.items)) return Promise.resolve(this.items);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate(this.items)) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(this.items);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        const tail = JSON.stringify(this.items.slice(-5));
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.items.length} items collected, last ones: ${tail}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }
}

/** Rejects after `ms` with a message naming what was awaited. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface PublishOptions {
  event?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the text when the body is not JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the relay answered (`result.body.error.code`).
  body: any;
}

/** `POST /v1/channels/{channel}/messages`; resolves with whatever the relay answered. */
export async function publish(url: string, channel: string, data: BodyInit, options: PublishOptions = {}): Promise<HttpResult> {
  const target = new URL(channelUrl(url, channel, "messages"));
  if (options.event !== undefined) target.searchParams.set("event", options.event);
  return request(target.href, { method: "POST", body: data, headers: options.headers }, options.timeoutMs);
}

/** Publishes and insists on `201`; resolves with the stored id. */
export async function publishOk(url: string, channel: string, data: string, options: PublishOptions = {}): Promise<string> {
  const result = await publish(url, channel, data, options);
  if (result.status !== 201) throw new Error(`publish to ${channel} answered ${result.status}: ${JSON.stringify(result.body)}`);
  return result.body.id as string;
}

/** What wrangler's dev proxy, in front of every `wrangler dev`, answers with a 503 when its request to the Worker failed. */
export const DEV_PROXY_LOST = "Your worker restarted mid-request";

/**
 * `fetch` to a relay under `wrangler dev`, sent again (at most twice) when wrangler's dev proxy
 * answers for the Worker with its own 503 DEV_PROXY_LOST. The proxy says that for any failed
 * request but a GET, restart or not; under load it is a pooled connection to the Worker that had
 * already closed, and the request never reached the relay (of 592 such publishes, none was stored).
 * A relay that really dies fails the retries too. Production has no such proxy, and the SDK
 * retries any 503 with the same Idempotency-Key. A streamed body cannot be sent twice: no retry.
 */
export async function fetchRelay(url: string, init: RequestInit = {}): Promise<Response> {
  const resendable = !(init.body instanceof ReadableStream);
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(url, init);
    if (response.status !== 503 || !resendable || attempt === 3) return response;
    if (!(await response.clone().text()).startsWith(DEV_PROXY_LOST)) return response;
  }
}

/** Any request, with a bounded time and the body read. */
export async function request(url: string, init: RequestInit = {}, timeoutMs = DEFAULT_WAIT_MS): Promise<HttpResult> {
  const response = await fetchRelay(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON; keep the text.
  }
  return { status: response.status, headers: response.headers, body };
}

/** `GET /v1/channels/{channel}/messages` with every retained message after `since`. */
export async function history(
  url: string,
  channel: string,
  since = 0,
  limit = 1000,
): Promise<{ messages: Envelope[]; lastId: string; oldestId: string | null }> {
  const result = await request(`${channelUrl(url, channel, "messages")}?since=${since}&limit=${limit}`);
  if (result.status !== 200) throw new Error(`history of ${channel} answered ${result.status}: ${JSON.stringify(result.body)}`);
  return result.body;
}

// ---------------------------------------------------------------------------------------------
// WebSocket

export interface WsSubscriber {
  ws: WebSocket;
  /** Every text frame, parsed (a frame that is not JSON is kept as `{type:"(raw)", text}`). */
  frames: Collector<Frame>;
  /** The exact text of every frame, in order. */
  raw: string[];
  /** The message envelopes received so far, in order. */
  messages(): Envelope[];
  waitFor(predicate: (frames: readonly Frame[]) => boolean, timeoutMs?: number, what?: string): Promise<readonly Frame[]>;
  /** Resolves once a message with id `id` has arrived. */
  waitForId(id: string, timeoutMs?: number): Promise<Envelope[]>;
  send(frame: string | object | Buffer): void;
  closed: Promise<{ code: number; reason: string }>;
  isClosed(): boolean;
  close(): Promise<void>;
}

export interface WsOptions {
  since?: string;
  /** Extra query parameters. */
  query?: Record<string, string>;
  /** Wait for the `subscribed` frame (default); off for sockets that should be refused. */
  waitSubscribed?: boolean;
  timeoutMs?: number;
}

/** Opens `GET /v1/channels/{channel}/ws` and resolves once the room greeted it with `subscribed`. */
export async function openWs(url: string, channel: string, options: WsOptions = {}): Promise<WsSubscriber> {
  const target = new URL(channelUrl(url.replace(/^http/, "ws"), channel, "ws"));
  if (options.since !== undefined) target.searchParams.set("since", options.since);
  for (const [name, value] of Object.entries(options.query ?? {})) target.searchParams.set(name, value);
  const subscriber = await openWsAt(target.href, options.timeoutMs);
  if (options.waitSubscribed ?? true) {
    await subscriber.waitFor((all) => all.some((f) => f.type === "subscribed"), options.timeoutMs, `subscribed on ${channel}`);
  }
  return subscriber;
}

/**
 * Opens a WebSocket on any relay URL (a channel's `/ws`, or `/v1/ws`) and resolves once it is open,
 * every frame parsed and kept in order. `tcp` is the connection under it, to drop it without a
 * close frame.
 */
export async function openWsAt(href: string, timeoutMs = DEFAULT_WAIT_MS): Promise<WsSubscriber & { tcp: Socket }> {
  const ws = new WebSocket(href, { handshakeTimeout: timeoutMs });
  const frames = new Collector<Frame>();
  const raw: string[] = [];
  let isClosed = false;
  let tcp: Socket | undefined;
  ws.on("upgrade", (response) => {
    tcp = response.socket as Socket;
  });
  ws.on("message", (data, isBinary) => {
    const text = isBinary ? `(binary ${(data as Buffer).length} bytes)` : data.toString();
    raw.push(text);
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      frame = { type: "(raw)", text };
    }
    frames.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once("close", (code, reason) => {
      isClosed = true;
      frames.poke();
      resolve({ code, reason: reason.toString() });
    });
  });
  // Errors surface through `close` (and through `open` below); never as an unhandled event.
  ws.on("error", () => undefined);

  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (req, res) => {
        req.destroy();
        reject(new Error(`WebSocket upgrade refused: ${res.statusCode}`));
      });
      ws.once("error", reject);
    }),
    timeoutMs,
    `WebSocket open ${href}`,
  );
  if (tcp === undefined) throw new Error(`no TCP socket under ${href}`);

  const messages = (): Envelope[] => frames.items.filter((f): f is Frame & Envelope => f.type === "message");
  return {
    ws,
    tcp,
    frames,
    raw,
    messages,
    waitFor: (predicate, ms, what) => frames.waitFor(predicate, ms, what),
    waitForId: async (id, ms) => {
      await frames.waitFor((all) => all.some((f) => f.type === "message" && f.id === id), ms, `message id ${id} on ${href}`);
      return messages();
    },
    send: (frame) => ws.send(typeof frame === "string" || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame)),
    closed,
    isClosed: () => isClosed,
    close: async () => {
      if (isClosed) return;
      ws.close(1000, "test done");
      try {
        await withTimeout(closed, 3_000, "WebSocket close handshake");
      } catch {
        ws.terminate();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events

export interface SseEvent {
  /** The event's own `id:` field ("" when it had none). */
  id: string;
  event: string;
  data: string;
}

export interface SseSubscriber {
  es: EventSource;
  events: Collector<SseEvent>;
  /** Events named `message` (the default event name), in order. */
  messages(): SseEvent[];
  waitFor(predicate: (events: readonly SseEvent[]) => boolean, timeoutMs?: number, what?: string): Promise<readonly SseEvent[]>;
  waitForId(id: string, timeoutMs?: number): Promise<SseEvent[]>;
  /** The `Last-Event-ID` header of every request the client made, in order (null: none). */
  requests: Array<{ lastEventId: string | null; status?: number }>;
  /** How many times the stream opened (1 + reconnects). */
  opens(): number;
  waitForOpens(count: number, timeoutMs?: number): Promise<void>;
  /**
   * Ends the current response body as if the server had finished the stream: the `eventsource`
   * client then reconnects on its own with `Last-Event-ID`.
   */
  cut(): void;
  close(): void;
}

export interface SseOptions {
  since?: string;
  /** Sent as `Last-Event-ID` on the first request (and on reconnects until an id arrives). */
  lastEventId?: string;
  /** Rewrites the server's `retry:` so automatic reconnects are quick in tests. */
  retryMs?: number;
  /** Event names to collect besides `message` and `relay.gap`. */
  eventNames?: string[];
  timeoutMs?: number;
}

/**
 * Subscribes with the `eventsource` package (a spec-following client that reconnects by itself)
 * and resolves once the stream is open. A custom `fetch` adds the initial `Last-Event-ID`,
 * records every request and lets the test end a response (`cut`) or shorten `retry`.
 */
export async function openSse(url: string, channel: string, options: SseOptions = {}): Promise<SseSubscriber> {
  const target = new URL(channelUrl(url, channel, "events"));
  if (options.since !== undefined) target.searchParams.set("since", options.since);

  const events = new Collector<SseEvent>();
  const requests: SseSubscriber["requests"] = [];
  const opens = new Collector<number>();
  let cutCurrent: (() => void) | undefined;

  const customFetch: FetchLike = async (input, init) => {
    const headers: Record<string, string> = { ...init.headers };
    if (headers["Last-Event-ID"] === undefined && options.lastEventId !== undefined) headers["Last-Event-ID"] = options.lastEventId;
    const record: { lastEventId: string | null; status?: number } = { lastEventId: headers["Last-Event-ID"] ?? null };
    requests.push(record);
    const response = await fetch(input, { ...init, headers });
    record.status = response.status;
    const wrapped: FetchLikeResponse = {
      status: response.status,
      url: response.url,
      redirected: response.redirected,
      headers: response.headers,
      body: response.body ? wrapBody(response.body, options.retryMs, (cut) => (cutCurrent = cut)) : null,
    };
    return wrapped;
  };

  const es = new EventSource(target, { fetch: customFetch });
  for (const name of new Set(["message", "relay.gap", ...(options.eventNames ?? [])])) {
    es.addEventListener(name, (event: MessageEvent) => events.push({ id: event.lastEventId, event: name, data: String(event.data) }));
  }
  es.addEventListener("open", () => opens.push(Date.now()));
  es.addEventListener("error", () => events.poke());

  const subscriber: SseSubscriber = {
    es,
    events,
    messages: () => events.items.filter((e) => e.event === "message"),
    waitFor: (predicate, timeoutMs, what) => events.waitFor(predicate, timeoutMs, what),
    waitForId: async (id, timeoutMs) => {
      await events.waitFor((all) => all.some((e) => e.id === id), timeoutMs, `SSE id ${id} on ${channel}`);
      return subscriber.messages();
    },
    requests,
    opens: () => opens.items.length,
    waitForOpens: async (count, timeoutMs) => {
      await opens.waitFor((all) => all.length >= count, timeoutMs, `${count} SSE opens on ${channel}`);
    },
    cut: () => cutCurrent?.(),
    close: () => es.close(),
  };

  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        es.addEventListener("open", () => resolve(), { once: true });
        es.addEventListener("error", (event) => {
          if (es.readyState === es.CLOSED) reject(new Error(`SSE ${target.href} failed: ${(event as { message?: string }).message ?? "error"}`));
        });
      }),
      options.timeoutMs ?? DEFAULT_WAIT_MS,
      `SSE open ${target.href}`,
    );
  } catch (error) {
    es.close();
    throw error;
  }
  return subscriber;
}

/**
 * Passes a response body through, line-aligned, optionally rewriting `retry:` lines; `onCut`
 * receives a function that ends this body (done) and releases the connection.
 */
function wrapBody(body: ReadableStream<Uint8Array>, retryMs: number | undefined, onCut: (cut: () => void) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = "";
  let ended = false;

  return new ReadableStream<Uint8Array>({
    start(controller) {
      onCut(() => {
        if (ended) return;
        ended = true;
        controller.close();
        reader.cancel().catch(() => undefined);
      });
    },
    async pull(controller) {
      // Loop until something is enqueued: a pull that enqueues nothing is not called again.
      while (!ended) {
        const { done, value } = await reader.read();
        if (ended) return;
        if (done) {
          ended = true;
          if (pending) controller.enqueue(encoder.encode(pending));
          controller.close();
          return;
        }
        let text = pending + decoder.decode(value, { stream: true });
        const complete = text.lastIndexOf("\n") + 1;
        pending = text.slice(complete);
        text = text.slice(0, complete);
        if (retryMs !== undefined) text = text.replace(/^retry:.*$/gm, `retry: ${retryMs}`);
        if (text) {
          controller.enqueue(encoder.encode(text));
          return;
        }
      }
    },
    cancel(reason) {
      ended = true;
      return reader.cancel(reason);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Ids `from..to` as strings. */
export function idRange(from: number, to: number): string[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => String(from + i));
}

/** Closes everything given, ignoring what is already closed; bounded. */
export async function closeAll(clients: Array<{ close(): unknown } | undefined>): Promise<void> {
  await withTimeout(Promise.allSettled(clients.map(async (client) => client?.close())), 10_000, "closing clients").catch(() => undefined);
}

/**
 * Publishes over HTTP until the relay stores it: the same Idempotency-Key on every attempt, so a
 * publish whose answer a crash swallowed is stored once. Gives up after `timeoutMs`.
 */
export async function publishSurely(url: string, channel: string, data: string, key: string, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/v1/channels/${encodeURIComponent(channel)}/messages`, {
        method: "POST",
        headers: { "Idempotency-Key": key },
        body: data,
        signal: AbortSignal.timeout(5000),
      });
      if (response.status === 201) return ((await response.json()) as { id: string }).id;
      last = `HTTP ${response.status}: ${await response.text()}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`could not publish ${data} to ${channel}: ${last}`);
}
