import { encodeSSE, encodeSSEComment } from "./encode";
import { ReadWatch, unreadLimitMs } from "./read-watch";

export interface SSEStreamOptions {
  /** KEEPALIVE_SECONDS: keep-alives come three times per period, and a client that reads nothing for half of it has left. */
  keepaliveSeconds: number;
  /** The owner calls `keepalive()` for many streams at once; without it, the stream times its own. */
  ownerKeepsAlive?: boolean;
  /** Bytes the client may fall behind before its stream is ended. */
  bufferBytes: number;
  /**
   * Called once when the stream ends for any reason: the client left (cancelled, or read nothing for
   * half of KEEPALIVE_SECONDS, see ReadWatch), fell behind (`fellBehind`), or `end()`.
   */
  onEnd(ending: { fellBehind: boolean }): void;
  /**
   * Called when writes start waiting for the client to read what it was sent; the owner then
   * calls `flush()` every few ms until it returns false. Without it, the stream times its own.
   */
  onBehind?(stream: SSEStream): void;
}

/** How often a stream whose client is behind checks whether it has caught up… */
export const FLUSH_MS = 10;
/** …backing off to this while the client reads nothing. */
const FLUSH_MAX_MS = 1000;

export function nextFlushDelay(delay: number): number {
  return Math.min(delay * 2, FLUSH_MAX_MS);
}

/** The browser's reconnection delay, sent first. */
const RETRY_MS = 3000;
const encoder = new TextEncoder();

/** The keep-alive comment, encoded once. */
export const KEEPALIVE = encoder.encode(encodeSSEComment("keepalive"));

/**
 * A `text/event-stream` response: a room holds one per single-channel SSE subscriber, the Worker
 * one per multi-channel stream. A write goes out at once while the client has read everything
 * before it; while it has not, writes wait and go out together as one chunk once it has, so a busy
 * relay sends fewer, larger chunks instead of falling further behind. A client that stops reading
 * is ended once it is `bufferBytes` behind, instead of growing memory or slowing anyone else; its
 * EventSource then resumes with `Last-Event-ID`. One that reads nothing at all for half of
 * KEEPALIVE_SECONDS has left without the runtime saying so (ReadWatch) and is ended too.
 *
 * The body is an IdentityTransformStream, which the runtime sends natively. A JavaScript
 * ReadableStream would do the same job without the runtime's 64 KiB send buffer, but the local
 * runtime (workerd 1.20260426) sends one with a promise loop that keeps every chunk's promises until
 * the stream ends: about 100 bytes of heap per chunk, without bound. See docs/reliability.md,
 * "Memory: SSE streams kept every chunk's promises".
 */
export class SSEStream {
  readonly response: Response;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #keepalive: ReturnType<typeof setInterval> | undefined;
  #open = true;
  readonly #onEnd: (ending: { fellBehind: boolean }) => void;
  #fellBehind = false;
  readonly #onBehind: (stream: SSEStream) => void;
  readonly #bufferBytes: number;
  /** Written while the client was behind; sent as one chunk once it has caught up. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Every byte handed to the runtime; minus what is still queued, what the client has read. */
  #enqueuedBytes = 0;
  readonly #readWatch: ReadWatch;

