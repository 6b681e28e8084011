import { parseSeq } from "../protocol/ids";
import { IDEMPOTENCY_KEY_RULE, isChannelName, isEventName, isIdempotencyKey } from "../protocol/names";
import { backoffDelay } from "./backoff";
import { Connection, type ConnectionHost } from "./connection";
import { type ResolvedOptions, resolveOptions } from "./defaults";
import { Emitter } from "./emitter";
import { errorFromResponse, RelayClientError } from "./errors";
import { type ResponseLike, randomId } from "./platform";
import { ClientSubscription } from "./subscription";
import { authHeaders, channelPath } from "./transports/transport";
import type {
  ConnectionState,
  MessageHandler,
  PublishOptions,
  PublishReceipt,
  RelayClientEvents,
  RelayClientOptions,
  SubscribeOptions,
  Subscription,
  TransportName,
  TransportPreference,
} from "./types";

interface QueuedPublish {
  channel: string;
  data: string;
  event: string | undefined;
  /** The publish's one idempotency key, sent with every attempt on every transport, so it is stored once. */
  key: string;
  sending: boolean;
  tokenRefreshed: boolean;
  resolve(receipt: PublishReceipt): void;
  reject(error: RelayClientError): void;
}

/** The error a publish gets back when it may be tried again later. */
class Retryable extends Error {
  readonly delay: number | undefined;
  constructor(message: string, delay?: number) {
    super(message);
    this.delay = delay;
  }
}

/**
 * A client of Edge Relay: subscriptions that see every message exactly once and in order, across
 * reconnects and transport switches, and publishes that wait out an outage.
 *
 * @example
 * const relay = new RelayClient({ url: "https://relay.example.com", token: () => fetchToken() });
 * relay.on("state", ({ newState }) => console.log(newState, relay.transport));
 * const sub = relay.subscribe("news", (msg) => console.log(msg.id, msg.event, msg.data), { since: 0 });
 * await relay.publish("news", "hello", { event: "greeting" });
 * sub.unsubscribe();
 * relay.close();
 */
export class RelayClient {
  readonly #options: ResolvedOptions;
  readonly #emitter: Emitter<RelayClientEvents>;
  readonly #connections = new Map<TransportPreference, Connection>();
  readonly #host: ConnectionHost;
  #state: ConnectionState = "closed";
  /** Whether the application has the client stopped (before `connect()`, after `close()`). */
  #stopped = true;
  #lastToken: string | undefined;
  readonly #queue: QueuedPublish[] = [];
  #pumping = false;
  #publishAttempt = 0;
  #publishTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last HTTP publish failed on the network: the client counts as offline for publishing. */
  #httpDown = false;
  readonly #onOnline = (): void => this.#wake(true);
  readonly #onVisibility = (): void => {
    if (this.#options.document?.visibilityState === "visible") this.#wake(false);
  };

