import { DurableObject } from "cloudflare:workers";
import { tokenDeadlineMs } from "../auth/claims";
import { type RelayConfig, readConfig } from "../config";
import { asRelayError } from "../errors";
import { releaseConnection } from "../limits/connections";
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
import { TRANSPORTS, type Transport } from "../protocol/transports";
import { SSEStreams } from "../sse/room-streams";
import type { ShardOccupants } from "../webhooks/events";
import { MessageBatcher } from "./batcher";
import { type ConnectParams, readConnectRequest } from "./connect-request";
import type { MessageLog, StoredMessage } from "./message-log";
import { MessageStore } from "./message-store";
import { RoomObservers } from "./observers";
import { admitPublish, socketPublisher } from "./publish";
import { PublishQueue } from "./publish-queue";
import { CatchUp, type ReplayReader, readReplayPage } from "./replay";
import type { PublishInput, SubscriberCounts } from "./room";
import { attachmentOf, isPresenceMember, SocketSubscribers, sendOrClose } from "./socket-subscribers";
import { closeQuietly } from "./sockets";
import { type SubscriberFormat, subscriberFormats } from "./subscriber-formats";
import type { Audience, Subscriber, SubscriberSet } from "./subscribers";

/** How long the same replay is sent again without reading it anew, and how large one may be kept. */
const REPLAY_REUSE_MS = 1000;
const REPLAY_KEEP_CHARS = 256 * 1024;

/**
 * A Durable Object that holds subscribers of one channel and sends them its messages: the channel's
 * room (which also numbers and stores them, src/room/room.ts) and each shard of a hot channel (which
 * follows the room, src/fanout/shard.ts). Both hold subscribers exactly the same way, here, in two
 * sets behind one interface (SubscriberSet): hibernatable WebSockets (SocketSubscribers: a client's
 * own channel socket, or an internal socket the Worker holds for multi-channel and long-poll
 * clients) and single-channel SSE streams (SSEStreams), which keep the object awake while it has
 * any, in exchange for writing each message's bytes to them without a second hop. Messages come
 * from `store`: the channel's log in a room, its replica in a shard.
 */
export abstract class Broadcaster extends DurableObject<Env> {
  protected readonly config: RelayConfig;
  /** The object's storage: settings and state it keeps, and in a room the channel's messages. */
  protected readonly store: MessageStore;
  protected readonly observers: RoomObservers;
  #channel: string | undefined;
  /** When the alarm fires (retention, token expiry); null when none is set. */
  #alarmAt: number | null = null;
  /** Publish rate per client socket; starting afresh after hibernation is fine. */
  readonly #meters = new WeakMap<WebSocket, PublishMeter>();
  /** Each client socket's publishes in flight; none is, when the object hibernates. */
  readonly #publishQueues = new WeakMap<WebSocket, PublishQueue>();
  readonly #sockets: SocketSubscribers;
  readonly #sse: SSEStreams;
  /** Every subscriber, by kind: what is asked of all of them is asked of each set. */
  readonly #sets: SubscriberSet[];
  /** The last replay sent, kept until the next message: a reconnect storm reads and encodes it once. */
  #lastReplay: { format: SubscriberFormat; batch: boolean; since: number; lastSeq: number; at: number; frames: string[] } | undefined;
  /** Coalesces messages for the sockets that take batch frames. */
  readonly #batcher: MessageBatcher;
  /** Sockets still being sent a replay longer than a page; live messages wait for it. */
  readonly #catchUp: CatchUp;

