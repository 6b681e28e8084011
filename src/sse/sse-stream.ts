import { encodeSSE, encodeSSEComment } from "../protocol/sse";

export interface SSEStreamOptions {
  /** Writes its own keep-alive comments this often; leave out when the owner writes them for many streams at once. */
  keepaliveSeconds?: number;
  /** Bytes the client may fall behind before its stream is ended. */
  bufferBytes: number;
  /** Called once when the stream ends for any reason: the client left, fell behind, or `end()`. */
  onEnd(): void;
}

/** The browser's reconnection delay, sent first. */
const RETRY_MS = 3000;
const encoder = new TextEncoder();

/** The keep-alive comment, encoded once. */
export const KEEPALIVE = encoder.encode(encodeSSEComment("keepalive"));

/**
 * A `text/event-stream` response: a room holds one per single-channel SSE subscriber, the Worker
 * one per multi-channel stream. A client that stops reading is ended once it is `bufferBytes`
 * behind, instead of growing memory or slowing anyone else; its EventSource then resumes with
 * `Last-Event-ID`.
 */
export class SSEStream {
  readonly response: Response;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #keepalive: ReturnType<typeof setInterval> | undefined;
  #open = true;
  readonly #onEnd: () => void;

  constructor({ keepaliveSeconds, bufferBytes, onEnd }: SSEStreamOptions) {
    this.#onEnd = onEnd;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        cancel: () => this.#stop(),
      },
      { highWaterMark: bufferBytes, size: (chunk) => chunk.byteLength },
    );
    this.response = new Response(body, {
      headers: {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        // Tells buffering proxies (nginx and kin) to pass events through as they come.
        "X-Accel-Buffering": "no",
      },
    });
    this.write(encodeSSE({ retry: RETRY_MS }));
    if (keepaliveSeconds !== undefined) this.#keepalive = setInterval(() => this.writeBytes(KEEPALIVE), keepaliveInterval(keepaliveSeconds));
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Writes finished SSE text. */
  write(text: string): void {
    this.writeBytes(encoder.encode(text));
  }

  /** Writes finished SSE bytes; the same bytes may go to many streams. */
  writeBytes(bytes: Uint8Array): void {
    if (!this.#open) return;
    this.#controller.enqueue(bytes);
    // Fell too far behind: end after what is queued; the client resumes from there.
    if ((this.#controller.desiredSize ?? 0) < 0) this.end();
  }

  /** Ends the stream after what is queued. */
  end(): void {
    if (!this.#open) return;
    this.#stop();
    this.#controller.close();
  }

  #stop(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#keepalive !== undefined) clearInterval(this.#keepalive);
    this.#onEnd();
  }
}

/**
 * How often to write a keep-alive. A departed client is noticed only when a write fails, and the
 * first write after it left usually still succeeds: writing three times per period forgets it
 * within KEEPALIVE_SECONDS.
 */
export function keepaliveInterval(keepaliveSeconds: number): number {
  return (keepaliveSeconds * 1000) / 3;
}
