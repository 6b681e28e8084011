import { CloseCode, isTerminalCloseCode } from "../protocol/close-codes";
import type { Envelope } from "../protocol/envelope";
import { parseSeq } from "../protocol/ids";
import { backoffDelay } from "./backoff";
import type { ResolvedOptions } from "./defaults";
import { errorFromResponse, RelayClientError } from "./errors";
import type { ClientSubscription } from "./subscription";
import { isFresherToken } from "./token-freshness";
import { PollTransport } from "./transports/poll";
import { SseTransport } from "./transports/sse";
import {
  authHeaders,
  channelPath,
  type Positions,
  type Transport,
  type TransportContext,
  type TransportEvents,
  type TransportFailure,
} from "./transports/transport";
import { WsTransport } from "./transports/ws";
import type { ConnectionState, GapEvent, RelayMessage, TransportName, TransportPreference } from "./types";

/** What a connection needs from its client. */
export interface ConnectionHost {
  readonly options: ResolvedOptions;
  /** A token for a new connect (calls the token function). */
  token(): Promise<string | undefined>;
  gap(event: GapEvent): void;
  error(error: RelayClientError): void;
  stateChanged(connection: Connection): void;
  /** The connection opened: queued publishes can go. */
  opened(connection: Connection): void;
  /** The connection stopped on a terminal error. */
  terminated(connection: Connection, error: RelayClientError): void;
}

/** The transports each preference tries, in order. */
const CHAINS: Record<TransportPreference, readonly TransportName[]> = { auto: ["ws", "sse", "poll"], ws: ["ws"], sse: ["sse"], poll: ["poll"] };

/** Re-subscriptions a channel gets for ids arriving early before an unannounced jump is accepted. */
const MAX_RESYNCS = 3;

/** Error codes on one channel that retrying will not fix. */
const TERMINAL_CHANNEL_ERRORS = new Set(["unauthorized", "forbidden", "invalid_channel", "invalid_request", "not_found"]);

const CLOSE_ERRORS: Record<number, string> = {
  [CloseCode.PolicyViolation]: "policy_violation",
  [CloseCode.Unauthorized]: "unauthorized",
  [CloseCode.TokenExpired]: "token_expired",
  [CloseCode.Forbidden]: "forbidden",
  [CloseCode.RateLimited]: "rate_limited",
};

function createTransport(name: TransportName, context: TransportContext): Transport {
  switch (name) {
    case "ws":
      return new WsTransport(context);
    case "sse":
      return new SseTransport(context);
    case "poll":
      return new PollTransport(context);
  }
}

/**
 * The subscriptions carried by one transport preference, and the state machine that keeps them
 * carried: connect, lose the transport, back off (full jitter), reconnect, fall back (`auto`), and
 * stop for good on a terminal close. Every transition passes through `#setState`.
 */
export class Connection {
  readonly preference: TransportPreference;
  readonly #host: ConnectionHost;
  #state: ConnectionState = "closed";
  readonly #chain: readonly TransportName[];
  #chainIndex = 0;
  /** Failed attempts since the connection last opened; the backoff exponent. */
  #attempt = 0;
  /** Failures of the current transport with the relay reachable: evidence it is blocked. */
  #strikes = 0;
  #transport: Transport | undefined;
  /** The token the current (or last) transport connected with. */
  #token: string | undefined;
  /** Expiries in a row after which the token function gave no fresher token: the backoff exponent for those. */
  #staleRenewals = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by every connect and stop, so an outdated async step (token, probe) gives up. */
  #generation = 0;
  readonly #subscriptions = new Set<ClientSubscription>();
  #syncQueued = false;
  readonly #resyncs = new Map<string, { pending: boolean; count: number }>();

