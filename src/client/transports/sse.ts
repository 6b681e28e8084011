import { formatCursor, parseCursor } from "../../protocol/cursor";
import type { Envelope } from "../../protocol/envelope";
import { RelayEvent } from "../../protocol/names";
import { errorFromResponse } from "../errors";
import { type ParsedSSEEvent, SSEParser } from "../sse-parser";
import { authHeaders, type Transport, type TransportContext, type TransportFailure } from "./transport";

/** Server-sent events the relay names itself; everything else is a message. */
const RELAY_EVENT_PREFIX = "relay.";

/**
 * One multi-channel Server-Sent Events stream (`/v1/events`) for all of a connection's channels,
 * read with `fetch` rather than `EventSource`: an `EventSource` cannot listen to event names it
 * does not know in advance (on this stream the event name is the message's), cannot see the id-only
 * event that names every channel's starting position, and cannot tell a refusal (401) from a
 * network error. Any change to the channel set reopens the stream from the current positions.
 */
export class SseTransport implements Transport {
  readonly name = "sse";
  readonly #ctx: TransportContext;
  #opened = false;
  #closed = false;
  /** Bumped for every stream, so a replaced stream's late callbacks are ignored. */
  #generation = 0;
  #abort: AbortController | undefined;
  #channels: string[] = [];
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: TransportContext) {
    this.#ctx = ctx;
  }

  start(): void {
    void this.#open();
  }

  sync(): void {
    if (this.#closed) return;
    const channels = [...this.#ctx.positions().keys()];
    if (channels.length === this.#channels.length && channels.every((channel) => this.#channels.includes(channel))) return;
    void this.#open();
  }

  resubscribe(channel: string): void {
    if (!this.#closed && this.#channels.includes(channel)) void this.#open();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopStream();
  }

  async #open(): Promise<void> {
    this.#stopStream();
    const generation = ++this.#generation;
    const current = (): boolean => !this.#closed && generation === this.#generation;
    const { options, token, events } = this.#ctx;
    const positions = this.#ctx.positions();
    this.#channels = [...positions.keys()];
    if (this.#channels.length === 0) {
      // Nothing to carry: the transport is idle, and as good as open.
      if (!this.#opened) {
        this.#opened = true;
        events.open();
      }
      return;
    }

    const known = new Map<string, number>();
    for (const [channel, since] of positions) if (since !== undefined) known.set(channel, since);
    let url = `${options.httpBase}/v1/events?${this.#channels.map((channel) => `channel=${encodeURIComponent(channel)}`).join("&")}`;
    if (known.size > 0) url += `&since=${encodeURIComponent(formatCursor(known))}`;

    const abort = new AbortController();
    this.#abort = abort;
    let headersIn = false;
    // Headers but no event in time: something between here and the relay buffers the stream.
    this.#stallTimer = setTimeout(() => {
      if (current()) this.#fail(headersIn ? { kind: "stalled" } : { kind: "lost", opened: this.#opened, reason: "connect timeout" });
    }, options.connectTimeout);

    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      const response = await options.fetch(url, { headers: { Accept: "text/event-stream", ...authHeaders(token) }, signal: abort.signal });
      if (!current()) return;
      if (!response.ok) {
        const error = await errorFromResponse(response);
        if (current()) this.#fail({ kind: "http", status: response.status, error, opened: this.#opened });
        return;
      }
      const type = response.headers.get("Content-Type") ?? "";
      // A captive portal's or proxy's page instead of a stream: streaming does not get through.
      if (!type.startsWith("text/event-stream") || !response.body) return this.#fail({ kind: "stalled" });
      headersIn = true;
      reader = response.body.getReader();
    } catch {
      if (current()) this.#fail({ kind: "lost", opened: this.#opened });
      return;
    }

    const decoder = new TextDecoder();
    let first = true;
    const parser = new SSEParser((event) => {
      if (!current()) return;
      if (first) {
        first = false;
        clearTimeout(this.#stallTimer);
        if (!this.#opened) {
          this.#opened = true;
          events.open();
        }
      }
      this.#onEvent(event);
    });
    this.#resetIdle(generation);
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        if (current()) this.#fail({ kind: "lost", opened: this.#opened });
        return;
      }
      if (!current()) {
        void reader.cancel().catch(() => {});
        return;
      }
      // The relay ended the stream (a restart, an expired token, a reader too slow): resume elsewhere.
      if (chunk.done) return this.#fail({ kind: "lost", opened: this.#opened, reason: "stream ended" });
      this.#resetIdle(generation);
      parser.push(decoder.decode(chunk.value, { stream: true }));
      if (!current()) {
        void reader.cancel().catch(() => {});
        return;
      }
    }
  }

  #onEvent({ id, event, data }: ParsedSSEEvent): void {
    const events = this.#ctx.events;
    if (data === undefined) {
      // The id-only event: every channel's position, the live-only ones included.
      const cursor = id === undefined ? undefined : parseCursor(id);
      if (cursor) for (const [channel, seq] of cursor) events.position(channel, seq);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof value !== "object" || value === null) return;
    if (event === RelayEvent.Gap) {
      const { channel, after, oldest } = value as { channel?: unknown; after?: unknown; oldest?: unknown };
      if (typeof channel === "string" && typeof after === "string" && typeof oldest === "string") events.gap({ channel, after, oldest });
      return;
    }
    if (event.startsWith(RELAY_EVENT_PREFIX)) return;
    const envelope = value as Envelope;
    if (envelope.type === "message" && typeof envelope.channel === "string" && typeof envelope.id === "string") events.message(envelope);
  }

  #resetIdle(generation: number): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (!this.#closed && generation === this.#generation) this.#fail({ kind: "lost", opened: this.#opened, reason: "stream idle" });
    }, this.#ctx.options.streamIdleTimeout);
  }

  #stopStream(): void {
    clearTimeout(this.#stallTimer);
    clearTimeout(this.#idleTimer);
    this.#abort?.abort();
    this.#abort = undefined;
  }

  #fail(failure: TransportFailure): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopStream();
    queueMicrotask(() => this.#ctx.events.failed(failure));
  }
}
