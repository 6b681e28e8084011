import { DurableObject } from "cloudflare:workers";
import { type RelayConfig, readConfig } from "../config";
import { CloseCode } from "../protocol/close-codes";
import { type EncodedData, type Envelope } from "../protocol/envelope";
import type { ErrorBody } from "../protocol/errors";
import { type ServerFrame, PING_FRAME, PONG_FRAME, parseClientFrame, ServerFrameType } from "../protocol/frames";
import { formatId, type MessageId } from "../protocol/ids";
import { DEFAULT_EVENT } from "../protocol/names";
import { readConnectRequest } from "./connect-request";
import { MessageStore, type StoredMessage } from "./message-store";
import { gapFrame, SUBSCRIBER_KINDS, type SubscriberFormat, type SubscriberKind, subscriberFormats } from "./subscriber-formats";

export interface PublishInput extends EncodedData {
  event: string;
  idempotencyKey?: string;
  /** Store only if the channel's last id is this one. */
  ifMatch?: number;
}

export type PublishResult =
  | { status: "stored" | "duplicate"; message: Envelope }
  | { status: "conflict"; lastId: MessageId };

export interface HistoryPage {
  messages: Envelope[];
  lastId: MessageId;
  oldestId: MessageId | null;
}

export interface ChannelInfo {
  channel: string;
  lastId: MessageId;
  oldestId: MessageId | null;
  subscribers: Record<SubscriberKind | "poll", number>;
}

/** Per-socket state that survives hibernation. */
interface SocketAttachment {
  kind: SubscriberKind;
  canPublish: boolean;
}

/**
 * One channel: its sequence counter, retained history and live subscribers.
 * Subscribers are hibernatable WebSockets tagged with their kind, so an idle channel costs
 * nothing; SSE subscribers reach the room the same way, through a socket held by the Worker.
 */
export class Room extends DurableObject<Env> {
  readonly #config: RelayConfig;
  readonly #store: MessageStore;
  #channel: string | undefined;
  /** When the retention alarm fires; null when none is set. */
  #alarmAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#config = readConfig(env);
    this.#store = new MessageStore(ctx.storage);
    this.#channel = this.#store.getMeta("channel") as string | undefined;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  /** Stores a message and broadcasts it; resolves once it is durable. */
  async publish(channel: string, input: PublishInput): Promise<PublishResult> {
    this.#bind(channel);
    return this.#publish(input);
  }

