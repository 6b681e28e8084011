// The load generator's clients, the same for every system: a publisher over keep-alive HTTP,
// WebSocket subscribers (`ws`) and SSE subscribers (a small parser over `node:http`, cheaper
// than a full EventSource so the generator is not what limits the numbers).
import { Agent, get, request } from "node:http";
import WebSocket from "ws";

// ---------------------------------------------------------------------------------------------
// Payloads: "<seq> <sent at, ms on the generator's performance clock> xxxx…", exactly `size` bytes.

export function makePayload(seq: number, size: number): string {
  const head = `${seq} ${performance.now().toFixed(3)} `;
  return head.length >= size ? head : head + "x".repeat(size - head.length);
}

export function readPayload(data: string): { seq: number; sentAt: number } | undefined {
  const a = data.indexOf(" ");
  const b = data.indexOf(" ", a + 1);
  if (a < 1 || b < 0) return undefined;
  const seq = Number(data.slice(0, a));
  const sentAt = Number(data.slice(a + 1, b));
  return Number.isFinite(seq) && Number.isFinite(sentAt) ? { seq, sentAt } : undefined;
}

// ---------------------------------------------------------------------------------------------
// What every subscriber saw.

/** Publish→receive latencies and delivery times, shared by all subscribers of one measurement. */
export class Deliveries {
  latencies = new Float64Array(1024);
  count = 0;
  firstAt = Number.POSITIVE_INFINITY;
  lastAt = 0;
  /** When set, latencies are measured from this instant instead of the payload's send time. */
  origin: number | undefined;

  record(sentAt: number, now: number): void {
    if (this.count === this.latencies.length) {
      const bigger = new Float64Array(this.latencies.length * 2);
      bigger.set(this.latencies);
      this.latencies = bigger;
    }
    this.latencies[this.count++] = now - (this.origin ?? sentAt);
    if (now < this.firstAt) this.firstAt = now;
    if (now > this.lastAt) this.lastAt = now;
  }

  values(): Float64Array {
    return this.latencies.subarray(0, this.count);
  }
}

/** One subscriber's view: which publisher seqs arrived, twice, or out of id order. */
export class Seen {
  readonly #got: Uint8Array;
  unique = 0;
  duplicates = 0;
  outOfOrder = 0;
  unexpected = 0;
  #lastId = 0;
  /** When this subscriber had everything it waited for (performance clock), or undefined. */
  doneAt: number | undefined;
  #want: number;
  readonly #onDone: (() => void) | undefined;

  constructor(capacity: number, want: number, onDone?: () => void) {
    this.#got = new Uint8Array(capacity + 1);
    this.#want = want;
    this.#onDone = onDone;
  }

  /** Raises how many distinct messages this subscriber waits for. */
  expect(want: number): void {
    this.#want = want;
    this.#checkDone();
  }

  /** `seq` is the publisher's number (payload), `id` the server's message id. */
  add(seq: number, id: number): boolean {
    if (id <= this.#lastId) this.outOfOrder++;
    else this.#lastId = id;
    if (seq < 1 || seq >= this.#got.length) {
      this.unexpected++;
      return false;
    }
    if (this.#got[seq]) {
      this.duplicates++;
      return false;
    }
    this.#got[seq] = 1;
    this.unique++;
    this.#checkDone();
    return true;
  }

  has(seq: number): boolean {
    return this.#got[seq] === 1;
  }

  #checkDone(): void {
    if (this.doneAt === undefined && this.unique >= this.#want) {
      this.doneAt = performance.now();
      this.#onDone?.();
    }
  }
}

export interface Subscriber {
  seen: Seen;
  /** Time from starting to connect to being subscribed, ms. */
  connectMs: number;
  close(): void;
  closed(): boolean;
}

export interface SubscribeOptions {
  seen: Seen;
  deliveries: Deliveries;
  timeoutMs: number;
}

/** Server ids arrive as decimal strings (API.md); the baselines use the same frames. */
function onEnvelope(id: string | undefined, data: string | undefined, { seen, deliveries }: SubscribeOptions): void {
  if (data === undefined || id === undefined) return;
  const now = performance.now();
  const payload = readPayload(data);
  if (!payload) {
    seen.unexpected++;
    return;
  }
  if (seen.add(payload.seq, Number(id))) deliveries.record(payload.sentAt, now);
}