  constructor(preference: TransportPreference, host: ConnectionHost) {
    this.preference = preference;
    this.#host = host;
    this.#chain = CHAINS[preference];
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The transport in use, or being tried; `undefined` when stopped. */
  get transport(): TransportName | undefined {
    return this.#state === "closed" ? undefined : this.#chain[this.#chainIndex];
  }

  /** The open WebSocket, for publishing over it. */
  get webSocket(): WsTransport | undefined {
    const transport = this.#transport;
    return this.#state === "open" && transport instanceof WsTransport && transport.isOpen ? transport : undefined;
  }

  get isEmpty(): boolean {
    return this.#subscriptions.size === 0;
  }

  add(subscription: ClientSubscription): void {
    const siblings = [...this.#subscriptions].filter((other) => other.channel === subscription.channel);
    this.#subscriptions.add(subscription);
    const cursors = siblings.map((other) => other.cursor).filter((cursor): cursor is number => cursor !== undefined);
    const reached = cursors.length > 0 ? Math.max(...cursors) : undefined;
    if (subscription.cursor === undefined) {
      // From now on: where the channel's other subscriptions have got to.
      subscription.cursor = reached;
    } else if (reached !== undefined && subscription.cursor < reached) {
      // Behind the others: the channel is replayed from this one's position (the others skip duplicates).
      this.#resubscribe(subscription.channel);
    }
    this.#queueSync();
  }

  remove(subscription: ClientSubscription): void {
    this.#subscriptions.delete(subscription);
    this.#queueSync();
  }

  start(): void {
    if (this.#state !== "closed") return;
    this.#chainIndex = 0;
    this.#attempt = 0;
    this.#strikes = 0;
    void this.#connect();
  }

  stop(): void {
    this.#generation++;
    clearTimeout(this.#timer);
    this.#transport?.close();
    this.#transport = undefined;
    this.#setState("closed");
  }

  /**
   * Skips the backoff wait (the browser came back online, the tab became visible). With
   * `resetFallback`, `auto` starts over from WebSocket, as the network may have changed.
   */
  reconnectNow(resetFallback: boolean): void {
    if (this.#state === "closed" || this.#state === "open" || this.#transport !== undefined) return;
    if (resetFallback) {
      this.#chainIndex = 0;
      this.#strikes = 0;
    }
    void this.#connect();
  }

  /** Makes an open WebSocket prove it is alive. */
  checkAlive(): void {
    this.webSocket?.checkAlive();
  }

  /** Each channel's resume point: the earliest cursor among its subscriptions. */
  positions(): Positions {
    const positions = new Map<string, number | undefined>();
    for (const { channel, cursor } of this.#subscriptions) {
      if (!positions.has(channel)) positions.set(channel, cursor);
      else if (cursor !== undefined) {
        const known = positions.get(channel);
        positions.set(channel, known === undefined ? cursor : Math.min(known, cursor));
      }
    }
    return positions;
  }

  #setState(next: ConnectionState): void {
    if (next === this.#state) return;
    this.#state = next;
    this.#host.stateChanged(this);
  }

  /**
   * Asks the token function; `undefined` when it failed (reported, and a retry scheduled) or when
   * the connection moved on meanwhile (`generation` is no longer the current one).
   */
  async #fetchToken(generation: number): Promise<{ token: string | undefined } | undefined> {
    try {
      const token = await this.#host.token();
      return generation === this.#generation ? { token } : undefined;
    } catch (cause) {
      if (generation !== this.#generation) return undefined;
      this.#host.error(new RelayClientError("token_failed", `The token function failed: ${String(cause)}`, { cause }));
      this.#retry();
      return undefined;
    }
  }

  /** Connects with `renewed` when the caller already fetched a token, else with a new one from the token function. */
  async #connect(renewed?: { token: string | undefined }): Promise<void> {
    const generation = ++this.#generation;
    clearTimeout(this.#timer);
    if (this.#state === "closed") this.#setState("connecting");
    const fetched = renewed ?? (await this.#fetchToken(generation));
    if (!fetched) return;
    const { token } = fetched;
    this.#token = token;
    const name = this.#chain[this.#chainIndex] ?? "ws";
    const context: TransportContext = { options: this.#host.options, token, positions: () => this.positions(), events: this.#eventsFor(() => transport) };
    const transport = createTransport(name, context);
    this.#transport = transport;
    transport.start();
  }

  #eventsFor(transport: () => Transport): TransportEvents {
    const current = (): boolean => this.#transport !== undefined && this.#transport === transport();
    return {
      open: () => {
        if (!current()) return;
        this.#attempt = 0;
        this.#strikes = 0;
        this.#resyncs.clear();
        this.#setState("open");
        this.#host.opened(this);
      },
      position: (channel, lastId) => {
        if (!current()) return;
        for (const subscription of this.#subscriptions) {
          if (subscription.channel === channel && subscription.cursor === undefined) subscription.cursor = lastId;
        }
        const resync = this.#resyncs.get(channel);
        if (resync) resync.pending = false;
      },
      message: (envelope) => {
        if (current()) this.#dispatch(envelope);
      },
      gap: (gap) => {
        if (current()) this.#gap(gap);
      },
      channelError: (channel, error) => {
        if (current()) this.#channelError(channel, error);
      },
      failed: (failure) => {
        if (current()) void this.#onFailed(failure);
      },
    };
  }

  #dispatch(envelope: Envelope): void {
    const seq = parseSeq(String(envelope.id));
    if (seq === undefined) return;
    const message: RelayMessage = { channel: envelope.channel, id: String(seq), event: envelope.event, data: envelope.data, ts: envelope.ts };
    if (envelope.encoding === "base64") message.encoding = "base64";
    const ahead: ClientSubscription[] = [];
    for (const subscription of [...this.#subscriptions]) {
      if (subscription.channel !== envelope.channel) continue;
      const offer = subscription.offer(seq, message, (error) => this.#handlerFailed(subscription, error));
      if (offer === "delivered") this.#resyncs.delete(envelope.channel);
      else if (offer === "ahead") ahead.push(subscription);
    }
    if (ahead.length > 0) this.#ahead(envelope.channel, seq, message, ahead);
  }

  /**
   * An id arrived before the ones preceding it: they are replayed by subscribing again. Should the
   * relay skip ids without announcing a gap, the jump is accepted after a few tries (and reported
   * as a gap) rather than stalling the subscription forever.
   */
  #ahead(channel: string, seq: number, message: RelayMessage, ahead: ClientSubscription[]): void {
    const resync = this.#resyncs.get(channel) ?? { pending: false, count: 0 };
    this.#resyncs.set(channel, resync);
    if (resync.pending) return;
    if (resync.count < MAX_RESYNCS) {
      resync.count++;
      return this.#resubscribe(channel);
    }
    this.#resyncs.delete(channel);
    for (const subscription of ahead) {
      this.#host.gap({ channel, after: String(subscription.cursor), oldest: String(seq) });
      subscription.cursor = seq - 1;
      subscription.offer(seq, message, (error) => this.#handlerFailed(subscription, error));
    }
  }

  #resubscribe(channel: string): void {
    const resync = this.#resyncs.get(channel) ?? { pending: false, count: 0 };
    resync.pending = true;
    this.#resyncs.set(channel, resync);
    this.#transport?.resubscribe(channel);
  }

  #gap({ channel, oldest }: GapEvent): void {
    const oldestSeq = parseSeq(oldest);
    if (oldestSeq === undefined) return;
    for (const subscription of this.#subscriptions) {
      if (subscription.channel !== channel || !subscription.active) continue;
      const cursor = subscription.cursor;
      if (cursor !== undefined && cursor >= oldestSeq - 1) continue;
      subscription.cursor = oldestSeq - 1;
      // A subscription that starts from now has lost nothing.
      if (cursor !== undefined) this.#host.gap({ channel, after: String(cursor), oldest });
    }
  }

  #channelError(channel: string, error: RelayClientError): void {
    if (!TERMINAL_CHANNEL_ERRORS.has(error.code)) {
      // A limit (rate_limited) or a hiccup (internal): ask again after a backoff delay.
      this.#host.error(error);
      setTimeout(() => this.#transport?.sync(), backoffDelay(this.#attempt, this.#host.options.backoff, this.#host.options.random));
      return;
    }
    for (const subscription of [...this.#subscriptions]) {
      if (subscription.channel !== channel) continue;
      this.#subscriptions.delete(subscription);
      subscription.active = false;
    }
    this.#host.error(error);
    this.#queueSync();
  }

  #handlerFailed(subscription: ClientSubscription, cause: unknown): void {
    this.#host.error(
      new RelayClientError("handler_failed", `A handler of ${subscription.channel} threw: ${String(cause)}`, { channel: subscription.channel, cause }),
    );
  }

  async #onFailed(failure: TransportFailure): Promise<void> {
    this.#transport = undefined;
    const generation = ++this.#generation;
    const token = this.#token;
    const freshTokens = typeof this.#host.options.token === "function";
    switch (failure.kind) {
      case "unsupported":
        if (this.#fallback()) return void this.#connect();
        return this.#terminate(failure.error);
      case "stalled":
        this.#setState(this.#state === "open" ? "reconnecting" : this.#state);
        return this.#blocked();
      case "http":
        // An expired token on a working connection: a fresh one may do; a refused handshake will not.
        if (failure.status === 401 && freshTokens && failure.opened) return this.#renewToken(token);
        if (failure.status === 400 || failure.status === 401 || failure.status === 403 || failure.status === 404) return this.#terminate(failure.error);
        return this.#retry();
      case "lost": {
        const { code } = failure;
        if (code !== undefined && isTerminalCloseCode(code)) {
          if (code === CloseCode.TokenExpired && freshTokens) return this.#renewToken(token);
          const name = CLOSE_ERRORS[code] ?? "closed";
          return this.#terminate(
            new RelayClientError(name, `The relay closed the connection (${code}${failure.reason ? `: ${failure.reason}` : ""}); not reconnecting.`, {
              closeCode: code,
            }),
          );
        }
        if (!failure.opened) {
          this.#setState(this.#state === "open" ? "reconnecting" : this.#state);
          // Never got through: is the relay down (wait and retry), refusing the token (stop), or is
          // this transport blocked (fall back)? A browser WebSocket cannot see the upgrade's status.
          const verdict = await this.#probe(token);
          if (generation !== this.#generation) return;
          if (verdict instanceof RelayClientError) return this.#terminate(verdict);
          if (verdict === "up") return this.#blocked();
        }
        return this.#retry();
      }
    }
  }

  /**
   * The transport failed while the relay answers plain HTTP: it looks blocked. `auto` tries it again
   * at once (the relay may just have come back) and falls back after `fallbackAfter` such failures
   * in a row; a pinned transport can only wait and retry.
   */
  #blocked(): void {
    const canFallBack = this.#chainIndex + 1 < this.#chain.length;
    if (!canFallBack) return this.#retry();
    if (++this.#strikes >= this.#host.options.fallbackAfter) this.#fallback();
    void this.#connect();
  }

  /**
   * The token expired: reconnect at once with a fresher one. When the token function hands back the
   * same token, or one that expires no later, the relay would close it again as soon as it opens, so
   * the reconnect waits a backoff delay that grows with every such renewal in a row.
   */
  async #renewToken(expired: string | undefined): Promise<void> {
    this.#setState("reconnecting");
    const fetched = await this.#fetchToken(this.#generation);
    if (!fetched) return;
    const { token } = fetched;
    if (!isFresherToken(token, expired)) return this.#retry(this.#staleRenewals++);
    this.#staleRenewals = 0;
    this.#attempt = 0;
    void this.#connect({ token });
  }

  /** Reconnects after a backoff delay for `attempt` (by default the next failed attempt). */
  #retry(attempt?: number): void {
    this.#setState("reconnecting");
    const { backoff, random } = this.#host.options;
    const delay = backoffDelay(attempt ?? this.#attempt++, backoff, random);
    clearTimeout(this.#timer);
    const generation = this.#generation;
    this.#timer = setTimeout(() => {
      if (generation === this.#generation) void this.#connect();
    }, delay);
  }

  #fallback(): boolean {
    if (this.#chainIndex + 1 >= this.#chain.length) return false;
    this.#chainIndex++;
    this.#strikes = 0;
    this.#attempt = 0;
    return true;
  }

  #terminate(error: RelayClientError): void {
    this.stop();
    this.#host.terminated(this, error);
  }

  /**
   * Asks the relay by plain HTTP, with the connection's token, about one of its channels (or its
   * health when it has none): `down` when nothing answers, the refusal when the token is refused.
   */
  async #probe(token: string | undefined): Promise<"down" | "up" | RelayClientError> {
    const { options } = this.#host;
    const channel = this.positions().keys().next().value;
    const url = channel === undefined ? `${options.httpBase}/healthz` : `${options.httpBase}${channelPath(channel)}`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), options.connectTimeout);
    try {
      const response = await options.fetch(url, { headers: authHeaders(token), signal: abort.signal });
      if (response.status === 401 || response.status === 403) return await errorFromResponse(response, channel);
      // A proxy's 502 while the relay restarts is no answer from the relay.
      return response.status >= 500 ? "down" : "up";
    } catch {
      return "down";
    } finally {
      clearTimeout(timer);
    }
  }

  #queueSync(): void {
    if (this.#syncQueued) return;
    this.#syncQueued = true;
    queueMicrotask(() => {
      this.#syncQueued = false;
      this.#transport?.sync();
    });
  }
}
