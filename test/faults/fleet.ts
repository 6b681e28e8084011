/**
 * Clients of every transport that keep going through faults (a kill -9, a cut connection) and
 * report to a DeliveryChecker: publishers record what the relay acknowledged, subscribers what
 * they delivered. Each one reconnects and resumes the way API.md tells a client to; every loop
 * is bounded by `deadline` and ends on `stop()`.
 *
 * test/support/clients.ts has one-shot clients; these add the reconnect loops. Its `openSse` (a
 * spec EventSource that resends Last-Event-ID) and `publishSurely` are reused as they are.
 */
import { RelayClient, type RelayClientError, type TransportPreference, type WebSocketConstructor } from "edge-relay/client";
import { EventSource, type FetchLike } from "eventsource";
import WebSocket from "ws";
import { channelUrl, type Envelope, type Frame, openSse, publishSurely, type SseSubscriber } from "../support/clients";
import { sleep } from "../support/relay";
import type { DeliveryChecker } from "./checker";

/** What every client of a scenario shares. */
export interface FleetOptions {
  /** The relay's base URL, or a proxy's in front of it. */
  url: string;
  checker: DeliveryChecker;
  /** Epoch ms after which nothing reconnects or retries any more. */
  deadline: number;
  /** Wait before a reconnect (and, for SSE, the `retry:` the client is made to use). */
  retryMs: number;
}

/** A running client. */
export interface FaultClient {
  readonly name: string;
  /** How often it went to the relay: connections or streams opened, polls answered, HTTP publishes sent. */
  connects(): number;
  /** What went wrong besides the injected faults: refused frames, SDK errors. */
  readonly errors: string[];
  stop(): Promise<void>;
}

/** What a publisher publishes: `count` messages, one every `intervalMs`, round-robin over `channels`. */
export interface PublishPlan {
  channels: readonly string[];
  count: number;
  intervalMs: number;
  /** Publishes in flight at most (WebSocket and SDK publishers). Default 5. */
  window?: number;
}

export interface FaultPublisher extends FaultClient {
  /** Resolves once it stopped issuing and every issued publish is acknowledged, or at the deadline. */
  readonly done: Promise<void>;
  /** Publishes issued so far. */
  issued(): number;
  /** Publishes issued and not acknowledged. */
  outstanding(): number;
  /** Issues no new publish from now on; those in flight are still seen through. */
  finish(): void;
  /** Payloads of publishes that ended refused or failed (never acknowledged). */
  readonly failed: string[];
}

/** One publish of a plan: the payload doubles as its idempotency key (both unique per scenario). */
interface PlannedPublish {
  seq: number;
  channel: string;
  payload: string;
}

function planned(name: string, plan: PublishPlan, seq: number): PlannedPublish {
  const channel = plan.channels[seq % plan.channels.length]!;
  return { seq, channel, payload: `${name}:${seq}` };
}

function wsBase(url: string): string {
  return url.replace(/^http/, "ws");
}

/** The envelopes a WebSocket frame carries: a plain one, or several in a `batch` frame (`?frames=batch`). */
function envelopesOf(frame: Frame): Envelope[] {
  if (frame.type === "message") return [frame as unknown as Envelope];
  if (frame.type === "batch" && Array.isArray(frame.messages)) return frame.messages as Envelope[];
  return [];
}

// ---------------------------------------------------------------------------------------------
// A WebSocket that reconnects

interface SocketHandlers {
  /** The socket opened; `send` writes to it. */
  open(send: (frame: object) => void): void;
  frame(frame: Frame): void;
}

/** A `ws` WebSocket that reconnects `retryMs` after every close, until stopped or the deadline. */
class ReconnectingSocket {
  readonly #href: () => string;
  readonly #handlers: SocketHandlers;
  readonly #options: FleetOptions;
  #socket: WebSocket | undefined;
  #open = false;
  #stopped = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  connects = 0;

  constructor(href: () => string, handlers: SocketHandlers, options: FleetOptions) {
    this.#href = href;
    this.#handlers = handlers;
    this.#options = options;
    this.#connect();
  }

