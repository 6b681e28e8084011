import { DurableObject } from "cloudflare:workers";
import { type RelayConfig, readConfig } from "../config";
import { asRelayError } from "../errors";
import { type ConnectionLease, releaseConnection } from "../limits/connections";
import { PublishMeter } from "../limits/token-bucket";
import { CloseCode } from "../protocol/close-codes";
import type { EncodedData, Envelope } from "../protocol/envelope";
import type { ErrorBody } from "../protocol/errors";
import { RelayError } from "../protocol/errors";
import {
  ClientFrameType,
  type GapFrame,
  PING_FRAME,
  PONG_FRAME,
  type PresenceFrame,
  type PresenceMember,
  parseClientFrame,
  type ServerFrame,
  ServerFrameType,
} from "../protocol/frames";
import { formatId, type MessageId } from "../protocol/ids";
import type { Transport } from "../protocol/transports";
import { TRANSPORTS } from "../protocol/transports";
import { SSEStreams, type SSESubscriber } from "../sse/room-streams";
import { type ConnectParams, type OwnSocket, readConnectRequest } from "./connect-request";
import { MessageStore, type StoredMessage } from "./message-store";
import { admitPublish, socketPublisher } from "./publish";
import { PublishQueue } from "./publish-queue";
import { closeQuietly } from "./sockets";
import { type SubscriberFormat, subscriberFormats } from "./subscriber-formats";

export interface PublishInput extends EncodedData {
  event: string;
  idempotencyKey?: string;
  /** Store only if the channel's last id is this one. */
  ifMatch?: number;
}

export type PublishResult = { status: "stored" | "duplicate"; message: Envelope } | { status: "conflict"; lastId: MessageId };

export interface HistoryPage {
  messages: Envelope[];
  lastId: MessageId;
  oldestId: MessageId | null;
}

export type SubscriberCounts = Record<Transport, number>;

export interface ChannelInfo {
  channel: string;
  lastId: MessageId;
  oldestId: MessageId | null;
  subscribers: SubscriberCounts;
}

export interface PresenceList {
  channel: string;
  subscribers: PresenceMember[];
  counts: SubscriberCounts;
}

/** Per-socket state that survives hibernation. */
interface SocketAttachment {
  clientId: string;
  transport: Transport;
  joinedAt: number;
  /** Set for a client's own channel socket, whose frames the room answers. */
  ownSocket?: OwnSocket;
  /** When the client's token expires, in seconds since the epoch. */
  expiresAt?: number;
  lease?: ConnectionLease;
  /** Set once its leave was announced, so a close and an error announce it once. */
  left?: true;
}

/** Hibernation tags: every socket takes messages; found by its transport and whether it wants presence. */
const Tag = {
  messages: "json",
  transport: (transport: Transport) => `t:${transport}`,
  presence: "presence:json",
};

/** How long the same replay is sent again without reading it anew, and how large one may be kept. */
const REPLAY_REUSE_MS = 1000;
const REPLAY_KEEP_CHARS = 256 * 1024;

/** Long-pollers come and go with each request; presence lists the connections that stay. */
function isPresenceMember(transport: Transport): transport is PresenceMember["transport"] {
  return transport !== "poll";
}

/**
 * One channel: its sequence counter, retained history and live subscribers.
 * WebSocket subscribers are hibernatable, so a channel with only those costs nothing while idle: a
 * client's own WebSocket, or an internal socket the Worker holds for multi-channel and long-poll
 * clients. Single-channel SSE streams are held here too (SSEStreams), which keeps the room awake
 * while it has any, in exchange for writing each message's bytes to them without a second hop.
 */