  constructor(options: RelayClientOptions = {}) {
    this.#options = resolveOptions(options);
    this.#emitter = new Emitter((error) => this.#reportUnhandled(error));
    this.#host = {
      options: this.#options,
      token: async () => (this.#lastToken = await this.#readToken()),
      gap: (event) => this.#emitter.emit("gap", event),
      error: (error) => this.#emitError(error),
      stateChanged: () => this.#refreshState(),
      opened: () => {
        this.#publishAttempt = 0;
        void this.#pump();
      },
      terminated: (_connection, error) => {
        this.#emitError(error);
        this.#refreshState();
        if (this.#state === "closed") this.#rejectQueue(error);
      },
    };
    if (this.#options.autoConnect) this.connect();
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The transport the client's default connection is on (or trying): `ws`, `sse` or `poll`. */
  get transport(): TransportName | undefined {
    return this.#connections.get(this.#options.transport)?.transport;
  }

  /**
   * Subscribes `handler` to a channel. It is called once per message, in id order, from `since`
   * on (default: messages published from now), across reconnects and transport switches.
   *
   * @example relay.subscribe("chat", (msg) => render(msg), { since: lastSeenId })
   * @throws {RelayClientError} `invalid_channel`, or `invalid_request` for a bad `since`
   */
  subscribe(channel: string, handler: MessageHandler, options: SubscribeOptions = {}): Subscription {
    if (!isChannelName(channel)) throw new RelayClientError("invalid_channel", `Not a channel name: ${JSON.stringify(channel)}.`, { channel });
    let cursor: number | undefined;
    if (options.since !== undefined) {
      cursor = parseSeq(String(options.since));
      if (cursor === undefined)
        throw new RelayClientError("invalid_request", `"since" must be a message id (a whole number from 0), got ${String(options.since)}.`, { channel });
    }
    const preference = options.transport ?? this.#options.transport;
    const subscription = new ClientSubscription(channel, handler, cursor, preference, (ended) => this.#unsubscribed(ended));
    this.#connection(preference).add(subscription);
    return subscription;
  }

  /**
   * Publishes `data` to a channel: over the open WebSocket when there is one (acknowledged by the
   * relay), else by HTTP. While offline it waits in a bounded queue and goes out, in order, on
   * reconnect. A publish whose socket drops, or whose acknowledgement is late, is sent again, over a
   * socket or by HTTP; every attempt carries the publish's one idempotency key (`idempotencyKey`, or
   * one the client makes), so it is stored once.
   *
   * @example const { id } = await relay.publish("news", JSON.stringify(item), { event: "item" });
   * @throws {RelayClientError} `queue_full`, `closed`, or the relay's refusal (`forbidden`, `message_too_large`, …)
   */
  publish(channel: string, data: string, options: PublishOptions = {}): Promise<PublishReceipt> {
    if (!isChannelName(channel)) return Promise.reject(new RelayClientError("invalid_channel", `Not a channel name: ${JSON.stringify(channel)}.`, { channel }));
    if (options.event !== undefined && !isEventName(options.event)) {
      return Promise.reject(new RelayClientError("invalid_event", `Not an event name: ${JSON.stringify(options.event)}.`, { channel }));
    }
    if (options.idempotencyKey !== undefined && !isIdempotencyKey(options.idempotencyKey)) {
      return Promise.reject(new RelayClientError("invalid_idempotency_key", IDEMPOTENCY_KEY_RULE, { channel }));
    }
    if (typeof data !== "string") return Promise.reject(new TypeError("publish() takes the data as a string; JSON.stringify objects first."));
    if (this.#state === "closed") return Promise.reject(new RelayClientError("closed", "The client is closed; call connect() first.", { channel }));
    const offline = !this.#anyOpen() || this.#httpDown;
    const { maxQueuedPublishes } = this.#options;
    if (offline && this.#queue.filter((item) => !item.sending).length >= maxQueuedPublishes) {
      return Promise.reject(
        new RelayClientError(
          "queue_full",
          `Offline, and ${maxQueuedPublishes} publishes already wait to be sent (maxQueuedPublishes); this one was not queued.`,
          { channel },
        ),
      );
    }
    return new Promise<PublishReceipt>((resolve, reject) => {
      this.#queue.push({
        channel,
        data,
        event: options.event,
        key: options.idempotencyKey ?? randomId(this.#options.random),
        sending: false,
        tokenRefreshed: false,
        resolve,
        reject,
      });
      void this.#pump();
    });
  }

  /**
   * Listens to `state` ({ oldState, newState, transport }), `gap` ({ channel, after, oldest }) or
   * `error` (a RelayClientError). Returns the function that stops listening.
   */
  on<K extends keyof RelayClientEvents>(event: K, listener: (payload: RelayClientEvents[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  off<K extends keyof RelayClientEvents>(event: K, listener: (payload: RelayClientEvents[K]) => void): void {
    this.#emitter.off(event, listener);
  }

  /** Connects (again): after `autoConnect: false`, `close()`, or a terminal error. Subscriptions resume where they were. */
  connect(): void {
    if (this.#stopped) {
      this.#stopped = false;
      this.#options.window?.addEventListener("online", this.#onOnline);
      this.#options.document?.addEventListener("visibilitychange", this.#onVisibility);
    }
    this.#connection(this.#options.transport);
    for (const connection of this.#connections.values()) connection.start();
    this.#refreshState();
  }

  /** Disconnects everything and rejects queued publishes. Subscriptions are kept for a later `connect()`. */
  close(): void {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#options.window?.removeEventListener("online", this.#onOnline);
      this.#options.document?.removeEventListener("visibilitychange", this.#onVisibility);
    }
    clearTimeout(this.#publishTimer);
    for (const connection of this.#connections.values()) connection.stop();
    this.#refreshState();
    this.#rejectQueue(new RelayClientError("closed", "The client was closed before this publish was sent."));
  }

  #connection(preference: TransportPreference): Connection {
    let connection = this.#connections.get(preference);
    if (!connection) {
      connection = new Connection(preference, this.#host);
      this.#connections.set(preference, connection);
      if (!this.#stopped) connection.start();
    }
    return connection;
  }

  #unsubscribed(subscription: ClientSubscription): void {
    const connection = this.#connections.get(subscription.preference);
    if (!connection) return;
    connection.remove(subscription);
    // The default connection stays (publishing); a per-subscription one goes with its last subscription.
    if (subscription.preference !== this.#options.transport && connection.isEmpty) {
      connection.stop();
      this.#connections.delete(subscription.preference);
      this.#refreshState();
    }
  }

  /** The one place the client's state changes: the connections' states, summed up. */
  #refreshState(): void {
    const states = [...this.#connections.values()].map((connection) => connection.state).filter((state) => state !== "closed");
    let next: ConnectionState;
    if (this.#stopped || states.length === 0) next = "closed";
    else if (states.includes("reconnecting")) next = "reconnecting";
    else if (states.includes("connecting")) next = "connecting";
    else next = "open";
    this.#setState(next);
  }

  #setState(newState: ConnectionState): void {
    const oldState = this.#state;
    if (newState === oldState) return;
    this.#state = newState;
    this.#emitter.emit("state", { oldState, newState, transport: this.transport });
  }

  /** Online again, or visible again: reconnect what waits, check what seems open, send what is queued. */
  #wake(networkChanged: boolean): void {
    if (this.#stopped) return;
    for (const connection of this.#connections.values()) {
      connection.reconnectNow(networkChanged);
      connection.checkAlive();
    }
    this.#publishAttempt = 0;
    void this.#pump();
  }

  async #readToken(): Promise<string | undefined> {
    const token = this.#options.token;
    return typeof token === "function" ? await token() : token;
  }

  /** Sends queued publishes in order while the client is open: pipelined over a WebSocket, one by one over HTTP. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    clearTimeout(this.#publishTimer);
    try {
      while (this.#anyOpen()) {
        const item = this.#queue.find((queued) => !queued.sending);
        if (!item) break;
        const socket = this.#webSocket();
        if (socket) {
          item.sending = true;
          socket.publish(item.channel, item.data, item.event, item.key).then(
            (id) => this.#settle(item, { channel: item.channel, id }),
            (error: RelayClientError) => {
              if (error.code !== "disconnected") return this.#fail(item, error);
              // Not acknowledged: sent again once connected (in its place in the queue).
              item.sending = false;
              queueMicrotask(() => void this.#pump());
            },
          );
          continue;
        }
        // Publishes still in flight on a socket that went away come back to the queue first.
        if (this.#queue.some((queued) => queued.sending)) break;
        item.sending = true;
        try {
          const receipt = await this.#publishOverHttp(item);
          this.#httpDown = false;
          this.#publishAttempt = 0;
          this.#settle(item, receipt);
        } catch (error) {
          item.sending = false;
          if (error instanceof Retryable) {
            this.#httpDown = error.delay === undefined;
            const { backoff, random } = this.#options;
            const wait = error.delay ?? backoffDelay(this.#publishAttempt++, backoff, random);
            this.#publishTimer = setTimeout(() => void this.#pump(), wait);
            break;
          }
          this.#fail(item, error instanceof RelayClientError ? error : new RelayClientError("publish_failed", String(error), { cause: error }));
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #publishOverHttp(item: QueuedPublish): Promise<PublishReceipt> {
    const { fetch, httpBase } = this.#options;
    if (this.#lastToken === undefined && this.#options.token !== undefined) this.#lastToken = await this.#readToken();
    const query = item.event === undefined ? "" : `?event=${encodeURIComponent(item.event)}`;
    let response: ResponseLike;
    try {
      response = await fetch(`${httpBase}${channelPath(item.channel)}/messages${query}`, {
        method: "POST",
        headers: { "Content-Type": "text/plain;charset=UTF-8", "Idempotency-Key": item.key, ...authHeaders(this.#lastToken) },
        body: item.data,
      });
    } catch (cause) {
      throw new Retryable(`network: ${String(cause)}`);
    }
    if (response.ok) {
      let text: string;
      try {
        text = await response.text();
      } catch (cause) {
        // Cut after the 201 but before its body: the message may be stored, and the retry's same
        // Idempotency-Key answers with it instead of storing it again.
        throw new Retryable(`network: ${String(cause)}`);
      }
      const body = JSON.parse(text) as { id: string; channel?: string };
      return { channel: body.channel ?? item.channel, id: String(body.id) };
    }
    if (response.status === 401 && typeof this.#options.token === "function" && !item.tokenRefreshed) {
      item.tokenRefreshed = true;
      this.#lastToken = await this.#readToken();
      throw new Retryable("token refreshed", 0);
    }
    if (response.status === 429 || response.status >= 500) {
      const seconds = Number(response.headers.get("Retry-After"));
      throw new Retryable(`HTTP ${response.status}`, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined);
    }
    throw await errorFromResponse(response, item.channel);
  }

  /** Whether some connection is open: publishes can go (the others may be reconnecting). */
  #anyOpen(): boolean {
    for (const connection of this.#connections.values()) if (connection.state === "open") return true;
    return false;
  }

  #webSocket() {
    const preferred = this.#connections.get(this.#options.transport)?.webSocket;
    if (preferred) return preferred;
    for (const connection of this.#connections.values()) if (connection.webSocket) return connection.webSocket;
    return undefined;
  }

  #settle(item: QueuedPublish, receipt: PublishReceipt): void {
    const at = this.#queue.indexOf(item);
    if (at < 0) return;
    this.#queue.splice(at, 1);
    item.resolve(receipt);
  }

  #fail(item: QueuedPublish, error: RelayClientError): void {
    const at = this.#queue.indexOf(item);
    if (at < 0) return;
    this.#queue.splice(at, 1);
    item.reject(error);
  }

  #rejectQueue(error: RelayClientError): void {
    for (const item of this.#queue.splice(0)) item.reject(error);
  }

  #emitError(error: RelayClientError): void {
    if (this.#emitter.listenerCount("error") === 0 && error.code === "handler_failed") return this.#reportUnhandled(error.cause);
    this.#emitter.emit("error", error);
  }

  /** An application callback threw and nobody listens for errors: rethrown outside the client, so it is seen. */
  #reportUnhandled(error: unknown): void {
    queueMicrotask(() => {
      throw error;
    });
  }
}
