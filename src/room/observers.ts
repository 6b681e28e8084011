import { type RelayConfig, webhookTarget } from "../config";
import { logEvent } from "../observability/log";
import { Metric, Metrics } from "../observability/metrics";
import type { Transport } from "../protocol/transports";
import { OccupancyLedger, type Occupant, type ShardOccupants, type WebhookEvent } from "../webhooks/events";
import { OccupancyReporter } from "../webhooks/occupancy-reporter";
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

/** What a hot channel's shards last reported holding, kept by the room for its webhooks (ShardOccupants). */
const SHARD_OCCUPANTS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS shard_occupants (
    shard INTEGER NOT NULL,
    subject TEXT NOT NULL,
    connections INTEGER NOT NULL,
    PRIMARY KEY (shard, subject)
  ) WITHOUT ROWID;
`;

/** Long-polls come and go with each request: they count in metrics, not in occupancy. */
function occupies(subscriber: Watched): boolean {
  return subscriber.transport !== "poll";
}

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
   * part of the channel, does neither: it hands what it delivered and dropped to the room (`report`),
   * and when webhooks are on, who it holds (`reportOccupancy`).
   */
  role: "room" | "shard";
  /** A shard's report to its room of the connections it holds per subject. */
  reportOccupancy?: (occupants: ShardOccupants) => Promise<void>;
}

/**
 * What the room tells the world about itself, in one place so its handlers stay about
 * subscribers: webhook events through the queue (occupancy and members), Analytics Engine
 * metrics, and the durable `published` / `delivered` / `dropped` counters of channel info.
 * Long-polls come and go with each request, so they count in metrics but not in occupancy.
 * A hot channel's shards report who they hold to the room, whose ledger spans the whole channel;
 * the room keeps their reports in storage, so its events stay right across its own restarts.
 */
export class RoomObservers {
  readonly #options: RoomObserversOptions;
  readonly #metrics: Metrics;
  readonly #queue: Queue<WebhookEvent> | undefined;
  readonly #reporter: OccupancyReporter | undefined;
  #ledger: OccupancyLedger | undefined;
  #storedCounters: DeliveryCounts | undefined;
  /** A shard's deliveries and drops not yet handed to the room. */
  #unreported: DeliveryCounts = { delivered: 0, dropped: 0 };
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: RoomObserversOptions) {
    this.#options = options;
    this.#metrics = new Metrics(options.env.METRICS);
    const webhooks = webhookTarget(options.config);
    if (webhooks && options.role === "room") {
      this.#queue = options.env.WEBHOOK_QUEUE as Queue<WebhookEvent> | undefined;
      if (this.#queue) options.ctx.storage.sql.exec(SHARD_OCCUPANTS_SCHEMA);
    }
    if (webhooks && options.role === "shard" && options.reportOccupancy) {
      this.#reporter = new OccupancyReporter({ send: options.reportOccupancy, connectionsOf: (subject) => this.#ledgerNow().connectionsOf(subject) });
    }
  }

  /** Call before the subscriber is counted anywhere else (accepted, or added to the streams). */
  joined(subscriber: Watched): void {
    this.#metrics.count(Metric.Connect, this.#options.channel(), subscriber.transport);
    if (this.#countsOccupancy(subscriber)) this.#occupancyChanged(subscriber, this.#ledgerNow().join(subscriber, Date.now()));
  }

  /** Call while the subscriber is still counted among the room's subscribers. */
  left(subscriber: Watched): void {
    this.#metrics.count(Metric.Disconnect, this.#options.channel(), subscriber.transport);
    if (this.#countsOccupancy(subscriber)) this.#occupancyChanged(subscriber, this.#ledgerNow().leave(subscriber, Date.now()));
  }

  /** What shard `index` reported holding now (in a room with webhooks): the channel's events, and kept. */
  shardOccupancy(index: number, occupants: ShardOccupants): void {
    if (!this.#queue) return;
    this.#send(this.#ledgerNow().setShard(index, occupants, Date.now()));
    const { sql } = this.#options.ctx.storage;
    for (const [subject, connections] of occupants) {
      if (connections > 0) {
        sql.exec(
          "INSERT INTO shard_occupants (shard, subject, connections) VALUES (?, ?, ?) ON CONFLICT (shard, subject) DO UPDATE SET connections = excluded.connections",
          index,
          subject,
          connections,
        );
      } else sql.exec("DELETE FROM shard_occupants WHERE shard = ? AND subject = ?", index, subject);
    }
  }

  /** Shard `index` holds nobody any more: let go by the room, or attached afresh after a restart that dropped its sockets. */
  shardGone(index: number): void {
    if (!this.#queue) return;
    this.#send(this.#ledgerNow().dropShard(index, Date.now()));
    this.#options.ctx.storage.sql.exec("DELETE FROM shard_occupants WHERE shard = ?", index);
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

  #countsOccupancy(subscriber: Watched): boolean {
    return (this.#queue !== undefined || this.#reporter !== undefined) && occupies(subscriber);
  }

  #occupancyChanged(occupant: Occupant, events: WebhookEvent[]): void {
    this.#send(events);
    this.#reporter?.changed(occupant.subject ?? "");
  }

  /**
   * Built the first time it is needed after a wake-up: from the subscribers the object holds, and
   * in a room from what its shards last reported.
   */
  #ledgerNow(): OccupancyLedger {
    if (this.#ledger) return this.#ledger;
    const ledger = OccupancyLedger.of(this.#options.channel(), [...this.#options.subscribers()].filter(occupies));
    if (this.#queue) {
      const rows = this.#options.ctx.storage.sql.exec<{ shard: number; subject: string; connections: number }>(
        "SELECT shard, subject, connections FROM shard_occupants",
      );
      const byShard = new Map<number, ShardOccupants>();
      for (const { shard, subject, connections } of rows) {
        const occupants = byShard.get(shard) ?? [];
        occupants.push([subject, connections]);
        byShard.set(shard, occupants);
      }
      for (const [shard, occupants] of byShard) ledger.setShard(shard, occupants, 0);
    }
    this.#ledger = ledger;
    return ledger;
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