/** Opens a WebSocket and resolves once the server's `subscribed` frame arrived. */
export function subscribeWs(url: string, options: SubscribeOptions): Promise<Subscriber> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: options.timeoutMs });
    let settled = false;
    let isClosed = false;
    const timer = setTimeout(() => fail(new Error(`no subscribed frame within ${options.timeoutMs} ms`)), options.timeoutMs);
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(error);
    };
    const subscriber: Subscriber = {
      seen: options.seen,
      connectMs: 0,
      close: () => {
        if (!isClosed) ws.terminate();
      },
      closed: () => isClosed,
    };
    ws.on("message", (raw: Buffer) => {
      let frame: { type?: string; id?: string; data?: string; messages?: Array<{ id?: string; data?: string }> };
      try {
        frame = JSON.parse(raw.toString("utf8")) as typeof frame;
      } catch {
        options.seen.unexpected++;
        return;
      }
      if (frame.type === "message") return onEnvelope(frame.id, frame.data, options);
      if (frame.type === "batch") {
        for (const envelope of frame.messages ?? []) onEnvelope(envelope.id, envelope.data, options);
        return;
      }
      if (frame.type === "subscribed" && !settled) {
        settled = true;
        clearTimeout(timer);
        subscriber.connectMs = performance.now() - started;
        resolve(subscriber);
      }
    });
    ws.on("unexpected-response", (_req, res) => fail(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on("error", (error) => fail(error));
    ws.on("close", () => {
      isClosed = true;
      fail(new Error("closed before subscribed"));
    });
  });
}

/** Opens an SSE stream and resolves once the response head (200, event-stream) arrived. */
export function subscribeSse(url: string, options: SubscribeOptions & { lastEventId?: string }): Promise<Subscriber> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let settled = false;
    let isClosed = false;
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (options.lastEventId !== undefined) headers["Last-Event-ID"] = options.lastEventId;
    const req = get(url, { agent: false, headers });
    const timer = setTimeout(() => fail(new Error(`no SSE response within ${options.timeoutMs} ms`)), options.timeoutMs);
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    req.on("error", fail);
    req.on("response", (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(new Error(`SSE answered ${res.statusCode}`));
      }
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id: string | undefined;
          let data: string | undefined;
          for (const line of block.split("\n")) {
            if (line.startsWith("data: ")) data = data === undefined ? line.slice(6) : `${data}\n${line.slice(6)}`;
            else if (line.startsWith("id: ")) id = line.slice(4);
          }
          onEnvelope(id, data, options);
        }
      });
      res.on("close", () => {
        isClosed = true;
      });
      settled = true;
      clearTimeout(timer);
      resolve({
        seen: options.seen,
        connectMs: performance.now() - started,
        close: () => {
          if (!isClosed) req.destroy();
        },
        closed: () => isClosed,
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Publishing

export interface PublishResult {
  status: number;
  /** The server's id for a 201. */
  id?: string;
  ms: number;
  error?: string;
}

/** A keep-alive HTTP client with at most `sockets` requests in flight. */
export class Publisher {
  readonly #agent: Agent;

  constructor(sockets: number) {
    this.#agent = new Agent({ keepAlive: true, maxSockets: sockets });
  }

  /** Requests sent again because a kept-alive socket was closed by the server as it was reused. */
  retries = 0;

  post(url: string, body: string, timeoutMs = 30_000): Promise<PublishResult> {
    const started = performance.now();
    return this.#send(url, Buffer.from(body, "utf8"), timeoutMs, true).then((r) => ({ ...r, ms: performance.now() - started }));
  }

  #send(url: string, bytes: Buffer, timeoutMs: number, mayRetry: boolean): Promise<Omit<PublishResult, "ms">> {
    return new Promise((resolve) => {
      const req = request(url, {
        method: "POST",
        // A re-send goes on a new connection, so its failure is the server's answer, not the race again.
        agent: mayRetry ? this.#agent : false,
        headers: { "Content-Type": "text/plain; charset=utf-8", "Content-Length": bytes.length },
        timeout: timeoutMs,
      });
      req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on("error", (error: NodeJS.ErrnoException) => {
        // The keep-alive race: the server closed an idle socket just as this request reused it,
        // so the request never reached it. Node's documented remedy is to send it again; should
        // the server have stored it after all, the subscribers' duplicate count shows it.
        if (mayRetry && req.reusedSocket && error.code === "ECONNRESET") {
          this.retries++;
          return void this.#send(url, bytes, timeoutMs, false).then(resolve);
        }
        resolve({ status: 0, error: error.message });
      });
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          if (res.statusCode === 201) resolve({ status: 201, id: /"id":"(\d+)"/.exec(text)?.[1] });
          else resolve({ status: res.statusCode ?? 0, error: text.slice(0, 200) });
        });
      });
      req.end(bytes);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Channel info

/** What the harness reads from Edge Relay's channel info (`GET /v1/channels/{c}`). */
export interface ChannelInfo {
  subscribers: { ws: number; sse: number; poll: number };
  /** Messages handed to subscribers, over the room and its shards. */
  counters: { delivered: number };
  /** For a channel served through shards: the room's push calls since it started. */
  fanout?: { shards: number; following: number; pushes: number };
}

export async function channelInfo(url: string): Promise<ChannelInfo> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`channel info answered ${response.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as ChannelInfo;
}

/** Runs `tasks` with at most `limit` in flight; resolves with their results in order. */
export async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  });
  await Promise.all(lanes);
  return results;
}
