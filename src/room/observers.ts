import { type RelayConfig, webhookTarget } from "../config";
import { logEvent } from "../observability/log";
import { Metric, Metrics } from "../observability/metrics";
import type { Transport } from "../protocol/transports";
import { OccupancyLedger, type Occupant, type WebhookEvent } from "../webhooks/events";
import type { MessageStore } from "./message-store";

/** A subscriber as observers see it: who (its token `sub`, if any) and how it is connected. */
export interface Watched extends Occupant {
  transport: Transport;
}

/** The durable counters channel info shows: every message stored, delivered and dropped. */
export interface ChannelCounters {
  published: number;
  delivered: number;
  dropped: number;
}

/** Messages written to subscribers, and subscribers dropped for falling behind. */
export type DeliveryCounts = Omit<ChannelCounters, "published">;

const COUNTER_KEYS = { delivered: "delivered_count", dropped: "dropped_count" } as const;

export interface RoomObserversOptions {
  ctx: DurableObjectState;
  env: Env;
  config: RelayConfig;
  store: MessageStore;
  channel: () => string;
  /** The subscribers the room holds right now (after a wake-up: its hibernated sockets). */
  subscribers: () => Iterable<Watched>;
  /**
   * A room sends webhook events and keeps the channel's durable counters. A shard, which sees only
   * part of the channel, does neither: it hands what it delivered and dropped to the room (`report`).
   */
  role: "room" | "shard";
}

/**
 * What the room tells the world about itself, in one place so its handlers stay about
 * subscribers: webhook events through the queue (occupancy and members), Analytics Engine
 * metrics, and the durable `published` / `delivered` / `dropped` counters of channel info.
 * Long-polls come and go with each request, so they count in metrics but not in occupancy.
 */
export class RoomObservers {
  readonly #options: RoomObserversOptions;
  readonly #metrics: Metrics;
  readonly #queue: Queue<WebhookEvent> | undefined;
  #ledger: OccupancyLedger | undefined;
  #storedCounters: DeliveryCounts | undefined;
  /** A shard's deliveries and drops not yet handed to the room. */
  #unreported: DeliveryCounts = { delivered: 0, dropped: 0 };
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: RoomObserversOptions) {
    this.#options = options;
    this.#metrics = new Metrics(options.env.METRICS);
    this.#queue = options.role === "room" && webhookTarget(options.config) ? (options.env.WEBHOOK_QUEUE as Queue<WebhookEvent> | undefined) : undefined;
  }

  /** Call before the subscriber is counted anywhere else (accepted, or added to the streams). */
  joined(subscriber: Watched): void {
    this.#metrics.count(Metric.Connect, this.#options.channel(), subscriber.transport);
    if (this.#queue && subscriber.transport !== "poll") this.#send(this.#ledgerNow().join(subscriber, Date.now()));
  }

  /** Call while the subscriber is still counted among the room's subscribers. */
  left(subscriber: Watched): void {
    this.#metrics.count(Metric.Disconnect, this.#options.channel(), subscriber.transport);
    if (this.#queue && subscriber.transport !== "poll") this.#send(this.#ledgerNow().leave(subscriber, Date.now()));
  }

  /** A stored message went out to `recipients` subscribers. (Publishes are counted where they are timed: room/publish.ts.) */
  delivered(recipients: number): void {
    this.#metrics.count(Metric.Delivery, this.#options.channel(), "", recipients);
    this.#bump("delivered", recipients);
  }

  gap(): void {
    this.#metrics.count(Metric.Gap, this.#options.channel());
  }

  /** A subscriber fell too far behind and was dropped (it resumes from where it got to). */
  dropped(transport: Transport): void {
    this.#metrics.count(Metric.SlowConsumerDrop, this.#options.channel(), transport);
    this.#bump("dropped", 1);
  }

  /** The relay closed a connection on its own (a limit, an expired token): one log line, no contents. */
  forcedClose(transport: Transport, code: number, reason: string): void {
    logEvent("warn", "connection.closed", { channel: this.#options.channel(), transport, code, reason });
  }

  counters(): ChannelCounters {
    return { published: this.#options.store.lastSeq, ...this.#stored() };
  }

  /** A shard's deliveries and drops since it last reported them, handed over once. */
  report(): DeliveryCounts {
    const counts = this.#unreported;
    this.#unreported = { delivered: 0, dropped: 0 };
    return counts;
  }

  /**
   * Adds what a shard reported. Kept with the room's next own count, or within a second: a shard's
   * push answer adds no storage write of its own (a hot channel's pushes are many).
   */
  reported({ delivered, dropped }: DeliveryCounts): void {
    if (delivered === 0 && dropped === 0) return;
    const stored = this.#stored();
    stored.delivered += delivered;
    stored.dropped += dropped;
    this.#flushTimer ??= setTimeout(() => this.#flush(), 1000);
  }

  #bump(counter: keyof DeliveryCounts, by: number): void {
    if (by === 0) return;
    if (this.#options.role === "shard") {
      this.#unreported[counter] += by;
      return;
    }
    const stored = this.#stored();
    stored[counter] += by;
    // What shards reported meanwhile is kept with it; otherwise only this counter changed.
    if (this.#flushTimer !== undefined) this.#flush();
    else this.#options.store.setMeta(COUNTER_KEYS[counter], stored[counter]);
  }

  #flush(): void {
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const stored = this.#stored();
    for (const counter of ["delivered", "dropped"] as const) this.#options.store.setMeta(COUNTER_KEYS[counter], stored[counter]);
  }

  /** The durable counters, read from storage once per instance of the room (every publish adds to one). */
  #stored(): DeliveryCounts {
    const { store } = this.#options;
    this.#storedCounters ??= {
      delivered: Number(store.getMeta(COUNTER_KEYS.delivered) ?? 0),
      dropped: Number(store.getMeta(COUNTER_KEYS.dropped) ?? 0),
    };
    return this.#storedCounters;
  }

  /** Built from the subscribers the room holds the first time it is needed after a wake-up. */
  #ledgerNow(): OccupancyLedger {
    this.#ledger ??= OccupancyLedger.of(
      this.#options.channel(),
      [...this.#options.subscribers()].filter((s) => s.transport !== "poll"),
    );
    return this.#ledger;
  }

  #send(events: WebhookEvent[]): void {
    if (!this.#queue || events.length === 0) return;
    const queue = this.#queue;
    this.#options.ctx.waitUntil(
      queue.sendBatch(events.map((body) => ({ body, contentType: "json" as const }))).catch((error: unknown) => {
        logEvent("error", "webhook.enqueue_failed", { channel: this.#options.channel(), error: String(error) });
      }),
    );
  }
}