  constructor(ctx: DurableObjectState, env: Env, { role }: { role: "room" | "shard" }) {
    super(ctx, env);
    this.config = readConfig(env);
    this.store = new MessageStore(ctx.storage);
    this.#sockets = new SocketSubscribers(ctx, {
      waiting: (ws) => this.#catchUp.has(ws),
      expire: (ws) => {
        this.#leave(ws);
        this.observers.forcedClose(attachmentOf(ws).transport, CloseCode.TokenExpired, "token expired");
        closeQuietly(ws, CloseCode.TokenExpired, "token expired");
      },
    });
    this.#sse = new SSEStreams({
      keepaliveSeconds: this.config.keepaliveSeconds,
      bufferBytes: this.config.sseBufferBytes,
      onEnd: (subscriber, { fellBehind }) => {
        if (fellBehind) this.observers.dropped("sse");
        this.#left(subscriber);
      },
    });
    this.#sets = [this.#sockets, this.#sse];
    this.observers = new RoomObservers({
      ctx,
      env,
      config: this.config,
      store: this.store,
      role,
      reportOccupancy: (occupants) => this.reportOccupancy(occupants),
      channel: () => this.channelName(),
      subscribers: () => this.#everyone(),
    });
    this.#channel = this.store.getMeta("channel") as string | undefined;
    this.#batcher = new MessageBatcher({
      maxDelayMs: this.config.batchMaxDelayMs,
      maxBytes: this.config.batchMaxBytes,
      send: (frame) => {
        // A socket still catching up reads these messages from the store with its next replay page.
        for (const ws of this.#sockets.withBatches()) if (!this.#catchUp.has(ws)) sendOrClose(ws, frame);
      },
      setTimer: (fn, ms) => setTimeout(fn, ms),
    });
    this.#catchUp = new CatchUp({
      page: (since, ws) => {
        // What waits in the batcher is in this page: the others get it now, this socket from the page.
        this.#batcher.flush();
        return readReplayPage(this.#replayReader(), subscriberFormats.json, since, { batchMaxBytes: this.#batchMaxBytesOf(ws) });
      },
      lastSeq: () => this.log.lastSeq,
      started: (ws, first) => {
        this.#sockets.setCatchingUp(ws, true);
        if (first) this.store.setMeta("catching_up", 1);
      },
      done: (ws, idle) => {
        this.#sockets.setCatchingUp(ws, false);
        if (idle) this.store.setMeta("catching_up", 0);
      },
    });
    if (this.store.getMeta("catching_up") === 1) this.#closeInterruptedReplays();
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  /** The subscribers here, counted by transport. */
  protected localCounts(): SubscriberCounts {
    const counts = { ws: 0, sse: 0, poll: 0 };
    for (const transport of TRANSPORTS) for (const set of this.#sets) counts[transport] += set.count(transport);
    return counts;
  }

  /** The subscribers here that presence lists. */
  protected localMembers(): PresenceMember[] {
    return this.#everyone().flatMap(({ member }) => (member ? [member] : []));
  }

  /** Which of these connection leases a subscriber here still holds. */
  protected localLeases(leaseIds: string[]): string[] {
    const held = new Set(this.#everyone().flatMap(({ lease }) => (lease ? [lease.id] : [])));
    return leaseIds.filter((id) => held.has(id));
  }

  /** Subscribers held here, of every kind. */
  protected get subscriberCount(): number {
    return this.#sets.reduce((sum, set) => sum + set.size, 0);
  }

  /** Where subscribers are replayed from: the channel's log in a room, a shard's recent window. */
  protected abstract get log(): MessageLog;

  /** Some socket is being sent its replay page by page (what it reads must stay in `log` meanwhile). */
  protected get replaying(): boolean {
    return this.#catchUp.active;
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

  /** Tells the room who is connected here, for the channel's webhooks (a shard does; a room is the one told). */
  protected reportOccupancy(_occupants: ShardOccupants): Promise<void> {
    return Promise.resolve();
  }

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
    this.log.pruneOlderThan(now - this.config.historyTtlSeconds * 1000);
    this.#lastReplay = undefined;
    for (const set of this.#sets) set.endExpired(now);
    for (const ws of this.#sockets.all()) {
      if (attachmentOf(ws).left || this.#lastPing(ws) + this.#pingTimeoutMs() > now) continue;
      this.#leave(ws);
      closeQuietly(ws, CloseCode.GoingAway, `no ping for ${this.config.pingTimeoutSeconds} s`);
    }
    this.#alarmAt = null;
    this.#scheduleNextAlarm();
  }

  /** Sends a stored message to every subscriber here; returns its envelope. */
  protected deliver(stored: StoredMessage): Envelope {
    this.#lastReplay = undefined;
    const message = this.envelope(stored);
    const sent = this.#broadcast("messages", (format) => format.message(message));
    // With no socket taking batches, nobody needs it now: a newcomer reads it in its replay.
    const batchSockets = this.#sockets.withBatches().length;
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
    this.#sockets.broadcastToAll(this.#sockets.format.gap(frame));
    if (this.#sse.size > 0) this.#sse.broadcast(this.#sse.format.gap(frame), "messages");
    this.observers.gap();
  }

  #accept(ws: WebSocket, params: ConnectParams): void {
    const joinedAt = Date.now();
    if (params.expiresAt !== undefined) this.scheduleAlarm(tokenDeadlineMs(params.expiresAt));
    // Whether the client pings is seen once its first ping period is over (pings do not wake the room).
    if (params.ownSocket) this.scheduleAlarm(joinedAt + this.#pingTimeoutMs());
    // Announced before the newcomer is accepted, so it is not told of itself.
    if (isPresenceMember(params.transport)) this.#announce(ServerFrameType.Join, { id: params.clientId, transport: params.transport, since: joinedAt });
    this.observers.joined({ subject: params.subject, transport: params.transport });
    // The same time as in its join, so its leave names the same member.
    this.#sockets.accept(ws, params, joinedAt);
  }

  #leave(ws: WebSocket): void {
    const subscriber = this.#sockets.leave(ws);
    if (subscriber) this.#left(subscriber, ws);
  }

  #openStream(params: ConnectParams): Response {
    const subscriber: Subscriber = {
      transport: "sse",
      subject: params.subject,
      member: { id: params.clientId, transport: "sse", since: Date.now() },
      lease: params.lease,
    };
    if (params.expiresAt !== undefined) {
      subscriber.deadline = tokenDeadlineMs(params.expiresAt);
      this.scheduleAlarm(subscriber.deadline);
    }
    // Announced before the newcomer joins, so it is not told of itself.
    this.#announce(ServerFrameType.Join, subscriber.member!);
    this.observers.joined(subscriber);
    return this.#sse.open(subscriber, params.presence ?? false, (send) => this.#greet(send, this.#sse.format, params));
  }

  /** A subscriber of any kind is gone: observers hear of it, its connection slot is given back, presence subscribers are told. */
  #left(subscriber: Subscriber, ws?: WebSocket): void {
    this.observers.left(subscriber);
    this.ctx.waitUntil(releaseConnection(this.env, subscriber.lease));
    if (subscriber.member) this.#announce(ServerFrameType.Leave, subscriber.member, ws);
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
    this.#broadcast("presence", (format) => format.presence(frame), except);
  }

  /** Sends to every subscriber `audience` names, encoding once per kind that has someone to send to; returns how many. */
  #broadcast(audience: Audience, encode: (format: SubscriberFormat) => string, except?: WebSocket): number {
    let sent = 0;
    for (const set of this.#sets) if (set.size > 0) sent += set.broadcast(encode(set.format), audience, except);
    return sent;
  }

  #everyone(): Subscriber[] {
    return this.#sets.flatMap((set) => [...set.subscribers()]);
  }

  /** Sends a newcomer its greeting, then what it missed after `since`; `socket` when it is one (its replay may then take several tasks). */
  #greet(send: (text: string) => boolean, format: SubscriberFormat, params: ConnectParams, socket?: WebSocket): void {
    const lastSeq = this.log.lastSeq;
    const since = params.since ?? this.#rewindStart(params.rewind);
    const greeting = format.subscribed({ type: ServerFrameType.Subscribed, channel: params.channel, lastId: formatId(lastSeq) }, since ?? lastSeq);
    if (greeting !== undefined) send(greeting);
    if (since !== undefined) this.#replay(send, format, since, socket, params.batch === true);
  }

  /** Where `rewind=N` starts: N messages back, but never before the oldest retained one (a rewind reports no gap). */
  #rewindStart(rewind: number | undefined): number | undefined {
    if (!rewind) return undefined;
    const lastSeq = this.log.lastSeq;
    const oldest = this.log.oldestSeq(this.notBefore()) ?? lastSeq + 1;
    return Math.max(lastSeq - rewind, oldest - 1);
  }

  /**
   * Sends what a subscriber missed after `since`, a page (REPLAY_PAGE_CHARS) at a time, in batch
   * frames for a `batch` socket. A socket gets the first page now and the rest from CatchUp, a page
   * per task; an SSE stream the room writes gets pages at once until it has all or its client
   * falls SSE_BUFFER_BYTES behind (its stream then ends and it resumes from there).
   */
  #replay(send: (text: string) => boolean, format: SubscriberFormat, since: number, socket: WebSocket | undefined, batch: boolean): void {
    const lastSeq = this.log.lastSeq;
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
      log: this.log,
      channel: this.channelName(),
      notBefore: this.notBefore(),
      maxMessages: this.config.historyLimit,
      envelope: (stored) => this.envelope(stored),
    };
  }

  /** The room was evicted while sockets were sent their replay page by page: they would miss the rest, so they resume instead. */
  #closeInterruptedReplays(): void {
    for (const ws of this.#sockets.all()) {
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
    const oldest = this.log.oldestSeq(notBefore);
    return oldest === null ? null : formatId(oldest);
  }

  /** Sets the alarm for `at` unless it already fires sooner (an alarm time already past is not trusted to fire). */
  protected scheduleAlarm(at: number): void {
    if (this.#alarmAt !== null && this.#alarmAt > Date.now() && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  #scheduleNextAlarm(): void {
    const oldest = this.log.oldestTs();
    if (oldest !== null) this.scheduleAlarm(oldest + this.config.historyTtlSeconds * 1000);
    for (const { deadline } of this.#everyone()) if (deadline !== undefined) this.scheduleAlarm(deadline);
    const now = Date.now();
    for (const ws of this.#sockets.all()) {
      const { left, ownSocket, joinedAt } = attachmentOf(ws);
      if (left) continue;
      // Only sockets that ping keep the room checking; one that has not pinged yet is looked at once, at the end of its first period.
      const pingCheck = this.#lastPing(ws) + this.#pingTimeoutMs();
      if (Number.isFinite(pingCheck)) this.scheduleAlarm(pingCheck);
      else if (ownSocket && joinedAt + this.#pingTimeoutMs() > now) this.scheduleAlarm(joinedAt + this.#pingTimeoutMs());
    }
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
    if (transport === "poll" && this.localCounts().poll >= this.config.maxPollersPerChannel) {
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

function errorFrame(ref: string | undefined, error: ErrorBody): ServerFrame {
  return ref === undefined ? { type: ServerFrameType.Error, error } : { type: ServerFrameType.Error, ref, error };
}
