import { DurableObject } from "cloudflare:workers";
import { tokenDeadlineMs } from "../auth/claims";
import { type RelayConfig, readConfig } from "../config";
import { asRelayError } from "../errors";
import { type ConnectionLease, releaseConnection } from "../limits/connections";
import { PublishMeter } from "../limits/token-bucket";
import { CloseCode } from "../protocol/close-codes";
import type { Envelope } from "../protocol/envelope";
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
import { MessageBatcher } from "./batcher";
import { type ConnectParams, type OwnSocket, readConnectRequest } from "./connect-request";
import { MessageStore, type StoredMessage } from "./message-store";
import { RoomObservers, type Watched } from "./observers";
import { admitPublish, socketPublisher } from "./publish";
import { PublishQueue } from "./publish-queue";
import { CatchUp, type ReplayReader, readReplayPage } from "./replay";
import type { PublishInput, SubscriberCounts } from "./room";
import { closeQuietly } from "./sockets";
import { type SubscriberFormat, subscriberFormats } from "./subscriber-formats";

/** Per-socket state that survives hibernation. */
interface SocketAttachment {
  clientId: string;
  /** The token's `sub`, when it has one. */
  subject?: string;
  transport: Transport;
  joinedAt: number;
  /** Set for a client's own channel socket, whose frames the room answers. */
  ownSocket?: OwnSocket;
  /** The client's token's `exp`, in seconds since the epoch; closed at tokenDeadlineMs(expiresAt). */
  expiresAt?: number;
  lease?: ConnectionLease;
  /** Set once its leave was announced, so a close and an error announce it once. */
  left?: true;
  /** Takes batch frames: its messages go out through the room's batcher. */
  batch?: true;
  /** Set while it is sent its replay page by page; a room evicted meanwhile closes it so it resumes. */
  catchingUp?: true;
}

/**
 * Hibernation tags: every socket takes messages, one at a time or in batch frames; found by its
 * transport and whether it wants presence.
 */
