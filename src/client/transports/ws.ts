import type { Envelope } from "../../protocol/envelope";
import { ClientFrameType, type ErrorFrame, PING_FRAME, PONG_FRAME, type ServerFrame, type SubscribeFrame } from "../../protocol/frames";
import { parseSeq } from "../../protocol/ids";
import { RelayClientError } from "../errors";
import type { WebSocketLike } from "../platform";
import type { Transport, TransportContext, TransportFailure } from "./transport";

interface PendingPublish {
  resolve(id: string): void;
  reject(error: RelayClientError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The error an in-flight publish gets when its socket goes away: the client queues it again. */
export function disconnected(): RelayClientError {
  return new RelayClientError("disconnected", "The connection closed before the relay acknowledged the publish.");
}

/**
 * One multiplexed WebSocket (`/v1/ws`) for all of a connection's channels: `subscribe` frames with
 * each channel's resume point, `publish` frames answered by `ack`, and a ping that notices a dead
 * socket sooner than TCP does.
 */
export class WsTransport implements Transport {
  readonly name = "ws";
  readonly #ctx: TransportContext;
  #socket: WebSocketLike | undefined;
  #opened = false;
  #closed = false;
  /** Channels subscribed on the socket. */
  readonly #channels = new Set<string>();
  /**
   * Channels subscribed and not yet greeted: frames an earlier subscription had in flight may still
   * arrive, and are dropped (the new one replays from the position anyway).
   */
  readonly #greeting = new Set<string>();
  /** Refs of subscribe frames, to tell which channel an error frame refuses. */
  readonly #subscribeRefs = new Map<string, string>();
  readonly #publishes = new Map<string, PendingPublish>();
  #nextRef = 0;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: TransportContext) {
    this.#ctx = ctx;
  }

  /** Whether publishes can go over this socket now. */
  get isOpen(): boolean {
    return this.#opened && !this.#closed;
  }

  start(): void {
    const { options, token } = this.#ctx;
    const WebSocketImpl = options.WebSocket;
    if (!WebSocketImpl) return this.#fail({ kind: "unsupported", error: new RelayClientError("unsupported", "This environment has no WebSocket.") });
    const query = [...(options.batchFrames ? ["frames=batch"] : []), ...(token === undefined ? [] : [`token=${encodeURIComponent(token)}`])];
    const url = `${options.wsBase}/v1/ws${query.length > 0 ? `?${query.join("&")}` : ""}`;
    let socket: WebSocketLike;
    try {
      socket = new WebSocketImpl(url);
    } catch (cause) {
      // A Content-Security-Policy, an extension or a missing implementation: WebSockets are blocked.
      return this.#fail({ kind: "unsupported", error: new RelayClientError("unsupported", `WebSocket could not be created: ${String(cause)}`, { cause }) });
    }
    this.#socket = socket;
    socket.addEventListener("open", () => this.#onOpen());
    socket.addEventListener("message", (event) => this.#onMessage(event.data));
    socket.addEventListener("close", (event) => this.#fail({ kind: "lost", opened: this.#opened, code: event.code, reason: event.reason }));
    // An error is always followed by close, which says more.
    socket.addEventListener("error", () => {});
    this.#connectTimer = setTimeout(() => this.#fail({ kind: "lost", opened: false, reason: "connect timeout" }), options.connectTimeout);
  }

  sync(): void {
    if (!this.isOpen) return;
    const positions = this.#ctx.positions();
    for (const channel of positions.keys()) if (!this.#channels.has(channel)) this.#subscribe(channel);
    for (const channel of [...this.#channels]) {
      if (positions.has(channel)) continue;
      this.#channels.delete(channel);
      this.#greeting.delete(channel);
      this.#send({ type: ClientFrameType.Unsubscribe, channel });
    }
  }

  resubscribe(channel: string): void {
    if (!this.isOpen || !this.#channels.has(channel)) return;
    // The relay handles one socket's frames in order, so the second frame finds the channel free.
    this.#send({ type: ClientFrameType.Unsubscribe, channel });
    this.#subscribe(channel);
  }

  /**
   * Publishes over the socket; resolves with the id from the relay's `ack`. `idempotencyKey` is the
   * publish's one key for all its attempts, so a resend after a lost ack is stored once.
   */
  publish(channel: string, data: string, event: string | undefined, idempotencyKey: string): Promise<string> {
    if (!this.isOpen) return Promise.reject(disconnected());
    const ref = `p${++this.#nextRef}`;
    return new Promise<string>((resolve, reject) => {
      // No ack in time: the socket is as good as dead; closing it re-queues every pending publish.
      const timer = setTimeout(() => this.#fail({ kind: "lost", opened: true, reason: "publish not acknowledged" }), this.#ctx.options.publishTimeout);
      this.#publishes.set(ref, { resolve, reject, timer });
      this.#send({ type: ClientFrameType.Publish, channel, data, idempotencyKey, ref, ...(event === undefined ? {} : { event }) });
    });
  }

  /** Checks the socket is alive now (the tab came back): a ping that must be answered in time. */
  checkAlive(): void {
    if (this.isOpen) this.#ping();
  }

  close(): void {
    if (this.#closed) return;
    this.#teardown();
    try {
      this.#socket?.close(1000, "client closed");
    } catch {
      // Already closed.
    }
  }

  #onOpen(): void {
    if (this.#closed) return;
    clearTimeout(this.#connectTimer);
    this.#opened = true;
    for (const channel of this.#ctx.positions().keys()) this.#subscribe(channel);
    const { pingInterval } = this.#ctx.options;
    if (pingInterval > 0) this.#pingTimer = setInterval(() => this.#ping(), pingInterval);
    this.#ctx.events.open();
  }

  #subscribe(channel: string): void {
    const since = this.#ctx.positions().get(channel);
    const ref = `s${++this.#nextRef}`;
    this.#channels.add(channel);
    // The relay greets first; frames before the greeting belong to an earlier subscription.
    this.#greeting.add(channel);
    this.#subscribeRefs.set(ref, channel);
    // The wire carries ids as strings: {"since":"5"} (SubscribeFrame holds the parsed number).
    const frame: Omit<SubscribeFrame, "since"> & { since?: string } = { type: ClientFrameType.Subscribe, channel, ref };
    if (since !== undefined) frame.since = String(since);
    this.#send(frame);
  }

  #onMessage(raw: unknown): void {
    if (this.#closed || typeof raw !== "string") return;
    // Any frame proves the socket alive.
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    if (raw === PONG_FRAME) return;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(raw) as ServerFrame;
    } catch {
      return;
    }
    const events = this.#ctx.events;
    switch (frame.type) {
      case "subscribed": {
        const lastId = parseSeq(String(frame.lastId));
        for (const [ref, channel] of this.#subscribeRefs) if (channel === frame.channel) this.#subscribeRefs.delete(ref);
        this.#greeting.delete(frame.channel);
        if (lastId !== undefined) events.position(frame.channel, lastId);
        return;
      }
      case "message":
        return this.#onEnvelope(frame);
      case "batch":
        for (const envelope of frame.messages) this.#onEnvelope(envelope);
        return;
      case "gap":
        if (this.#greeting.has(frame.channel)) return;
        return events.gap({ channel: frame.channel, after: frame.after, oldest: frame.oldest });
      case "ack": {
        const pending = frame.ref === undefined ? undefined : this.#publishes.get(frame.ref);
        if (!pending || frame.ref === undefined) return;
        this.#publishes.delete(frame.ref);
        clearTimeout(pending.timer);
        return pending.resolve(String(frame.id));
      }
      case "error":
        return this.#onError(frame);
    }
  }

  #onEnvelope(envelope: Envelope): void {
    if (this.#greeting.has(envelope.channel)) return;
    this.#ctx.events.message(envelope);
  }

  #onError(frame: ErrorFrame): void {
    const ref = frame.ref;
    const error = new RelayClientError(String(frame.error?.code ?? "error"), String(frame.error?.message ?? "The relay refused a frame."));
    const pending = ref === undefined ? undefined : this.#publishes.get(ref);
    if (pending && ref !== undefined) {
      this.#publishes.delete(ref);
      clearTimeout(pending.timer);
      return pending.reject(error);
    }
    const channel = ref === undefined ? undefined : this.#subscribeRefs.get(ref);
    if (channel !== undefined && ref !== undefined) {
      this.#subscribeRefs.delete(ref);
      this.#channels.delete(channel);
      this.#greeting.delete(channel);
      return this.#ctx.events.channelError(channel, new RelayClientError(error.code, error.message, { channel }));
    }
  }

  #ping(): void {
    if (this.#pongTimer !== undefined) return;
    this.#pongTimer = setTimeout(() => this.#fail({ kind: "lost", opened: true, reason: "ping not answered" }), this.#ctx.options.pongTimeout);
    this.#send(PING_FRAME);
  }

  #send(frame: string | object): void {
    if (this.#closed) return;
    try {
      this.#socket?.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    } catch {
      this.#fail({ kind: "lost", opened: this.#opened, reason: "send failed" });
    }
  }

  #teardown(): void {
    this.#closed = true;
    clearTimeout(this.#connectTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    for (const pending of this.#publishes.values()) {
      clearTimeout(pending.timer);
      pending.reject(disconnected());
    }
    this.#publishes.clear();
  }

  #fail(failure: TransportFailure): void {
    if (this.#closed) return;
    this.#teardown();
    try {
      this.#socket?.close(1000, "client gave up on the socket");
    } catch {
      // Already closed.
    }
    // Reported asynchronously so a failure inside start() never re-enters the connection.
    queueMicrotask(() => this.#ctx.events.failed(failure));
  }
}
