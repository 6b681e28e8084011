import type { Envelope } from "../../protocol/envelope";
import { parseSeq } from "../../protocol/ids";
import { errorFromResponse } from "../errors";
import type { ResponseLike } from "../platform";
import { authHeaders, channelPath, type Transport, type TransportContext, type TransportFailure } from "./transport";

interface PollAnswer {
  messages?: Envelope[];
  lastId?: string;
  gap?: { after: string; oldest: string };
}

interface Loop {
  request: AbortController | undefined;
  stopped: boolean;
}

/** The relay holds a long-poll at most this long. */
const MAX_POLL_SECONDS = 60;

/**
 * Long-poll (`/v1/channels/{c}/poll`), one request loop per channel: for networks where neither
 * WebSockets nor streamed responses get through. It opens once the relay has answered the
 * handshake (each live-only channel's position, else `/healthz`).
 */
export class PollTransport implements Transport {
  readonly name = "poll";
  readonly #ctx: TransportContext;
  #opened = false;
  #closed = false;
  readonly #loops = new Map<string, Loop>();
  #handshake: AbortController | undefined;

  constructor(ctx: TransportContext) {
    this.#ctx = ctx;
  }

  start(): void {
    void this.#start();
  }

  sync(): void {
    if (!this.#opened || this.#closed) return;
    const positions = this.#ctx.positions();
    for (const channel of positions.keys()) if (!this.#loops.has(channel)) this.#startLoop(channel);
    for (const [channel, loop] of this.#loops) {
      if (positions.has(channel)) continue;
      this.#stopLoop(loop);
      this.#loops.delete(channel);
    }
  }

  resubscribe(channel: string): void {
    const loop = this.#loops.get(channel);
    if (!loop || this.#closed) return;
    this.#stopLoop(loop);
    this.#startLoop(channel);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopAll();
  }

  async #start(): Promise<void> {
    const { options } = this.#ctx;
    const abort = new AbortController();
    this.#handshake = abort;
    const timer = setTimeout(() => abort.abort(), options.connectTimeout);
    try {
      const lacking = [...this.#ctx.positions()].filter(([, since]) => since === undefined).map(([channel]) => channel);
      if (lacking.length === 0) {
        const response = await this.#get(`${options.httpBase}/healthz`, abort.signal);
        if (!response.ok) return this.#fail({ kind: "http", status: response.status, error: await errorFromResponse(response), opened: false });
      } else {
        await Promise.all(lacking.map((channel) => this.#position(channel, abort.signal)));
      }
    } catch (error) {
      return this.#fail(error instanceof HttpFailure ? error.failure : { kind: "lost", opened: false });
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed) return;
    this.#opened = true;
    this.#ctx.events.open();
    this.sync();
  }

  /** Asks a channel's last id, for subscriptions that start from now. */
  async #position(channel: string, signal: AbortSignal): Promise<void> {
    const response = await this.#get(`${this.#ctx.options.httpBase}${channelPath(channel)}`, signal);
    if (!response.ok) throw new HttpFailure({ kind: "http", status: response.status, error: await errorFromResponse(response, channel), opened: this.#opened });
    const { lastId } = JSON.parse(await response.text()) as { lastId?: string };
    const seq = lastId === undefined ? undefined : parseSeq(lastId);
    if (seq === undefined) throw new HttpFailure({ kind: "lost", opened: this.#opened, reason: "channel info without lastId" });
    if (!this.#closed) this.#ctx.events.position(channel, seq);
  }

  #startLoop(channel: string): void {
    const loop: Loop = { request: undefined, stopped: false };
    this.#loops.set(channel, loop);
    void this.#run(channel, loop);
  }

  async #run(channel: string, loop: Loop): Promise<void> {
    const { options, events } = this.#ctx;
    const seconds = Math.min(MAX_POLL_SECONDS, Math.max(1, Math.round(options.pollTimeout / 1000)));
    const live = (): boolean => !this.#closed && !loop.stopped;
    while (live()) {
      const request = new AbortController();
      loop.request = request;
      // The relay answers within `seconds`; past that plus a margin the request is lost.
      const timer = setTimeout(() => request.abort(), seconds * 1000 + options.connectTimeout);
      try {
        const since = this.#ctx.positions().get(channel);
        if (since === undefined) {
          await this.#position(channel, request.signal);
          continue;
        }
        const response = await this.#get(`${options.httpBase}${channelPath(channel)}/poll?since=${since}&timeout=${seconds}`, request.signal);
        if (!live()) return;
        if (response.status === 429 || response.status === 503) {
          await delay(retryAfter(response));
          continue;
        }
        if (!response.ok) {
          const error = await errorFromResponse(response, channel);
          if (!live()) return;
          // 401 (an expired token) and 5xx concern the connection; others (403, 400) this channel only.
          if (response.status === 401 || response.status >= 500) return this.#fail({ kind: "http", status: response.status, error, opened: true });
          this.#loops.delete(channel);
          return events.channelError(channel, error);
        }
        const answer = JSON.parse(await response.text()) as PollAnswer;
        if (!live()) return;
        if (answer.gap) events.gap({ channel, after: answer.gap.after, oldest: answer.gap.oldest });
        for (const message of answer.messages ?? []) {
          if (!live()) return;
          events.message(message);
        }
        const lastId = answer.lastId === undefined ? undefined : parseSeq(answer.lastId);
        if (lastId !== undefined && live()) events.position(channel, lastId);
      } catch (error) {
        if (!live()) return;
        return this.#fail(error instanceof HttpFailure ? error.failure : { kind: "lost", opened: true });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  #get(url: string, signal: AbortSignal): Promise<ResponseLike> {
    return this.#ctx.options.fetch(url, { headers: authHeaders(this.#ctx.token), signal });
  }

  #stopLoop(loop: Loop): void {
    loop.stopped = true;
    loop.request?.abort();
  }

  #stopAll(): void {
    this.#handshake?.abort();
    for (const loop of this.#loops.values()) this.#stopLoop(loop);
    this.#loops.clear();
  }

  #fail(failure: TransportFailure): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopAll();
    queueMicrotask(() => this.#ctx.events.failed(failure));
  }
}

/** A failure found deep in a request, carried up to the loop as an exception. */
class HttpFailure extends Error {
  readonly failure: TransportFailure;
  constructor(failure: TransportFailure) {
    super(failure.kind === "http" ? failure.error.message : "transport failure");
    this.failure = failure;
  }
}

function retryAfter(response: ResponseLike): number {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : 1000;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
