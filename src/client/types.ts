import type { BackoffOptions } from "./backoff";
import type { RelayClientError } from "./errors";
import type { DocumentLike, EventTargetLike, FetchLike, WebSocketConstructor } from "./platform";

/**
 * `connecting` (first attempt) → `open` → `reconnecting` (lost; waiting or retrying) → `open` …;
 * `closed` after `close()` or a terminal error.
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** `ws`: one multiplexed WebSocket (`/v1/ws`); `sse`: one multi-channel stream (`/v1/events`); `poll`: long-poll per channel. */
export type TransportName = "ws" | "sse" | "poll";

/** `auto` tries `ws`, falls back to `sse` when WebSockets are blocked, and to `poll` when streaming is. */
export type TransportPreference = TransportName | "auto";

/** One message as the application receives it: each exactly once, in id order per channel. */
export interface RelayMessage {
  channel: string;
  /** The channel's sequence number as a decimal string. */
  id: string;
  event: string;
  /** The published body; base64 when `encoding` says so. */
  data: string;
  /** Server time of the publish, ms since the epoch. */
  ts: number;
  encoding?: "base64";
}

export type MessageHandler = (message: RelayMessage) => void;

/** A token, or a function called on every connect for a fresh one (`undefined`: connect without). */
export type TokenProvider = string | (() => string | undefined | Promise<string | undefined>);

export interface RelayClientOptions {
  /** The relay's base URL (`https://relay.example.com`, or with a path prefix); defaults to the page's origin. */
  url?: string;
  token?: TokenProvider;
  /** Default transport of subscriptions that do not pick one. Default `auto`. */
  transport?: TransportPreference;
  /** Reconnect delays, full jitter. Default `{ initialDelay: 1000, maxDelay: 30000, factor: 2 }`. */
  backoff?: Partial<BackoffOptions>;
  /** Publishes held while offline; past it `publish()` rejects with `queue_full`. Default 100. */
  maxQueuedPublishes?: number;
  /** Time for a transport to prove it works (socket open, first stream bytes, first answer). Default 10000 ms. */
  connectTimeout?: number;
  /** WebSocket keep-alive ping interval; 0 turns pings off. Default 25000 ms. */
  pingInterval?: number;
  /** A ping unanswered this long means the socket is dead. Default 10000 ms. */
  pongTimeout?: number;
  /** A WebSocket publish unacknowledged this long means the socket is dead. Default 10000 ms. */
  publishTimeout?: number;
  /** An SSE stream silent this long (the relay sends keep-alives) is reconnected. Default 45000 ms. */
  streamIdleTimeout?: number;
  /** How long the relay may hold a long-poll (1–60 s). Default 25000 ms. */
  pollTimeout?: number;
  /** Failed attempts of a transport, with the relay reachable, before `auto` falls back. Default 2. */
  fallbackAfter?: number;
  /** Connect from the constructor. Default true; else call `connect()`. */
  autoConnect?: boolean;
  /**
   * Let the relay send several messages in one WebSocket frame (`?frames=batch`), which costs it
   * less under load; handlers still get each message on its own, in order. Default true.
   */
  batchFrames?: boolean;
  /** Injected platform pieces (tests, Node, workers); the globals by default. */
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  /** Fires `online`; defaults to the global `window`. */
  window?: EventTargetLike;
  /** Fires `visibilitychange`; defaults to the global `document`. */
  document?: DocumentLike;
  /** Source of randomness for backoff jitter and ids. Default `Math.random`. */
  random?: () => number;
}

export interface SubscribeOptions {
  /** Deliver every retained message after this id first (`0`: all history); default: only new ones. */
  since?: string | number;
  /** Carry this subscription over a given transport; default the client's `transport`. */
  transport?: TransportPreference;
}

/** A live subscription; its handler runs for each message exactly once, in order. */
export interface Subscription {
  readonly channel: string;
  /** Id of the last message delivered (or the position it will resume after). */
  readonly lastId: string | undefined;
  unsubscribe(): void;
}

export interface PublishOptions {
  /** Event name, default `message`. */
  event?: string;
  /**
   * The publish's key (1–128 printable ASCII characters): sent with every attempt, as `idempotencyKey`
   * in WebSocket frames and as `Idempotency-Key` over HTTP, so resends store it once. A random one by
   * default; give your own to make a publish idempotent across page loads.
   */
  idempotencyKey?: string;
}

export interface PublishReceipt {
  channel: string;
  id: string;
}

export interface StateChange {
  oldState: ConnectionState;
  newState: ConnectionState;
  /** The transport of the client's default connection now (undefined when none is up). */
  transport: TransportName | undefined;
}

/** Messages after `after` up to `oldest - 1` were pruned before this client could get them. */
export interface GapEvent {
  channel: string;
  after: string;
  oldest: string;
}

export interface RelayClientEvents {
  state: StateChange;
  gap: GapEvent;
  error: RelayClientError;
}
