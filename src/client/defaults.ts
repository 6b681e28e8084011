import type { BackoffOptions } from "./backoff";
import { type DocumentLike, type EventTargetLike, type FetchLike, globals, type WebSocketConstructor } from "./platform";
import type { RelayClientOptions, TokenProvider, TransportPreference } from "./types";

/** Every default of the client, in one place (README lists them). */
export const DEFAULTS = {
  transport: "auto" as TransportPreference,
  backoff: { initialDelay: 1000, maxDelay: 30_000, factor: 2 } satisfies BackoffOptions,
  maxQueuedPublishes: 100,
  connectTimeout: 10_000,
  pingInterval: 25_000,
  pongTimeout: 10_000,
  publishTimeout: 10_000,
  streamIdleTimeout: 45_000,
  pollTimeout: 25_000,
  fallbackAfter: 2,
  autoConnect: true,
  batchFrames: true,
} as const;

/** The options with every default filled in and the relay's URL split into its HTTP and WebSocket bases. */
export interface ResolvedOptions {
  httpBase: string;
  wsBase: string;
  token: TokenProvider | undefined;
  transport: TransportPreference;
  backoff: BackoffOptions;
  maxQueuedPublishes: number;
  connectTimeout: number;
  pingInterval: number;
  pongTimeout: number;
  publishTimeout: number;
  streamIdleTimeout: number;
  pollTimeout: number;
  fallbackAfter: number;
  autoConnect: boolean;
  batchFrames: boolean;
  WebSocket: WebSocketConstructor | undefined;
  fetch: FetchLike;
  window: EventTargetLike | undefined;
  document: DocumentLike | undefined;
  random: () => number;
}

export function resolveOptions(options: RelayClientOptions): ResolvedOptions {
  // In a page, the relay that served it; the page's own path is no part of the API's.
  const url = options.url ?? globals.location?.origin;
  if (url === undefined) throw new TypeError("RelayClient needs options.url outside a browser page.");
  const base = new URL(url, globals.location?.href);
  if (!/^(https?|wss?):$/.test(base.protocol)) throw new TypeError(`RelayClient url must be http(s) or ws(s), got ${base.protocol}`);
  const secure = base.protocol === "https:" || base.protocol === "wss:";
  const path = base.pathname.replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? globals.fetch;
  if (!fetchImpl) throw new TypeError("RelayClient needs fetch: pass options.fetch in this environment.");
  return {
    httpBase: `${secure ? "https" : "http"}://${base.host}${path}`,
    wsBase: `${secure ? "wss" : "ws"}://${base.host}${path}`,
    token: options.token,
    transport: options.transport ?? DEFAULTS.transport,
    backoff: { ...DEFAULTS.backoff, ...options.backoff },
    maxQueuedPublishes: options.maxQueuedPublishes ?? DEFAULTS.maxQueuedPublishes,
    connectTimeout: options.connectTimeout ?? DEFAULTS.connectTimeout,
    pingInterval: options.pingInterval ?? DEFAULTS.pingInterval,
    pongTimeout: options.pongTimeout ?? DEFAULTS.pongTimeout,
    publishTimeout: options.publishTimeout ?? DEFAULTS.publishTimeout,
    streamIdleTimeout: options.streamIdleTimeout ?? DEFAULTS.streamIdleTimeout,
    pollTimeout: options.pollTimeout ?? DEFAULTS.pollTimeout,
    fallbackAfter: options.fallbackAfter ?? DEFAULTS.fallbackAfter,
    autoConnect: options.autoConnect ?? DEFAULTS.autoConnect,
    batchFrames: options.batchFrames ?? DEFAULTS.batchFrames,
    WebSocket: options.WebSocket ?? globals.WebSocket,
    // Browsers throw "Illegal invocation" when fetch is called detached from its global.
    fetch: options.fetch ?? ((url, init) => fetchImpl.call(globalThis, url, init)),
    window: options.window ?? globals.window,
    document: options.document ?? globals.document,
    random: options.random ?? Math.random,
  };
}