  /** Sends on the open socket; false when there is none (the frame goes out on the next open, if the caller keeps it). */
  send(frame: object): boolean {
    if (!this.#open || !this.#socket) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  /** Drops the current socket, so the next one starts afresh. */
  drop(): void {
    this.#socket?.terminate();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const socket = this.#socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.close(1000, "scenario over");
    await Promise.race([closed, sleep(2_000)]);
    socket.terminate();
  }

  #connect(): void {
    if (this.#stopped || Date.now() > this.#options.deadline) return;
    const socket = new WebSocket(this.#href(), { handshakeTimeout: 5_000 });
    this.#socket = socket;
    this.#open = false;
    const current = (): boolean => this.#socket === socket;
    socket.on("open", () => {
      if (!current()) return;
      this.connects++;
      this.#open = true;
      this.#handlers.open((frame) => socket.send(JSON.stringify(frame)));
    });
    socket.on("message", (data, isBinary) => {
      if (!current() || isBinary) return;
      this.#handlers.frame(JSON.parse(String(data)) as Frame);
    });
    // Every failure (refused upgrade, reset, relay gone) ends in `close`.
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (!current()) return;
      this.#open = false;
      if (!this.#stopped) this.#timer = setTimeout(() => this.#connect(), this.#options.retryMs);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Publishers

/**
 * Publishes over HTTP with `publishSurely`: one Idempotency-Key per message on every attempt, retried
 * until the relay answers 201, so a publish whose answer a fault swallowed is stored once.
 */
export function httpPublisher(name: string, options: FleetOptions, plan: PublishPlan): FaultPublisher {
  const errors: string[] = [];
  const failed: string[] = [];
  let issued = 0;
  let outstanding = 0;
  let finished = false;
  const done = (async () => {
    for (let seq = 0; seq < plan.count && !finished && Date.now() < options.deadline; seq++) {
      const { channel, payload } = planned(name, plan, seq);
      issued++;
      outstanding++;
      try {
        const id = await publishSurely(options.url, channel, payload, payload, Math.max(1_000, options.deadline - Date.now()));
        outstanding--;
        options.checker.acked(channel, id, payload);
      } catch (error) {
        errors.push(String(error));
        failed.push(payload);
        return;
      }
      await sleep(plan.intervalMs);
    }
  })();
  return {
    name,
    errors,
    failed,
    done,
    connects: () => issued,
    issued: () => issued,
    outstanding: () => outstanding,
    finish: () => {
      finished = true;
    },
    stop: async () => {
      finished = true;
      await done;
    },
  };
}

/** A publish frame waiting for its ack. */
interface InFlight extends PlannedPublish {
  ref: string;
  /** Refused for the rate: sent again at the next tick. */
  resend: boolean;
}

/**
 * Publishes `publish` frames over a WebSocket, `ref` and `idempotencyKey` on each, at most `window`
 * unacknowledged at once. After a reconnect it sends every unacknowledged frame again, unchanged:
 * only the relay's honouring of `idempotencyKey` keeps those from being stored twice.
 */
function framePublisher(name: string, options: FleetOptions, plan: PublishPlan, href: string, naming: "own" | "multiplexed"): FaultPublisher {
  const errors: string[] = [];
  const failed: string[] = [];
  const window = plan.window ?? 5;
  const pending = new Map<string, InFlight>();
  let issued = 0;
  let finished = false;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  const frameOf = (item: InFlight): object => ({
    type: "publish",
    ...(naming === "multiplexed" ? { channel: item.channel } : {}),
    data: item.payload,
    ref: item.ref,
    idempotencyKey: item.payload,
  });
  const socket = new ReconnectingSocket(
    () => href,
    {
      open: (send) => {
        for (const item of pending.values()) {
          item.resend = false;
          send(frameOf(item));
        }
      },
      frame: (frame) => onFrame(frame),
    },
    options,
  );

  const settle = (): void => {
    if ((finished || issued >= plan.count) && pending.size === 0) end();
  };
  const onFrame = (frame: Frame): void => {
    const item = typeof frame.ref === "string" ? pending.get(frame.ref) : undefined;
    if (!item) return;
    if (frame.type === "ack") {
      pending.delete(item.ref);
      options.checker.acked(item.channel, String(frame.id), item.payload);
      return settle();
    }
    if (frame.type !== "error") return;
    const error = frame.error as { code?: string; message?: string } | undefined;
    if (error?.code === "rate_limited") {
      item.resend = true;
      return;
    }
    // Refused for good: not stored, never acknowledged.
    errors.push(`${item.payload}: ${error?.code} ${error?.message}`);
    failed.push(item.payload);
    pending.delete(item.ref);
    settle();
  };
  const tick = (): void => {
    if (Date.now() > options.deadline) return end();
    for (const item of pending.values()) if (item.resend && socket.send(frameOf(item))) item.resend = false;
    if (finished || issued >= plan.count) return settle();
    if (pending.size >= window) return;
    const item: InFlight = { ...planned(name, plan, issued), ref: `r${issued}`, resend: false };
    issued++;
    pending.set(item.ref, item);
    // Not open now: it goes out with the others when the socket opens.
    socket.send(frameOf(item));
  };
  const timer = setInterval(tick, plan.intervalMs);
  function end(): void {
    clearInterval(timer);
    resolveDone();
  }

  return {
    name,
    errors,
    failed,
    done,
    connects: () => socket.connects,
    issued: () => issued,
    outstanding: () => pending.size,
    finish: () => {
      finished = true;
    },
    stop: async () => {
      end();
      await socket.stop();
    },
  };
}

/** Publishes on a channel's own WebSocket (`/v1/channels/{c}/ws`); `plan.channels` must be that one channel. */
export function channelWsPublisher(name: string, options: FleetOptions, plan: PublishPlan): FaultPublisher {
  if (plan.channels.length !== 1) throw new Error("a channel socket publishes to its own channel only");
  return framePublisher(name, options, plan, channelUrl(wsBase(options.url), plan.channels[0]!, "ws"), "own");
}

/** Publishes on the multi-channel WebSocket (`/v1/ws`), naming each frame's channel. */
export function muxWsPublisher(name: string, options: FleetOptions, plan: PublishPlan): FaultPublisher {
  return framePublisher(name, options, plan, `${wsBase(options.url)}/v1/ws`, "multiplexed");
}

// ---------------------------------------------------------------------------------------------
// The SDK

/** The SDK (the built bundle, as a package user gets it) with what an application in Node gives it: the URL and a WebSocket. */
function sdkClient(options: FleetOptions, transport?: TransportPreference): RelayClient {
  return new RelayClient({ url: options.url, WebSocket: WebSocket as unknown as WebSocketConstructor, ...(transport ? { transport } : {}) });
}

/** Counts how often `client` reached `open`, and keeps its errors. */
function observe(client: RelayClient, errors: string[]): () => number {
  let opens = 0;
  client.on("state", ({ newState }) => {
    if (newState === "open") opens++;
  });
  client.on("error", (error: RelayClientError) => errors.push(`${error.code}: ${error.message}`));
  return () => opens;
}

/**
 * Publishes with `RelayClient.publish()` and the SDK's defaults (its own retries and keys; transport
 * `auto` unless `transport` pins one), at most `window` publishes awaiting their receipt.
 */
export function sdkPublisher(name: string, options: FleetOptions, plan: PublishPlan, transport?: TransportPreference): FaultPublisher {
  const client = sdkClient(options, transport);
  const errors: string[] = [];
  const failed: string[] = [];
  const opens = observe(client, errors);
  const window = plan.window ?? 5;
  let issued = 0;
  let inFlight = 0;
  let finished = false;
  /** Refused with queue_full (never queued): tried again, not a new message. */
  const retry: PlannedPublish[] = [];
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  const send = (item: PlannedPublish): void => {
    inFlight++;
    client.publish(item.channel, item.payload).then(
      (receipt) => {
        inFlight--;
        options.checker.acked(receipt.channel, receipt.id, item.payload);
      },
      (error: RelayClientError) => {
        inFlight--;
        if (error.code === "queue_full") retry.push(item);
        else if (error.code !== "closed") {
          errors.push(`${item.payload}: ${error.code} ${error.message}`);
          failed.push(item.payload);
        }
      },
    );
  };
  const tick = (): void => {
    if (Date.now() > options.deadline) return end();
    if (inFlight >= window) return;
    const again = retry.shift();
    if (again) return send(again);
    if (finished || issued >= plan.count) {
      if (inFlight === 0) end();
      return;
    }
    send(planned(name, plan, issued++));
  };
  const timer = setInterval(tick, plan.intervalMs);
  function end(): void {
    clearInterval(timer);
    resolveDone();
  }

  return {
    name,
    errors,
    failed,
    done,
    connects: opens,
    issued: () => issued,
    outstanding: () => inFlight + retry.length,
    finish: () => {
      finished = true;
    },
    stop: async () => {
      end();
      client.close();
    },
  };
}

/** Subscribes with `RelayClient.subscribe(channel, handler, { since: 0 })` on each channel, over `transport` (default: the SDK's `auto`). */
export function sdkSubscriber(name: string, options: FleetOptions, channels: readonly string[], transport?: TransportPreference): FaultClient {
  const client = sdkClient(options, transport);
  const errors: string[] = [];
  const opens = observe(client, errors);
  client.on("gap", ({ channel, after, oldest }) => options.checker.gap(name, channel, after, oldest));
  for (const channel of channels) {
    options.checker.watch(name, channel, 0);
    client.subscribe(channel, (message) => options.checker.delivered(name, message.channel, message.id, message.data), { since: 0 });
  }
  return {
    name,
    errors,
    connects: opens,
    stop: async () => client.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Subscribers

/** A channel's own WebSocket, reconnecting with `?since=<last id delivered>`. */
export function channelWsSubscriber(name: string, options: FleetOptions, channel: string): FaultClient {
  let last = 0;
  options.checker.watch(name, channel, last);
  const errors: string[] = [];
  const socket = new ReconnectingSocket(
    () => `${channelUrl(wsBase(options.url), channel, "ws")}?since=${last}`,
    {
      open: () => undefined,
      frame: (frame) => {
        for (const message of envelopesOf(frame)) {
          options.checker.delivered(name, channel, message.id, message.data);
          last = Math.max(last, Number(message.id));
        }
        if (frame.type === "gap") {
          options.checker.gap(name, channel, String(frame.after), String(frame.oldest));
          last = Math.max(last, Number(frame.oldest) - 1);
        } else if (frame.type === "error") {
          errors.push(JSON.stringify(frame.error));
        }
      },
    },
    options,
  );
  return { name, errors, connects: () => socket.connects, stop: () => socket.stop() };
}

/** The multi-channel WebSocket (`/v1/ws`): after each reconnect, a `subscribe` frame per channel with `since` = the last id delivered there. */
export function muxWsSubscriber(name: string, options: FleetOptions, channels: readonly string[]): FaultClient {
  const last = new Map(channels.map((channel) => [channel, 0]));
  for (const channel of channels) options.checker.watch(name, channel, 0);
  const errors: string[] = [];
  const socket: ReconnectingSocket = new ReconnectingSocket(
    () => `${wsBase(options.url)}/v1/ws`,
    {
      open: (send) => {
        for (const [channel, since] of last) send({ type: "subscribe", channel, since: String(since), ref: `s:${channel}` });
      },
      frame: (frame) => {
        for (const message of envelopesOf(frame)) {
          options.checker.delivered(name, message.channel, message.id, message.data);
          last.set(message.channel, Math.max(last.get(message.channel) ?? 0, Number(message.id)));
        }
        const channel = String(frame.channel);
        if (frame.type === "gap") {
          options.checker.gap(name, channel, String(frame.after), String(frame.oldest));
          last.set(channel, Math.max(last.get(channel) ?? 0, Number(frame.oldest) - 1));
        } else if (frame.type === "error") {
          // A refused subscribe (a room not reachable yet): start over with every channel.
          errors.push(JSON.stringify(frame.error));
          socket.drop();
        }
      },
    },
    options,
  );
  return { name, errors, connects: () => socket.connects, stop: () => socket.stop() };
}

/**
 * A channel's SSE stream through `openSse`: a spec EventSource that reconnects by itself with
 * `Last-Event-ID`. Should it give up (a refused reconnect ends an EventSource for good), a new one
 * starts from the last id delivered.
 */
export function channelSseSubscriber(name: string, options: FleetOptions, channel: string): FaultClient {
  options.checker.watch(name, channel, 0);
  const errors: string[] = [];
  let current: SseSubscriber | undefined;
  let read = 0;
  let last = "0";
  let opensBefore = 0;
  let stopped = false;

  const drain = (): void => {
    const events = current?.events.items ?? [];
    for (; read < events.length; read++) {
      const event = events[read]!;
      if (event.event === "message") {
        options.checker.delivered(name, channel, event.id, event.data);
        if (Number(event.id) > Number(last)) last = event.id;
      } else if (event.event === "relay.gap") {
        const gap = JSON.parse(event.data) as { after: string; oldest: string };
        options.checker.gap(name, channel, gap.after, gap.oldest);
      }
    }
  };
  const supervise = (async () => {
    while (!stopped && Date.now() < options.deadline) {
      if (!current || current.es.readyState === current.es.CLOSED) {
        drain();
        opensBefore += current?.opens() ?? 0;
        current?.close();
        current = undefined;
        try {
          current = await openSse(options.url, channel, { since: "0", lastEventId: last, retryMs: options.retryMs, timeoutMs: 5_000 });
          read = 0;
        } catch (error) {
          errors.push(String(error));
          await sleep(options.retryMs);
          continue;
        }
      }
      drain();
      await sleep(50);
    }
    drain();
  })();
  return {
    name,
    errors,
    connects: () => opensBefore + (current?.opens() ?? 0),
    stop: async () => {
      stopped = true;
      await supervise;
      current?.close();
    },
  };
}

/**
 * `fetch` for an EventSource that rewrites the relay's `retry: 3000` to `retryMs`, so the
 * EventSource's own reconnects (with Last-Event-ID) are quick; everything else passes unchanged.
 */
function shortRetryFetch(retryMs: number): FetchLike {
  return async (input, init) => {
    const response = await fetch(input, init);
    return {
      status: response.status,
      url: response.url,
      redirected: response.redirected,
      headers: response.headers,
      body: response.body ? response.body.pipeThrough(rewriteRetry(retryMs)) : null,
    };
  };
}

/** Passes an SSE body through line-aligned, with every `retry:` field set to `retryMs`. */
function rewriteRetry(retryMs: number): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let partial = "";
  return new TransformStream({
    transform(chunk, controller) {
      const text = partial + decoder.decode(chunk, { stream: true });
      const complete = text.lastIndexOf("\n") + 1;
      partial = text.slice(complete);
      if (complete > 0) controller.enqueue(encoder.encode(text.slice(0, complete).replace(/^retry:.*$/gm, `retry: ${retryMs}`)));
    },
    flush(controller) {
      if (partial) controller.enqueue(encoder.encode(partial));
    },
  });
}

/**
 * The multi-channel SSE stream (`/v1/events?channel=…`) in a spec EventSource, from the cursor
 * `a=0,b=0`; the EventSource resends the last cursor id as `Last-Event-ID` on its own reconnects.
 */
export function multiSseSubscriber(name: string, options: FleetOptions, channels: readonly string[]): FaultClient {
  for (const channel of channels) options.checker.watch(name, channel, 0);
  const errors: string[] = [];
  let cursor = channels.map((channel) => `${channel}=0`).join(",");
  let opens = 0;
  let stopped = false;
  let es: EventSource | undefined;

  const open = (): EventSource => {
    const url = new URL(`${options.url}/v1/events`);
    for (const channel of channels) url.searchParams.append("channel", channel);
    url.searchParams.set("since", cursor);
    const source = new EventSource(url, { fetch: shortRetryFetch(options.retryMs) });
    source.addEventListener("open", () => opens++);
    source.addEventListener("message", (event: MessageEvent) => {
      const message = JSON.parse(String(event.data)) as Envelope;
      options.checker.delivered(name, message.channel, message.id, message.data);
      if (event.lastEventId) cursor = event.lastEventId;
    });
    source.addEventListener("relay.gap", (event: MessageEvent) => {
      const gap = JSON.parse(String(event.data)) as { channel: string; after: string; oldest: string };
      options.checker.gap(name, gap.channel, gap.after, gap.oldest);
      if (event.lastEventId) cursor = event.lastEventId;
    });
    return source;
  };
  const supervise = (async () => {
    while (!stopped && Date.now() < options.deadline) {
      if (!es || es.readyState === es.CLOSED) {
        es?.close();
        if (es) errors.push("the EventSource gave up; opening a new one");
        es = open();
      }
      await sleep(100);
    }
  })();
  return {
    name,
    errors,
    connects: () => opens,
    stop: async () => {
      stopped = true;
      await supervise;
      es?.close();
    },
  };
}

/** Long-polls a channel in a loop (`/poll?since=<lastId>&timeout=…`), retrying a failed poll with the same `since`. */
export function pollSubscriber(name: string, options: FleetOptions, channel: string, timeoutSeconds = 5): FaultClient {
  options.checker.watch(name, channel, 0);
  const errors: string[] = [];
  let since = "0";
  let answered = 0;
  let stopped = false;
  const abort = new AbortController();

  const pollOnce = async (): Promise<void> => {
    const response = await fetch(`${channelUrl(options.url, channel, "poll")}?since=${since}&timeout=${timeoutSeconds}`, {
      signal: AbortSignal.any([abort.signal, AbortSignal.timeout((timeoutSeconds + 10) * 1000)]),
    });
    const text = await response.text();
    if (response.status !== 200) {
      if (response.status !== 429 && response.status < 500) errors.push(`poll ${response.status}: ${text}`);
      return sleep(options.retryMs);
    }
    const body = JSON.parse(text) as { messages: Envelope[]; lastId: string; gap?: { after: string; oldest: string } };
    answered++;
    if (body.gap) options.checker.gap(name, channel, body.gap.after, body.gap.oldest);
    for (const message of body.messages) options.checker.delivered(name, channel, message.id, message.data);
    since = body.lastId;
  };
  const loop = (async () => {
    while (!stopped && Date.now() < options.deadline) {
      try {
        await pollOnce();
      } catch {
        if (!stopped) await sleep(options.retryMs);
      }
    }
  })();
  return {
    name,
    errors,
    connects: () => answered,
    stop: async () => {
      stopped = true;
      abort.abort();
      await loop;
    },
  };
}
