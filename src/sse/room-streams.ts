import { tokenDeadlineMs } from "../auth/claims";
import type { ConnectionLease } from "../limits/connections";
import type { PresenceMember } from "../protocol/frames";
import { FLUSH_MS, keepaliveInterval, nextFlushDelay, SSEStream } from "./stream";

/** One single-channel SSE subscriber, as its room knows it. */
export interface SSESubscriber {
  member: PresenceMember;
  /** The token's `sub`, when it has one. */
  subject?: string;
  /** Also send it join and leave events. */
  presence: boolean;
  /** Its token's `exp`, in seconds since the epoch; the stream ends at tokenDeadlineMs(expiresAt). */
  expiresAt?: number;
  lease?: ConnectionLease;
}

export interface SSEStreamsOptions {
  keepaliveSeconds: number;
  bufferBytes: number;
  /** Called once for each stream that ends, for any reason. */
  onEnd(subscriber: SSESubscriber, ending: { fellBehind: boolean }): void;
}

const encoder = new TextEncoder();

/**
 * The single-channel SSE streams a room holds itself. Each broadcast is encoded once and the same
 * bytes are written to every stream, with one keep-alive timer for all of them. A stream cannot
 * hibernate, so a room stays awake while it has SSE subscribers (WebSocket subscribers alone let
 * it hibernate).
 */
export class SSEStreams {
  readonly #streams = new Map<SSEStream, SSESubscriber>();
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
  open(subscriber: SSESubscriber, write: (send: (text: string) => boolean) => void): Response {
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
      this.#streams.set(stream, subscriber);
      this.#keepalive ??= setInterval(() => this.#keepaliveAll(), keepaliveInterval(this.#options.keepaliveSeconds));
    }
    return stream.response;
  }

  /** Writes finished SSE text to every stream (or those `include` accepts), encoding it once; returns how many. */
  broadcast(text: string, include?: (subscriber: SSESubscriber) => boolean): number {
    return this.#writeAll(encoder.encode(text), include);
  }

  subscribers(): Iterable<SSESubscriber> {
    return this.#streams.values();
  }

  members(): PresenceMember[] {
    return Array.from(this.#streams.values(), (s) => s.member);
  }

  /** The connection leases of the open streams. */
  *leases(): Iterable<ConnectionLease> {
    for (const { lease } of this.#streams.values()) if (lease) yield lease;
  }

  /** Ends the streams whose token stopped being honoured by `nowMs` (tokenDeadlineMs). */
  endExpired(nowMs: number): void {
    for (const [stream, { expiresAt }] of this.#streams) if (expiresAt !== undefined && tokenDeadlineMs(expiresAt) <= nowMs) stream.end();
  }

  /** When the open streams' tokens stop being honoured, in ms since the epoch. */
  *tokenDeadlines(): Iterable<number> {
    for (const { expiresAt } of this.#streams.values()) if (expiresAt !== undefined) yield tokenDeadlineMs(expiresAt);
  }

  #writeAll(bytes: Uint8Array, include?: (subscriber: SSESubscriber) => boolean): number {
    let written = 0;
    for (const [stream, subscriber] of this.#streams) {
      if (include && !include(subscriber)) continue;
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