const Tag = {
  messages: "json",
  batchMessages: "json:batch",
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
 * A Durable Object that holds subscribers of one channel and sends them its messages: the channel's
 * room (which also numbers and stores them, src/room/room.ts) and each shard of a hot channel (which
 * follows the room, src/fanout/shard.ts). Both hold subscribers exactly the same way, here:
 * hibernatable WebSockets (a client's own channel socket, or an internal socket the Worker holds
 * for multi-channel and long-poll clients) and single-channel SSE streams (SSEStreams), which keep
 * the object awake while it has any, in exchange for writing each message's bytes to them without
 * a second hop. Messages come from `store`: the channel's log in a room, its replica in a shard.
 */
export abstract class Broadcaster extends DurableObject<Env> {
  protected readonly config: RelayConfig;
  protected readonly store: MessageStore;
  protected readonly observers: RoomObservers;
  #channel: string | undefined;
  /** When the alarm fires (retention, token expiry); null when none is set. */
  #alarmAt: number | null = null;
  /** Publish rate per client socket; starting afresh after hibernation is fine. */
  readonly #meters = new WeakMap<WebSocket, PublishMeter>();
  /** Each client socket's publishes in flight; none is, when the object hibernates. */
  readonly #publishQueues = new WeakMap<WebSocket, PublishQueue>();
  readonly #sse: SSEStreams;
  /** The last replay sent, kept until the next message: a reconnect storm reads and encodes it once. */
  #lastReplay: { format: SubscriberFormat; batch: boolean; since: number; lastSeq: number; at: number; frames: string[] } | undefined;
  /** Coalesces messages for the sockets that take batch frames. */
  readonly #batcher: MessageBatcher;
  /** Sockets still being sent a replay longer than a page; live messages wait for it. */
  readonly #catchUp: CatchUp;

  constructor(ctx: DurableObjectState, env: Env, { webhooks }: { webhooks: boolean }) {
    super(ctx, env);
    this.config = readConfig(env);
    this.store = new MessageStore(ctx.storage);
    this.#sse = new SSEStreams({
      keepaliveSeconds: this.config.keepaliveSeconds,
      bufferBytes: this.config.sseBufferBytes,
      onEnd: (subscriber, { fellBehind }) => this.#streamEnded(subscriber, fellBehind),
    });
    this.observers = new RoomObservers({
      ctx,
      env,
      config: this.config,
      store: this.store,
      webhooks,
      channel: () => this.channelName(),
      subscribers: () => this.#watched(),
    });
    this.#channel = this.store.getMeta("channel") as string | undefined;
    this.#batcher = new MessageBatcher({
      maxDelayMs: this.config.batchMaxDelayMs,
      maxBytes: this.config.batchMaxBytes,
      send: (frame) => {
        // A socket still catching up reads these messages from the store with its next replay page.
        for (const ws of this.ctx.getWebSockets(Tag.batchMessages)) if (!this.#catchUp.has(ws)) sendOrClose(ws, frame);
      },
      setTimer: (fn, ms) => setTimeout(fn, ms),
    });
    this.#catchUp = new CatchUp({
      page: (since, ws) => {
        // What waits in the batcher is in this page: the others get it now, this socket from the page.
        this.#batcher.flush();
        return readReplayPage(this.#replayReader(), subscriberFormats.json, since, { batchMaxBytes: this.#batchMaxBytesOf(ws) });
      },
      lastSeq: () => this.store.lastSeq,
      started: (ws, first) => {
        ws.serializeAttachment({ ...attachmentOf(ws), catchingUp: true } satisfies SocketAttachment);
        if (first) this.store.setMeta("catching_up", 1);
      },
      done: (ws, idle) => {
        if (ws.readyState === WebSocket.OPEN) ws.serializeAttachment({ ...attachmentOf(ws), catchingUp: undefined } satisfies SocketAttachment);
        if (idle) this.store.setMeta("catching_up", 0);
      },
    });
    if (this.store.getMeta("catching_up") === 1) this.#closeInterruptedReplays();
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  /** What the Worker asks of the subscribers here: they are counted, listed and found by lease here. */
  protected localCounts(): SubscriberCounts {
    const counts = { ws: 0, sse: 0, poll: 0 };
    for (const transport of TRANSPORTS) counts[transport] = this.ctx.getWebSockets(Tag.transport(transport)).length;
    counts.sse += this.#sse.size;
    return counts;
  }

  protected localMembers(): PresenceMember[] {
    const members = this.#sse.members();
    for (const ws of this.ctx.getWebSockets()) {
      const member = memberOf(ws);
      if (member) members.push(member);
    }
    return members;
  }

  /** Which of these connection leases a subscriber here still holds. */
  protected localLeases(leaseIds: string[]): string[] {
    const held = new Set<string>();
    for (const ws of this.ctx.getWebSockets()) {
      const { lease, left } = attachmentOf(ws);
      if (lease && !left) held.add(lease.id);
    }
    for (const lease of this.#sse.leases()) held.add(lease.id);
    return leaseIds.filter((id) => held.has(id));
  }

  /** Subscribers held here, of every kind. */
  protected get subscriberCount(): number {
    return this.ctx.getWebSockets().length + this.#sse.size;
  }

  /** The most subscribers this object holds. */
  protected abstract capacity(): number;

  /**
   * Runs before a newcomer is taken, and may make it wait (a promise): a shard makes sure it follows
   * the room and holds what the newcomer resumes from. A room has nothing to wait for, so its
   * newcomers are taken in the turn they arrive.
   */
  protected prepare(_params: ConnectParams): Promise<void> | undefined {
    return undefined;
  }

  /** The answer for a newcomer that belongs elsewhere (a room whose channel fanned out by itself sends it to a shard). */
  protected elsewhere(_params: ConnectParams): Response | undefined {
    return undefined;
  }

  /**
   * Stores a publish from a client's own socket; resolves with the id to acknowledge once the
   * message has gone out here (the publisher gets it before its ack), or undefined for none.
   */
  protected abstract storeFromSocket(input: PublishInput): Promise<MessageId | undefined>;

  /** A subscriber here joined or left (a shard tells the rest of the tree). */
  protected announced(_frame: PresenceFrame): void {}

  /**
   * Takes a subscriber handed over by the Worker: a socket, or an SSE stream it answers with.
   * Everything from reading the replay to joining the broadcast happens without an `await`, so no
   * publish can fall between them.
   */
  override async fetch(request: Request): Promise<Response> {
    const params = readConnectRequest(request);
    if (!params) return new RelayError("invalid_request", "Expected a connect request from the relay Worker.").toResponse();
    this.bind(params.channel);
    const elsewhere = this.elsewhere(params);
    if (elsewhere) return elsewhere;
    const preparing = this.prepare(params);
    if (preparing) {
      try {
        await preparing;
      } catch (error) {
        return asRelayError(error).toResponse();
      }
    }
    const refusal = this.#refuseNewcomer(params.transport);
    if (refusal) return refusal.toResponse();
    if (params.delivery === "stream") return this.#openStream(params);

    // What waits was read into the replay, or is before the newcomer's start: it must not get it again.
    if (params.batch) this.#batcher.flush();
    const { 0: client, 1: server } = new WebSocketPair();
    this.#accept(server, params);
    this.#greet(
      (text) => {
        server.send(text);
        return true;
      },
      subscriberFormats.json,
      params,
      server,
    );
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const { ownSocket, batch } = attachmentOf(ws);
    if (!ownSocket) return;
    const queue = this.#publishQueueOf(ws);
    if (queue.leaving) return;

    const parsed = parseClientFrame(raw, { maxDataBytes: this.config.maxMessageBytes, maxFrameBytes: this.config.maxFrameBytes });
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
    if (verdict === "disconnect") {
      this.observers.forcedClose("ws", CloseCode.RateLimited, "publishing too fast");
      return queue.leave(() => closeQuietly(ws, CloseCode.RateLimited, "publishing too fast"));
    }
    if (verdict === "refuse") {
      const error = { code: "rate_limited", message: `Publishing faster than ${this.config.wsPublishRate}/s; slow down.` } as const;
      return queue.run(() => this.#sendFrame(ws, errorFrame(frame.ref, error)));
    }
    // The same path as every other publish; its checks start now, beside earlier frames' waits,
    // and the queue stores and answers in the order sent.
    const request = { channel: this.channelName(), data: frame.data, event: frame.event, idempotencyKey: frame.idempotencyKey };
    const admitted = admitPublish(this.env, this.config, socketPublisher(ownSocket), request);
    admitted.catch(() => {});
    return queue.run(async () => {
      try {
        const { input } = await admitted;
        const id = await this.storeFromSocket(input);
        if (id === undefined) return;
        const ack = () => this.#sendFrame(ws, { type: ServerFrameType.Ack, ref: frame.ref, id });
        // The publisher gets its own message before the ack, also when the message waits for a batch.
        if (batch) this.#batcher.afterFlush(ack);
        else ack();
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

  /**
   * Retention, token expiry and silent clients: drops what is older than the TTL, closes expired
   * connections and sockets whose pings stopped, waits for the next.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.store.pruneOlderThan(now - this.config.historyTtlSeconds * 1000);
    this.#lastReplay = undefined;
    for (const ws of this.ctx.getWebSockets()) {
      const { expiresAt } = attachmentOf(ws);
      if (expiresAt !== undefined && tokenDeadlineMs(expiresAt) <= now) {
        this.#leave(ws);
        this.observers.forcedClose(attachmentOf(ws).transport, CloseCode.TokenExpired, "token expired");
        closeQuietly(ws, CloseCode.TokenExpired, "token expired");
      } else if (this.#lastPing(ws) + this.#pingTimeoutMs() <= now) {
        this.#leave(ws);
        closeQuietly(ws, CloseCode.GoingAway, `no ping for ${this.config.pingTimeoutSeconds} s`);
      }
    }
    this.#sse.endExpired(now);
    this.#alarmAt = null;
    this.#scheduleNextAlarm();
  }

  /** Sends a stored message to every subscriber here; returns its envelope. */
  protected deliver(stored: StoredMessage): Envelope {
    this.#lastReplay = undefined;
    const message = this.envelope(stored);
    const sent = this.#broadcast(Tag.messages, (format) => format.message(message));
    // With no socket taking batches, nobody needs it now: a newcomer reads it in its replay.
    const batchSockets = this.ctx.getWebSockets(Tag.batchMessages).length;
    if (batchSockets > 0) this.#batcher.add(subscriberFormats.json.message(message));
    this.observers.delivered(sent + batchSockets);
    this.scheduleAlarm(stored.ts + this.config.historyTtlSeconds * 1000);
    return message;
  }

  /** Tells every subscriber here that messages after `after` up to `oldest` are gone (a shard that fell behind the room's retention). */
  protected deliverGap(after: number, oldest: number): void {
    this.#lastReplay = undefined;
    const frame: GapFrame = { type: ServerFrameType.Gap, channel: this.channelName(), after: formatId(after), oldest: formatId(oldest) };
    this.#batcher.flush();
    const text = subscriberFormats.json.gap(frame);
    for (const ws of this.ctx.getWebSockets()) if (!this.#catchUp.has(ws)) sendOrClose(ws, text);
    if (this.#sse.size > 0) this.#sse.broadcast(subscriberFormats.sse.gap(frame));
    this.observers.gap();
  }

  #accept(ws: WebSocket, params: ConnectParams): void {
    const tags = [params.batch ? Tag.batchMessages : Tag.messages, Tag.transport(params.transport)];
    if (params.presence) tags.push(Tag.presence);
    const attachment: SocketAttachment = {
      clientId: params.clientId,
      subject: params.subject,
      transport: params.transport,
      joinedAt: Date.now(),
      ownSocket: params.ownSocket,
      expiresAt: params.expiresAt,
      lease: params.lease,
    };
    if (params.batch) attachment.batch = true;
    if (params.expiresAt !== undefined) this.scheduleAlarm(tokenDeadlineMs(params.expiresAt));
    // Whether the client pings is seen once its first ping period is over (pings do not wake the room).
    if (params.ownSocket) this.scheduleAlarm(attachment.joinedAt + this.#pingTimeoutMs());
    // Announced before the newcomer is accepted, so it is not told of itself.
    if (isPresenceMember(attachment.transport)) this.#announce(ServerFrameType.Join, memberOfAttachment(attachment));
    this.observers.joined(attachment);
    this.ctx.acceptWebSocket(ws, tags);
    ws.serializeAttachment(attachment);
  }

  #leave(ws: WebSocket): void {
    const attachment = attachmentOf(ws);
    if (attachment.left) return;
    this.observers.left(attachment);
    ws.serializeAttachment({ ...attachment, left: true } satisfies SocketAttachment);
    this.ctx.waitUntil(releaseConnection(this.env, attachment.lease));
    if (isPresenceMember(attachment.transport)) this.#announce(ServerFrameType.Leave, memberOfAttachment(attachment), ws);
  }

  #openStream(params: ConnectParams): Response {
    const subscriber: SSESubscriber = {
      member: { id: params.clientId, transport: "sse", since: Date.now() },
      subject: params.subject,
      presence: params.presence ?? false,
      expiresAt: params.expiresAt,
      lease: params.lease,
    };
    if (params.expiresAt !== undefined) this.scheduleAlarm(tokenDeadlineMs(params.expiresAt));
    // Announced before the newcomer joins, so it is not told of itself.
    this.#announce(ServerFrameType.Join, subscriber.member);
    this.observers.joined({ subject: subscriber.subject, transport: "sse" });
    return this.#sse.open(subscriber, (send) => this.#greet(send, subscriberFormats.sse, params));
  }

  #streamEnded({ member, lease, subject }: SSESubscriber, fellBehind: boolean): void {
    this.ctx.waitUntil(releaseConnection(this.env, lease));
    if (fellBehind) this.observers.dropped("sse");
    this.observers.left({ subject, transport: "sse" });
    this.#announce(ServerFrameType.Leave, member);
  }

  #announce(type: PresenceFrame["type"], subscriber: PresenceMember, except?: WebSocket): void {
    const frame: PresenceFrame = { type, channel: this.channelName(), subscriber };
    this.broadcastPresence(frame, except);
    this.announced(frame);
  }

  /** Sends a join or leave to the subscribers here that asked for presence. */
  protected broadcastPresence(frame: PresenceFrame, except?: WebSocket): void {
    // Every subscriber sees presence in the same place among the messages.
    this.#batcher.flush();
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
  #broadcast(tag: string, encode: (format: SubscriberFormat) => string, except?: WebSocket, includeStream?: (s: SSESubscriber) => boolean): number {
    let sent = 0;
    const sockets = this.ctx.getWebSockets(tag);
    if (sockets.length > 0) {
      const text = encode(subscriberFormats.json);
      // A socket still catching up reads this message from the store with its next replay page.
      const waiting = tag === Tag.messages;
      for (const ws of sockets) {
        if (ws === except || (waiting && this.#catchUp.has(ws))) continue;
        sendOrClose(ws, text);
        sent += 1;
      }
    }
    if (this.#sse.size > 0) sent += this.#sse.broadcast(encode(subscriberFormats.sse), includeStream);
    return sent;
  }

  /** Every subscriber the room holds, as its observers count them. */
  *#watched(): Iterable<Watched> {
    for (const ws of this.ctx.getWebSockets()) {
      const { subject, transport, left } = attachmentOf(ws);
      if (!left) yield { subject, transport };
    }
    for (const { subject } of this.#sse.subscribers()) yield { subject, transport: "sse" };
  }

  /** Sends a newcomer its greeting, then what it missed after `since`; `socket` when it is one (its replay may then take several tasks). */
  #greet(send: (text: string) => boolean, format: SubscriberFormat, params: ConnectParams, socket?: WebSocket): void {
    const lastSeq = this.store.lastSeq;
    const since = params.since ?? this.#rewindStart(params.rewind);
    const greeting = format.subscribed({ type: ServerFrameType.Subscribed, channel: params.channel, lastId: formatId(lastSeq) }, since ?? lastSeq);
    if (greeting !== undefined) send(greeting);
    if (since !== undefined) this.#replay(send, format, since, socket, params.batch === true);
  }

  /** Where `rewind=N` starts: N messages back, but never before the oldest retained one (a rewind reports no gap). */
  #rewindStart(rewind: number | undefined): number | undefined {
    if (!rewind) return undefined;
    const lastSeq = this.store.lastSeq;
    const oldest = this.store.oldestSeq(this.notBefore()) ?? lastSeq + 1;
    return Math.max(lastSeq - rewind, oldest - 1);
  }

  /**
   * Sends what a subscriber missed after `since`, a page (REPLAY_PAGE_CHARS) at a time, in batch
   * frames for a `batch` socket. A socket gets the first page now and the rest from CatchUp, a page
   * per task; an SSE stream the room writes gets pages at once until it has all or its client
   * falls SSE_BUFFER_BYTES behind (its stream then ends and it resumes from there).
   */
  #replay(send: (text: string) => boolean, format: SubscriberFormat, since: number, socket: WebSocket | undefined, batch: boolean): void {
    const lastSeq = this.store.lastSeq;
    if (since >= lastSeq) return;
    const now = Date.now();
    const last = this.#lastReplay;
    // Reused only briefly, so the TTL boundary (HISTORY_TTL_SECONDS) moves by less than that meanwhile.
    if (last && last.format === format && last.batch === batch && last.since === since && last.lastSeq === lastSeq && now - last.at < REPLAY_REUSE_MS) {
      for (const frame of last.frames) send(frame);
      return;
    }
    this.#lastReplay = undefined;
    const reader = this.#replayReader();
    const pack = { batchMaxBytes: batch ? this.config.batchMaxBytes : undefined };
    let page = readReplayPage(reader, format, since, pack);
    if (page.gap) this.observers.gap();
    let open = true;
    for (const frame of page.frames) open = send(frame);
    if (page.until >= lastSeq) {
      // Kept only when small: on a quiet channel it stays until the next publish.
      if (page.chars <= REPLAY_KEEP_CHARS) this.#lastReplay = { format, batch, since, lastSeq, at: now, frames: page.frames };
      return;
    }
    if (socket) return this.#catchUp.start(socket, page.until);
    while (open && page.until < lastSeq) {
      page = readReplayPage(reader, format, page.until, pack);
      for (const frame of page.frames) open = send(frame);
    }
  }

  /** Replays to a socket that takes batch frames are packed as its live messages are. */
  #batchMaxBytesOf(ws: WebSocket): number | undefined {
    return attachmentOf(ws).batch ? this.config.batchMaxBytes : undefined;
  }

  #replayReader(): ReplayReader {
    return {
      store: this.store,
      channel: this.channelName(),
      notBefore: this.notBefore(),
      maxMessages: this.config.historyLimit,
      envelope: (stored) => this.envelope(stored),
    };
  }

  /** The room was evicted while sockets were sent their replay page by page: they would miss the rest, so they resume instead. */
  #closeInterruptedReplays(): void {
    for (const ws of this.ctx.getWebSockets()) {
      if (!attachmentOf(ws).catchingUp) continue;
      this.#leave(ws);
      closeQuietly(ws, CloseCode.TryAgainLater, "replay interrupted; resume");
    }
    this.store.setMeta("catching_up", 0);
  }

  #sendFrame(ws: WebSocket, frame: ServerFrame): void {
    sendOrClose(ws, JSON.stringify(frame));
  }

  protected envelope(stored: StoredMessage): Envelope {
    const envelope: Envelope = {
      type: "message",
      channel: this.channelName(),
      id: formatId(stored.seq),
      event: stored.event,
      data: stored.data,
      ts: stored.ts,
    };
    if (stored.encoding === "base64") envelope.encoding = "base64";
    return envelope;
  }

  /** Remembers which channel this room is, for envelopes built after a hibernation wake-up. */
  protected bind(channel: string): void {
    if (this.#channel === channel) return;
    this.#channel = channel;
    this.store.setMeta("channel", channel);
  }

  protected channelName(): string {
    if (this.#channel === undefined) throw new Error("room used before its channel was named");
    return this.#channel;
  }

  protected notBefore(): number {
    return Date.now() - this.config.historyTtlSeconds * 1000;
  }

  protected oldestId(notBefore: number): MessageId | null {
    const oldest = this.store.oldestSeq(notBefore);
    return oldest === null ? null : formatId(oldest);
  }

  /** Sets the alarm for `at` unless it already fires sooner (an alarm time already past is not trusted to fire). */
  protected scheduleAlarm(at: number): void {
    if (this.#alarmAt !== null && this.#alarmAt > Date.now() && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  #scheduleNextAlarm(): void {
    const oldest = this.store.oldestTs();
    if (oldest !== null) this.scheduleAlarm(oldest + this.config.historyTtlSeconds * 1000);
    const now = Date.now();
    for (const ws of this.ctx.getWebSockets()) {
      const { expiresAt, left, ownSocket, joinedAt } = attachmentOf(ws);
      if (left) continue;
      if (expiresAt !== undefined) this.scheduleAlarm(tokenDeadlineMs(expiresAt));
      // Only sockets that ping keep the room checking; one that has not pinged yet is looked at once, at the end of its first period.
      const pingCheck = this.#lastPing(ws) + this.#pingTimeoutMs();
      if (Number.isFinite(pingCheck)) this.scheduleAlarm(pingCheck);
      else if (ownSocket && joinedAt + this.#pingTimeoutMs() > now) this.scheduleAlarm(joinedAt + this.#pingTimeoutMs());
    }
    for (const deadline of this.#sse.tokenDeadlines()) this.scheduleAlarm(deadline);
  }

  /** When the socket's client last sent `{"type":"ping"}` (the runtime answers it, also while the room hibernates); Infinity if it never did. */
  #lastPing(ws: WebSocket): number {
    return this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? Number.POSITIVE_INFINITY;
  }

  #pingTimeoutMs(): number {
    return this.config.pingTimeoutSeconds * 1000;
  }

  /** The limits a new subscriber must fit in, as the error to answer when it does not. */
  #refuseNewcomer(transport: Transport): RelayError | undefined {
    const retry = { headers: { "Retry-After": "1" } };
    const capacity = this.capacity();
    if (this.subscriberCount >= capacity) {
      return new RelayError(
        "rate_limited",
        `This channel has its ${capacity} subscribers here (MAX_SUBSCRIBERS_PER_CHANNEL, MAX_SUBSCRIBERS_PER_SHARD); retry later.`,
        retry,
      );
    }
    if (transport === "poll" && this.ctx.getWebSockets(Tag.transport("poll")).length >= this.config.maxPollersPerChannel) {
      return new RelayError(
        "rate_limited",
        `This channel already has ${this.config.maxPollersPerChannel} waiting long-polls (MAX_POLLERS_PER_CHANNEL); retry shortly.`,
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
      meter = new PublishMeter(this.config.wsPublishRate, this.config.wsPublishBurst);
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
