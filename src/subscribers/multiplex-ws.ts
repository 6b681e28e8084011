import { tokenDeadlineMs } from "../auth/claims";
import type { Action, Grant } from "../auth/policy";
import type { RelayConfig } from "../config";
import { asRelayError } from "../errors";
import { PublishMeter } from "../limits/token-bucket";
import { logEvent } from "../observability/log";
import { unpackFrame } from "../protocol/batch";
import { CloseCode } from "../protocol/close-codes";
import type { ErrorCode } from "../protocol/errors";
import {
  ClientFrameType,
  PING_FRAME,
  PONG_FRAME,
  type PublishFrame,
  parseClientFrame,
  type ServerFrame,
  ServerFrameType,
  type SubscribeFrame,
  type UnsubscribeFrame,
} from "../protocol/frames";
import { admitPublish, type Publisher, store } from "../room/publish";
import { PublishQueue } from "../room/publish-queue";
import { closeQuietly } from "../room/sockets";
import { openRoomSocket } from "../room/stub";

export interface MultiplexContext {
  env: Env;
  config: RelayConfig;
  /** The upgrade request's authorization, asked again for every channel. */
  authorize(channel: string, action: Action): Grant;
  clientId: string;
  /** The token's `sub`, when it has one. */
  subject?: string;
  /** Who publishes on this socket: authorized per channel, counted against the rate limit. */
  publisher: Publisher;
  /** Called once when the session ends. */
  onClose(): void;
  /** The token's `exp` (seconds since the epoch): the session ends at tokenDeadlineMs(expiresAt), publishing included. */
  expiresAt?: number;
  /** The client asked for batch frames (`?frames=batch`). */
  batchFrames: boolean;
}

/** One subscription's link to its room; the socket is there once the room answered. */
interface RoomLink {
  socket?: WebSocket;
}

/**
 * One client WebSocket over many channels. The Worker holds the client's socket and keeps one
 * internal socket per subscribed channel to that channel's room (which hibernates as usual).
 * Rooms send batch frames on those sockets; room frames are forwarded to a client that takes batch
 * frames untouched, and to one that does not with each batch taken apart into its envelopes.
 */
export class MultiplexSession {
  readonly #client: WebSocket;
  readonly #context: MultiplexContext;
  /** Subscribed channels and their links to the rooms. */
  readonly #rooms = new Map<string, RoomLink>();
  /** Publishes are stored and acknowledged in the order the client sent them; leaving waits for them. */
  readonly #publishes = new PublishQueue();
  readonly #meter: PublishMeter;
  #closed = false;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  /** Armed by each ping: a client that pinged and then fell silent for PING_TIMEOUT_SECONDS is gone. */
  #silence: ReturnType<typeof setTimeout> | undefined;

