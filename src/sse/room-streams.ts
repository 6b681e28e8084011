import type { Transport } from "../protocol/transports";
import { subscriberFormats } from "../room/subscriber-formats";
import type { Audience, Subscriber, SubscriberSet } from "../room/subscribers";
import { FLUSH_MS, keepaliveInterval, nextFlushDelay, SSEStream } from "./stream";

/** One single-channel SSE subscriber, and whether it also takes join and leave events. */
interface HeldStream {
  subscriber: Subscriber;
  presence: boolean;
}

export interface SSEStreamsOptions {
  keepaliveSeconds: number;
  bufferBytes: number;
  /** Called once for each stream that ends, for any reason (its client left, fell behind, its token expired). */
  onEnd(subscriber: Subscriber, ending: { fellBehind: boolean }): void;
}

const encoder = new TextEncoder();

/**
 * The single-channel SSE streams a room holds itself. Each broadcast is encoded once and the same
 * bytes are written to every stream, with one keep-alive timer for all of them. A stream cannot
 * hibernate, so a room stays awake while it has SSE subscribers (WebSocket subscribers alone let
 * it hibernate).
 */
export class SSEStreams implements SubscriberSet {
  readonly format = subscriberFormats.sse;
  readonly #streams = new Map<SSEStream, HeldStream>();
  readonly #options: SSEStreamsOptions;
  #keepalive: ReturnType<typeof setInterval> | undefined;
  /** Streams whose writes wait for their client to catch up; one timer checks them all. */
  readonly #behind = new Set<SSEStream>();
  #flushing: ReturnType<typeof setTimeout> | undefined;
  #flushDelay = FLUSH_MS;

  constructor(options: SSEStreamsOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#streams.size;
  }

  /**
   * Opens a stream for `subscriber`; `write` sends what it gets first (greeting, replay) before it
   * joins broadcasts, through `send`, which says whether the stream takes more (false once it ended).
   */
  open(subscriber: Subscriber, presence: boolean, write: (send: (text: string) => boolean) => void): Response {
    const stream = new SSEStream({
      keepaliveSeconds: this.#options.keepaliveSeconds,
      ownerKeepsAlive: true,
      bufferBytes: this.#options.bufferBytes,
      onBehind: (behind) => this.#watch(behind),
      onEnd: (ending) => {
        this.#streams.delete(stream);
        if (this.#streams.size === 0) this.#stopKeepalive();
        this.#options.onEnd(subscriber, ending);
      },
    });
    write((text) => {
      stream.write(text);
      return stream.isOpen;
    });
    if (stream.isOpen) {
      this.#streams.set(stream, { subscriber, presence });
      this.#keepalive ??= setInterval(() => this.#keepaliveAll(), keepaliveInterval(this.#options.keepaliveSeconds));
    }
    return stream.response;
  }

  broadcast(text: string, audience: Audience): number {
    return this.#writeAll(encoder.encode(text), audience === "presence");
  }

  *subscribers(): Iterable<Subscriber> {
    for (const { subscriber } of this.#streams.values()) yield subscriber;
  }

  count(transport: Transport): number {
    return transport === "sse" ? this.#streams.size : 0;
  }

  endExpired(nowMs: number): void {
    for (const [stream, { subscriber }] of this.#streams) if (subscriber.deadline !== undefined && subscriber.deadline <= nowMs) stream.end();
  }

  #writeAll(bytes: Uint8Array, presenceOnly = false): number {
    let written = 0;
    for (const [stream, { presence }] of this.#streams) {
      if (presenceOnly && !presence) continue;
      stream.writeBytes(bytes);
      written += 1;
    }
    return written;
  }

  /** One keep-alive for every stream, which also ends those whose client read nothing for half of KEEPALIVE_SECONDS. */
  #keepaliveAll(): void {
    const now = Date.now();
    // A stream that ends leaves the map during the loop, which a Map allows.
    for (const stream of this.#streams.keys()) stream.keepalive(now);
  }

  #watch(stream: SSEStream): void {
    this.#behind.add(stream);
    if (this.#flushing !== undefined && this.#flushDelay === FLUSH_MS) return;
    // A check backed off for a client that stopped reading must not hold up this one.
    if (this.#flushing !== undefined) clearTimeout(this.#flushing);
    this.#flushDelay = FLUSH_MS;
    this.#flushing = setTimeout(() => this.#flushBehind(), FLUSH_MS);
  }

  /** Flushes the streams that caught up; checks less often while none does (a client that stopped reading). */
  #flushBehind(): void {
    this.#flushing = undefined;
    const before = this.#behind.size;
    for (const stream of this.#behind) if (!stream.flush()) this.#behind.delete(stream);
    if (this.#behind.size === 0) return;
    this.#flushDelay = this.#behind.size < before ? FLUSH_MS : nextFlushDelay(this.#flushDelay);
    this.#flushing = setTimeout(() => this.#flushBehind(), this.#flushDelay);
  }

  #stopKeepalive(): void {
    if (this.#keepalive !== undefined) clearInterval(this.#keepalive);
    this.#keepalive = undefined;
  }
}