  async history(channel: string, since: number, limit: number): Promise<HistoryPage> {
    this.#bind(channel);
    const notBefore = this.#notBefore();
    const messages = Array.from(this.#store.after(since, limit, notBefore), (m) => this.#envelope(m));
    return { messages, lastId: formatId(this.#store.lastSeq), oldestId: this.#oldestId(notBefore) };
  }

  async info(channel: string): Promise<ChannelInfo> {
    this.#bind(channel);
    const subscribers = { ws: 0, sse: 0, poll: 0 };
    for (const kind of SUBSCRIBER_KINDS) subscribers[kind] = this.ctx.getWebSockets(kind).length;
    return { channel, lastId: formatId(this.#store.lastSeq), oldestId: this.#oldestId(this.#notBefore()), subscribers };
  }

  /**
   * Accepts a subscriber socket handed over by the Worker. Everything from reading the replay to
   * joining the broadcast happens without an `await`, so no publish can fall between them.
   */
  override async fetch(request: Request): Promise<Response> {
    const params = readConnectRequest(request);
    if (!params) return new Response("expected a connect request from the relay Worker", { status: 400 });
    this.#bind(params.channel);

    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [params.kind]);
    server.serializeAttachment({ kind: params.kind, canPublish: params.canPublish } satisfies SocketAttachment);

    const format = subscriberFormats[params.kind];
    const greeting = format.subscribed({ type: ServerFrameType.Subscribed, channel: params.channel, lastId: formatId(this.#store.lastSeq) });
    if (greeting !== undefined) server.send(greeting);
    if (params.since !== undefined) this.#replay(server, format, params.since);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const { kind, canPublish } = ws.deserializeAttachment() as SocketAttachment;
    if (kind !== "ws") return;

    const parsed = parseClientFrame(raw, { maxDataBytes: this.#config.maxMessageBytes });
    if (!parsed.ok) return this.#sendFrame(ws, parsed.error);
    const { data, event = DEFAULT_EVENT, ref } = parsed.frame;
    if (!canPublish) {
      return this.#sendFrame(ws, errorFrame(ref, { code: "forbidden", message: "This connection may not publish to the channel." }));
    }
    const result = this.#publish({ data, event });
    if (result.status !== "conflict") this.#sendFrame(ws, { type: ServerFrameType.Ack, ref, id: result.message.id });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeQuietly(ws, code === 1005 || code === 1006 ? CloseCode.Normal : code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    closeQuietly(ws, CloseCode.InternalError, "socket error");
  }

  /** Retention: drops what is older than the TTL, then waits for the next message to expire. */
  override async alarm(): Promise<void> {
    const ttl = this.#config.historyTtlSeconds * 1000;
    this.#store.pruneOlderThan(Date.now() - ttl);
    const oldest = this.#store.oldestTs();
    this.#alarmAt = null;
    if (oldest !== null) this.#scheduleAlarm(oldest + ttl);
  }

  #publish(input: PublishInput): PublishResult {
    const notBefore = this.#notBefore();
    if (input.idempotencyKey !== undefined) {
      const first = this.#store.findByIdempotencyKey(input.idempotencyKey, notBefore);
      if (first) return { status: "duplicate", message: this.#envelope(first) };
    }
    if (input.ifMatch !== undefined && input.ifMatch !== this.#store.lastSeq) {
      return { status: "conflict", lastId: formatId(this.#store.lastSeq) };
    }
    const stored = this.#store.append({ ...input, ts: Date.now() }, this.#config.historyLimit);
    const message = this.#envelope(stored);
    this.#broadcast(message);
    if (this.#alarmAt === null) this.#scheduleAlarm(stored.ts + this.#config.historyTtlSeconds * 1000);
    return { status: "stored", message };
  }

  #broadcast(message: Envelope): void {
    for (const kind of SUBSCRIBER_KINDS) {
      const sockets = this.ctx.getWebSockets(kind);
      if (sockets.length === 0) continue;
      const text = subscriberFormats[kind].message(message);
      for (const ws of sockets) sendOrClose(ws, text);
    }
  }

  /** Sends what a subscriber missed after `since`: a gap notice first when some of it is gone. */
  #replay(ws: WebSocket, format: SubscriberFormat, since: number): void {
    const lastSeq = this.#store.lastSeq;
    if (since >= lastSeq) return;
    const notBefore = this.#notBefore();
    const oldest = this.#store.oldestSeq(notBefore);
    if (oldest === null || oldest > since + 1) {
      ws.send(format.gap(gapFrame(this.#channelName(), formatId(since), formatId(oldest ?? lastSeq + 1))));
    }
    for (const stored of this.#store.after(since, this.#config.historyLimit, notBefore)) {
      ws.send(format.message(this.#envelope(stored)));
    }
  }

  #sendFrame(ws: WebSocket, frame: ServerFrame): void {
    sendOrClose(ws, JSON.stringify(frame));
  }

  #envelope(stored: StoredMessage): Envelope {
    const envelope: Envelope = { type: "message", channel: this.#channelName(), id: formatId(stored.seq), event: stored.event, data: stored.data, ts: stored.ts };
    if (stored.encoding === "base64") envelope.encoding = "base64";
    return envelope;
  }

  /** Remembers which channel this room is, for envelopes built after a hibernation wake-up. */
  #bind(channel: string): void {
    if (this.#channel === channel) return;
    this.#channel = channel;
    this.#store.setMeta("channel", channel);
  }

  #channelName(): string {
    if (this.#channel === undefined) throw new Error("room used before its channel was named");
    return this.#channel;
  }

  #notBefore(): number {
    return Date.now() - this.#config.historyTtlSeconds * 1000;
  }

  #oldestId(notBefore: number): MessageId | null {
    const oldest = this.#store.oldestSeq(notBefore);
    return oldest === null ? null : formatId(oldest);
  }

  #scheduleAlarm(at: number): void {
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }
}

function errorFrame(ref: string | undefined, error: ErrorBody): ServerFrame {
  return ref === undefined ? { type: ServerFrameType.Error, error } : { type: ServerFrameType.Error, ref, error };
}

/** A send that throws means that socket is gone or broken: close it, and only it. */
function sendOrClose(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    closeQuietly(ws, CloseCode.InternalError, "send failed");
  }
}

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}