  constructor(client: WebSocket, context: MultiplexContext) {
    this.#client = client;
    this.#context = context;
    this.#meter = new PublishMeter(context.config.wsPublishRate, context.config.wsPublishBurst);
    if (context.expiresAt !== undefined) {
      this.#expiry = setTimeout(() => this.#leave(CloseCode.TokenExpired, "token expired"), Math.max(0, tokenDeadlineMs(context.expiresAt) - Date.now()));
    }
    client.addEventListener("message", (event) => this.#onMessage(event.data as string | ArrayBuffer));
    client.addEventListener("close", () => this.#close());
    client.addEventListener("error", () => this.#close());
    client.accept();
  }

  #onMessage(raw: string | ArrayBuffer): void {
    if (this.#publishes.leaving) return;
    if (raw === PING_FRAME) return this.#pinged();
    const parsed = parseClientFrame(raw, { maxDataBytes: this.#context.config.maxMessageBytes, maxFrameBytes: this.#context.config.maxFrameBytes });
    if (!parsed.ok) return this.#sendFrame(parsed.error);
    const frame = parsed.frame;
    switch (frame.type) {
      case ClientFrameType.Subscribe:
        return void this.#subscribe(frame);
      case ClientFrameType.Unsubscribe:
        return this.#unsubscribe(frame);
      case ClientFrameType.Publish: {
        const verdict = this.#meter.check(Date.now());
        if (verdict === "disconnect") return this.#leave(CloseCode.RateLimited, "publishing too fast");
        if (verdict === "refuse") {
          const message = `Publishing faster than ${this.#context.config.wsPublishRate}/s; slow down.`;
          return void this.#publishes.run(() => this.#error(frame.ref, "rate_limited", message));
        }
        return void this.#publish(frame);
      }
    }
  }

  #pinged(): void {
    this.#send(PONG_FRAME);
    if (this.#silence !== undefined) clearTimeout(this.#silence);
    const { pingTimeoutSeconds } = this.#context.config;
    this.#silence = setTimeout(() => this.#disconnect(CloseCode.GoingAway, `no ping for ${pingTimeoutSeconds} s`), pingTimeoutSeconds * 1000);
  }

  async #subscribe(frame: SubscribeFrame): Promise<void> {
    const { channel, since, rewind, presence, ref } = frame;
    if (this.#rooms.has(channel)) return this.#error(ref, "invalid_request", `Already subscribed to ${channel}.`);
    if (this.#rooms.size >= this.#context.config.maxChannelsPerConnection) {
      return this.#error(
        ref,
        "invalid_request",
        `A connection subscribes to at most ${this.#context.config.maxChannelsPerConnection} channels (MAX_CHANNELS_PER_CONNECTION).`,
      );
    }
    const link: RoomLink = {};
    this.#rooms.set(channel, link);
    const isCurrent = (): boolean => !this.#closed && this.#rooms.get(channel) === link;
    try {
      const { expiresAt } = this.#context.authorize(channel, "subscribe");
      link.socket = await openRoomSocket(
        this.#context.env,
        this.#context.config,
        {
          channel,
          delivery: "socket",
          transport: "ws",
          clientId: this.#context.clientId,
          subject: this.#context.subject,
          since,
          rewind,
          presence,
          expiresAt,
          batch: true,
        },
        {
          // A socket replaced by unsubscribe (and perhaps a new subscribe) is silent from then on.
          message: (text) => isCurrent() && this.#forward(text),
          close: (code) => isCurrent() && this.#roomClosed(channel, code),
        },
      );
      // Unsubscribed, or the client left, while the room was being reached.
      if (!isCurrent()) closeQuietly(link.socket, 1000, "unsubscribed");
    } catch (error) {
      if (this.#rooms.get(channel) === link) this.#rooms.delete(channel);
      this.#sendError(ref, error);
    }
  }

  #unsubscribe({ channel, ref }: UnsubscribeFrame): void {
    const link = this.#rooms.get(channel);
    if (!link) return this.#error(ref, "invalid_request", `Not subscribed to ${channel}.`);
    this.#rooms.delete(channel);
    if (link.socket) closeQuietly(link.socket, 1000, "unsubscribed");
    this.#sendFrame({ type: ServerFrameType.Unsubscribed, channel });
  }

  #publish({ channel, data, event, idempotencyKey, ref }: PublishFrame): Promise<void> {
    if (channel === undefined) {
      return this.#publishes.run(() => this.#error(ref, "invalid_channel", 'A publish on a multi-channel socket names its "channel".'));
    }
    // The one publish path: its checks start now, beside earlier frames' waits; the queue stores
    // and answers in the order sent.
    const { env, config, publisher } = this.#context;
    const admitted = admitPublish(env, config, publisher, { channel, data, event, idempotencyKey });
    admitted.catch(() => {});
    return this.#publishes.run(async () => {
      try {
        const receipt = await store(env, await admitted);
        this.#sendFrame({ type: ServerFrameType.Ack, ref, id: receipt.id });
      } catch (error) {
        this.#sendError(ref, error);
      }
    });
  }

  /**
   * A room dropped its socket: the token expired (the client needs a new one), or the room
   * restarted (the client reconnects and resumes every channel).
   */
  #roomClosed(channel: string, code: number): void {
    if (code === CloseCode.TokenExpired) return this.#leave(CloseCode.TokenExpired, "token expired");
    this.#disconnect(CloseCode.TryAgainLater, `channel ${channel} restarted; reconnect and resume`);
  }

  #disconnect(code: number, reason: string): void {
    closeQuietly(this.#client, code, reason);
    this.#close();
  }

  /** Stops reading frames and disconnects once the publishes already accepted are stored and acknowledged. */
  #leave(code: number, reason: string): void {
    if (!this.#publishes.leaving) logEvent("warn", "connection.closed", { transport: "ws", code, reason });
    void this.#publishes.leave(() => this.#disconnect(code, reason));
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#expiry !== undefined) clearTimeout(this.#expiry);
    if (this.#silence !== undefined) clearTimeout(this.#silence);
    for (const { socket } of this.#rooms.values()) if (socket) closeQuietly(socket, 1000, "subscriber left");
    this.#rooms.clear();
    this.#context.onClose();
  }

  #sendError(ref: string | undefined, error: unknown): void {
    const { code, message } = asRelayError(error);
    this.#error(ref, code, message);
  }

  #error(ref: string | undefined, code: ErrorCode, message: string): void {
    const error = { code, message };
    this.#sendFrame(ref === undefined ? { type: ServerFrameType.Error, error } : { type: ServerFrameType.Error, ref, error });
  }

  /** A room's frame, as the client takes it. */
  #forward(text: string): void {
    if (this.#context.batchFrames) return this.#send(text);
    for (const frame of unpackFrame(text)) this.#send(frame);
  }

  #sendFrame(frame: ServerFrame): void {
    this.#send(JSON.stringify(frame));
  }

  #send(text: string): void {
    if (this.#closed) return;
    try {
      this.#client.send(text);
    } catch {
      this.#close();
    }
  }
}