  constructor({ keepaliveSeconds, ownerKeepsAlive = false, bufferBytes, onEnd, onBehind }: SSEStreamOptions) {
    this.#onEnd = onEnd;
    this.#readWatch = new ReadWatch(unreadLimitMs(keepaliveSeconds));
    this.#onBehind = onBehind ?? selfFlushing;
    this.#bufferBytes = bufferBytes;
    const body = new IdentityTransformStream({ highWaterMark: bufferBytes });
    this.#writer = body.writable.getWriter();
    // Fails once the runtime could not send a chunk: the client left.
    this.#writer.closed.catch(() => this.#left());
    this.response = new Response(body.readable, {
      headers: {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        // Tells buffering proxies (nginx and kin) to pass events through as they come.
        "X-Accel-Buffering": "no",
      },
    });
    this.write(encodeSSE({ retry: RETRY_MS }));
    if (!ownerKeepsAlive) this.#keepalive = setInterval(() => this.keepalive(Date.now()), keepaliveInterval(keepaliveSeconds));
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Bytes written that the client has not read yet: waiting here, or taken by the runtime and not yet sent. */
  get unreadBytes(): number {
    return this.#pendingBytes + this.#queuedBytes();
  }

  /** Writes finished SSE text. */
  write(text: string): void {
    this.writeBytes(encoder.encode(text));
  }

  /** Writes finished SSE bytes; the same bytes may go to many streams. */
  writeBytes(bytes: Uint8Array): void {
    if (!this.#open) return;
    if (this.#pendingBytes === 0 && this.#caughtUp()) return this.#enqueue(bytes);
    if (this.#pendingBytes === 0) this.#onBehind(this);
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.byteLength;
    // Fell too far behind: end after what is written; the client resumes from there.
    if (this.#pendingBytes + this.#queuedBytes() > this.#bufferBytes) {
      this.#fellBehind = true;
      this.end();
    }
  }

  /**
   * Writes a keep-alive comment, three times per KEEPALIVE_SECONDS; ends the stream instead when its
   * client has read nothing of what waited for it for half of KEEPALIVE_SECONDS (ReadWatch): it left
   * without the runtime cancelling the stream, which happens when it left around the response head.
   */
  keepalive(nowMs: number): void {
    if (!this.#open) return;
    this.writeBytes(KEEPALIVE);
    if (!this.#open) return;
    const queued = this.#queuedBytes();
    if (this.#readWatch.observe(nowMs, this.#enqueuedBytes - queued, queued) === "gone") this.#left();
  }

  /** Sends what waited, as one chunk, if the client has caught up; returns whether some still waits. */
  flush(): boolean {
    if (this.#pendingBytes === 0 || !this.#open) return false;
    if (!this.#caughtUp()) return true;
    this.#sendPending();
    return false;
  }

  /** Ends the stream after what is written. */
  end(): void {
    if (!this.#open) return;
    this.#stop();
    if (this.#pendingBytes > 0) this.#sendPending();
    this.#writer.close().catch(ignore);
  }

  /** The client has read everything it was sent. */
  #caughtUp(): boolean {
    return this.#queuedBytes() === 0;
  }

  #queuedBytes(): number {
    return this.#bufferBytes - (this.#writer.desiredSize ?? 0);
  }

  #sendPending(): void {
    const chunk = this.#pending.length === 1 ? this.#pending[0]! : concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#enqueue(chunk);
  }

  #enqueue(bytes: Uint8Array): void {
    this.#enqueuedBytes += bytes.byteLength;
    // A failed write fails `closed` too, which ends the stream.
    this.#writer.write(bytes).catch(ignore);
  }

  /** The client is gone: forget what waits for it and drop what the runtime still holds. */
  #left(): void {
    if (!this.#open) return;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#stop();
    this.#writer.abort().catch(ignore);
  }

  #stop(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#keepalive !== undefined) clearInterval(this.#keepalive);
    this.#onEnd({ fellBehind: this.#fellBehind });
  }
}

function ignore(): void {}

/** A stream with no owner to flush it checks on itself. */
function selfFlushing(stream: SSEStream): void {
  let delay = FLUSH_MS;
  const check = (): void => {
    if (!stream.flush()) return;
    delay = nextFlushDelay(delay);
    setTimeout(check, delay);
  };
  setTimeout(check, delay);
}

function concat(chunks: Uint8Array[], byteLength: number): Uint8Array {
  const out = new Uint8Array(byteLength);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * How often to write a keep-alive. A departed client is noticed when a write fails (the runtime
 * cancels the stream), and the first write after it left usually still succeeds; or, when the
 * runtime never read the stream, when it has read nothing for half a period (ReadWatch). Writing
 * three times per period forgets it within KEEPALIVE_SECONDS either way.
 */
export function keepaliveInterval(keepaliveSeconds: number): number {
  return (keepaliveSeconds * 1000) / 3;
}