export class Room extends DurableObject<Env> {
  readonly #config: RelayConfig;
  readonly #store: MessageStore;
  #channel: string | undefined;
  /** When the alarm fires (retention, token expiry); null when none is set. */
  #alarmAt: number | null = null;
  /** Publish rate per client socket; starting afresh after hibernation is fine. */
  readonly #meters = new WeakMap<WebSocket, PublishMeter>();
  /** Each client socket's publishes in flight; none is, when the room hibernates. */
  readonly #publishQueues = new WeakMap<WebSocket, PublishQueue>();
  readonly #sse: SSEStreams;
  /** The last replay sent, kept until the next publish: a reconnect storm reads and encodes it once. */
  #lastReplay: { format: SubscriberFormat; since: number; lastSeq: number; at: number; frames: string[] } | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#config = readConfig(env);
    this.#store = new MessageStore(ctx.storage);
    this.#sse = new SSEStreams({
      keepaliveSeconds: this.#config.keepaliveSeconds,
      bufferBytes: this.#config.sseBufferBytes,
      onEnd: (subscriber) => this.#streamEnded(subscriber),
    });
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

  /** Stores several messages in the order given, each with its own result (a batch's entries for this channel). */
  async publishAll(channel: string, inputs: PublishInput[]): Promise<PublishResult[]> {
    this.#bind(channel);
    return inputs.map((input) => this.#publish(input));
  }

  async history(channel: string, since: number, limit: number): Promise<HistoryPage> {
    this.#bind(channel);
    const notBefore = this.#notBefore();
    const messages = Array.from(this.#store.after(since, limit, notBefore), (m) => this.#envelope(m));
    return { messages, lastId: formatId(this.#store.lastSeq), oldestId: this.#oldestId(notBefore) };
  }

  async info(channel: string): Promise<ChannelInfo> {
    this.#bind(channel);
    return { channel, lastId: formatId(this.#store.lastSeq), oldestId: this.#oldestId(this.#notBefore()), subscribers: this.#counts() };
  }

  async presence(channel: string): Promise<PresenceList> {
    this.#bind(channel);
    const subscribers = this.#sse.members();
    for (const ws of this.ctx.getWebSockets()) {
      const member = memberOf(ws);
      if (member) subscribers.push(member);
    }
    return { channel, subscribers, counts: this.#counts() };
  }

  /**
   * Takes a subscriber handed over by the Worker: a socket, or an SSE stream it answers with.
   * Everything from reading the replay to joining the broadcast happens without an `await`, so no
   * publish can fall between them.
   */
  override async fetch(request: Request): Promise<Response> {
    const params = readConnectRequest(request);
    if (!params) return new RelayError("invalid_request", "Expected a connect request from the relay Worker.").toResponse();
    this.#bind(params.channel);
    const refusal = this.#refuseNewcomer(params.transport);
    if (refusal) return refusal.toResponse();
    if (params.delivery === "stream") return this.#openStream(params);

    const { 0: client, 1: server } = new WebSocketPair();
    this.#accept(server, params);
    this.#greet((text) => server.send(text), subscriberFormats.json, params);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const { ownSocket } = attachmentOf(ws);
    if (!ownSocket) return;
    const queue = this.#publishQueueOf(ws);
    if (queue.leaving) return;

    const parsed = parseClientFrame(raw, { maxDataBytes: this.#config.maxMessageBytes, maxFrameBytes: this.#config.maxFrameBytes });
    if (!parsed.ok) return queue.run(() => this.#sendFrame(ws, parsed.error));
    const frame = parsed.frame;
    if (frame.type !== ClientFrameType.Publish) {
      const error = { code: "invalid_frame", message: `A channel's own socket takes publish frames; use /v1/ws to ${frame.type}.` } as const;
      return queue.run(() => this.#sendFrame(ws, errorFrame(frame.ref, error)));
    }
    if (frame.channel !== undefined && frame.channel !== this.#channel) {
      const error = { code: "invalid_channel", message: "This socket publishes only to its own channel; use /v1/ws for several." } as const;
      return queue.run(() => this.#sendFrame(ws, errorFrame(frame.ref, error)));
    }
    const verdict = this.#meterOf(ws).check(Date.now());
    if (verdict === "disconnect") return queue.leave(() => closeQuietly(ws, CloseCode.RateLimited, "publishing too fast"));
    if (verdict === "refuse") {
      const error = { code: "rate_limited", message: `Publishing faster than ${this.#config.wsPublishRate}/s; slow down.` } as const;
      return queue.run(() => this.#sendFrame(ws, errorFrame(frame.ref, error)));
    }
    // The same path as every other publish; its checks start now, beside earlier frames' waits,
    // and the queue stores and answers in the order sent.
    const request = { channel: this.#channelName(), data: frame.data, event: frame.event, idempotencyKey: frame.idempotencyKey };
    const admitted = admitPublish(this.env, this.#config, socketPublisher(ownSocket), request);
    admitted.catch(() => {});
    return queue.run(async () => {
      try {
        const { input } = await admitted;
        const result = this.#publish(input);
        if (result.status !== "conflict") this.#sendFrame(ws, { type: ServerFrameType.Ack, ref: frame.ref, id: result.message.id });
      } catch (error) {
        const { code, message } = asRelayError(error);
        this.#sendFrame(ws, errorFrame(frame.ref, { code, message }));
      }
    });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#leave(ws);
    closeQuietly(ws, code === 1005 || code === 1006 ? CloseCode.Normal : code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#leave(ws);
    closeQuietly(ws, CloseCode.InternalError, "socket error");
  }

  /** Retention and token expiry: drops what is older than the TTL, closes expired connections, waits for the next. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.#store.pruneOlderThan(now - this.#config.historyTtlSeconds * 1000);
    this.#lastReplay = undefined;
    for (const ws of this.ctx.getWebSockets()) {
      const { expiresAt } = attachmentOf(ws);
      if (expiresAt !== undefined && expiresAt * 1000 <= now) {
        this.#leave(ws);
        closeQuietly(ws, CloseCode.TokenExpired, "token expired");
      }
    }
    this.#sse.endExpired(now / 1000);
    this.#alarmAt = null;
    this.#scheduleNextAlarm();
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
    this.#lastReplay = undefined;
    const message = this.#envelope(stored);
    this.#broadcast(Tag.messages, (format) => format.message(message));
    this.#scheduleAlarm(stored.ts + this.#config.historyTtlSeconds * 1000);
    return { status: "stored", message };
  }

  #accept(ws: WebSocket, params: ConnectParams): void {
    const tags = [Tag.messages, Tag.transport(params.transport)];
    if (params.presence) tags.push(Tag.presence);
    const attachment: SocketAttachment = {
      clientId: params.clientId,
      transport: params.transport,
      joinedAt: Date.now(),
      ownSocket: params.ownSocket,
      expiresAt: params.expiresAt,
      lease: params.lease,
    };
    if (params.expiresAt !== undefined) this.#scheduleAlarm(params.expiresAt * 1000);
    // Announced before the newcomer is accepted, so it is not told of itself.
    if (isPresenceMember(attachment.transport)) this.#announce(ServerFrameType.Join, memberOfAttachment(attachment));
    this.ctx.acceptWebSocket(ws, tags);
    ws.serializeAttachment(attachment);
  }

  #leave(ws: WebSocket): void {
    const attachment = attachmentOf(ws);
    if (attachment.left) return;
    ws.serializeAttachment({ ...attachment, left: true } satisfies SocketAttachment);
    this.ctx.waitUntil(releaseConnection(this.env, attachment.lease));
    if (isPresenceMember(attachment.transport)) this.#announce(ServerFrameType.Leave, memberOfAttachment(attachment), ws);
  }

  #openStream(params: ConnectParams): Response {
    const subscriber: SSESubscriber = {
      member: { id: params.clientId, transport: "sse", since: Date.now() },
      presence: params.presence ?? false,
      expiresAt: params.expiresAt,
      lease: params.lease,
    };
    if (params.expiresAt !== undefined) this.#scheduleAlarm(params.expiresAt * 1000);
    // Announced before the newcomer joins, so it is not told of itself.
    this.#announce(ServerFrameType.Join, subscriber.member);
    return this.#sse.open(subscriber, (send) => this.#greet(send, subscriberFormats.sse, params));
  }

  #streamEnded({ member, lease }: SSESubscriber): void {
    this.ctx.waitUntil(releaseConnection(this.env, lease));
    this.#announce(ServerFrameType.Leave, member);
  }

  #announce(type: PresenceFrame["type"], subscriber: PresenceMember, except?: WebSocket): void {
    const frame: PresenceFrame = { type, channel: this.#channelName(), subscriber };
    this.#broadcast(
      Tag.presence,
      (format) => format.presence(frame),
      except,
      (s) => s.presence,
    );
  }

  /**
   * Sends to the sockets with `tag` (JSON frames) and the SSE streams `includeStream` accepts
   * (SSE text), encoding once per format that has someone to send to.
   */
  #broadcast(tag: string, encode: (format: SubscriberFormat) => string, except?: WebSocket, includeStream?: (s: SSESubscriber) => boolean): void {
    const sockets = this.ctx.getWebSockets(tag);
    if (sockets.length > 0) {
      const text = encode(subscriberFormats.json);
      for (const ws of sockets) if (ws !== except) sendOrClose(ws, text);
    }
    if (this.#sse.size > 0) this.#sse.broadcast(encode(subscriberFormats.sse), includeStream);
  }

  /** Sends a newcomer its greeting, then what it missed after `since`. */
  #greet(send: (text: string) => void, format: SubscriberFormat, params: ConnectParams): void {
    const lastSeq = this.#store.lastSeq;
    const greeting = format.subscribed({ type: ServerFrameType.Subscribed, channel: params.channel, lastId: formatId(lastSeq) }, params.since ?? lastSeq);
    if (greeting !== undefined) send(greeting);
    if (params.since !== undefined) this.#replay(send, format, params.since);
  }

  /** Sends what a subscriber missed after `since`: a gap notice first when some of it is gone. */
  #replay(send: (text: string) => void, format: SubscriberFormat, since: number): void {
    const lastSeq = this.#store.lastSeq;
    if (since >= lastSeq) return;
    const now = Date.now();
    const last = this.#lastReplay;
    // Reused only briefly, so the TTL boundary (HISTORY_TTL_SECONDS) moves by less than that meanwhile.
    if (last && last.format === format && last.since === since && last.lastSeq === lastSeq && now - last.at < REPLAY_REUSE_MS) {
      for (const frame of last.frames) send(frame);
      return;
    }
    this.#lastReplay = undefined;
    const frames: string[] = [];
    const notBefore = this.#notBefore();
    const oldest = this.#store.oldestSeq(notBefore);
    if (oldest === null || oldest > since + 1) {
      const gap: GapFrame = { type: ServerFrameType.Gap, channel: this.#channelName(), after: formatId(since), oldest: formatId(oldest ?? lastSeq + 1) };
      frames.push(format.gap(gap));
    }
    for (const stored of this.#store.after(since, this.#config.historyLimit, notBefore)) {
      frames.push(format.message(this.#envelope(stored)));
    }
    let chars = 0;
    for (const frame of frames) {
      send(frame);
      chars += frame.length;
    }
    // Kept only when small: on a quiet channel it stays until the next publish.
    if (chars <= REPLAY_KEEP_CHARS) this.#lastReplay = { format, since, lastSeq, at: now, frames };
  }

  #counts(): SubscriberCounts {
    const counts = { ws: 0, sse: 0, poll: 0 };
    for (const transport of TRANSPORTS) counts[transport] = this.ctx.getWebSockets(Tag.transport(transport)).length;
    counts.sse += this.#sse.size;
    return counts;
  }

  #sendFrame(ws: WebSocket, frame: ServerFrame): void {
    sendOrClose(ws, JSON.stringify(frame));
  }

  #envelope(stored: StoredMessage): Envelope {
    const envelope: Envelope = {
      type: "message",
      channel: this.#channelName(),
      id: formatId(stored.seq),
      event: stored.event,
      data: stored.data,
      ts: stored.ts,
    };
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

  /** Sets the alarm for `at` unless it already fires sooner (an alarm time already past is not trusted to fire). */
  #scheduleAlarm(at: number): void {
    if (this.#alarmAt !== null && this.#alarmAt > Date.now() && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  #scheduleNextAlarm(): void {
    const oldest = this.#store.oldestTs();
    if (oldest !== null) this.#scheduleAlarm(oldest + this.#config.historyTtlSeconds * 1000);
    for (const ws of this.ctx.getWebSockets()) {
      const { expiresAt, left } = attachmentOf(ws);
      if (expiresAt !== undefined && !left) this.#scheduleAlarm(expiresAt * 1000);
    }
    for (const expiresAt of this.#sse.expiries()) this.#scheduleAlarm(expiresAt * 1000);
  }

  /** The limits a new subscriber must fit in, as the error to answer when it does not. */
  #refuseNewcomer(transport: Transport): RelayError | undefined {
    const retry = { headers: { "Retry-After": "1" } };
    if (this.ctx.getWebSockets().length + this.#sse.size >= this.#config.maxSubscribersPerChannel) {
      return new RelayError(
        "rate_limited",
        `This channel has its ${this.#config.maxSubscribersPerChannel} subscribers (MAX_SUBSCRIBERS_PER_CHANNEL); retry later.`,
        retry,
      );
    }
    if (transport === "poll" && this.ctx.getWebSockets(Tag.transport("poll")).length >= this.#config.maxPollersPerChannel) {
      return new RelayError(
        "rate_limited",
        `This channel already has ${this.#config.maxPollersPerChannel} waiting long-polls (MAX_POLLERS_PER_CHANNEL); retry shortly.`,
        retry,
      );
    }
    return undefined;
  }

  #publishQueueOf(ws: WebSocket): PublishQueue {
    let queue = this.#publishQueues.get(ws);
    if (!queue) {
      queue = new PublishQueue();
      this.#publishQueues.set(ws, queue);
    }
    return queue;
  }

  #meterOf(ws: WebSocket): PublishMeter {
    let meter = this.#meters.get(ws);
    if (!meter) {
      meter = new PublishMeter(this.#config.wsPublishRate, this.#config.wsPublishBurst);
      this.#meters.set(ws, meter);
    }
    return meter;
  }
}

function attachmentOf(ws: WebSocket): SocketAttachment {
  return ws.deserializeAttachment() as SocketAttachment;
}

function memberOf(ws: WebSocket): PresenceMember | undefined {
  const attachment = attachmentOf(ws);
  if (attachment.left || !isPresenceMember(attachment.transport) || ws.readyState !== WebSocket.OPEN) return undefined;
  return memberOfAttachment(attachment);
}

function memberOfAttachment({ clientId, transport, joinedAt }: SocketAttachment): PresenceMember {
  return { id: clientId, transport, since: joinedAt } as PresenceMember;
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
