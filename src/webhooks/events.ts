/** What the app's backend hears about, API.md v1.2. */
export const WebhookEventType = {
  ChannelOccupied: "channel.occupied",
  ChannelVacated: "channel.vacated",
  MemberAdded: "member.added",
  MemberRemoved: "member.removed",
} as const;

export type WebhookEventType = (typeof WebhookEventType)[keyof typeof WebhookEventType];

/** One event of a webhook POST's `{"events":[…]}`; `id` lets a receiver drop a redelivered one. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  channel: string;
  /** The token `sub` of a member event. */
  member?: string;
  /** When it happened, ms since the epoch. */
  ts: number;
}

/** A subscriber as the ledger counts it: who (a token `sub`, when there is one). */
export interface Occupant {
  subject?: string;
}

/**
 * What one shard of a hot channel holds, for the subjects it names: connections per token `sub`,
 * "" for those without one (a JWT's empty `sub` is no subject). Absolute counts, not changes, so a
 * report that comes twice or late says nothing wrong once the next one is in.
 */
export type ShardOccupants = Array<[subject: string, connections: number]>;

/** Who a connection counts as: its token `sub`, or "" (counted in occupancy, never a member). */
function keyOf({ subject }: Occupant): string {
  return subject ?? "";
}

/**
 * Turns a channel's joins and leaves into webhook events: `channel.occupied` for the first
 * subscriber in and `channel.vacated` for the last one out (every transport counts), and
 * `member.added` / `member.removed` once per token `sub`, however many connections it holds.
 * A hot channel's subscribers sit on shards, which report what they hold (`setShard`): the events
 * are the channel's, wherever its subscribers are. Pure: the room feeds it and sends what it returns.
 *
 * @example
 * const ledger = new OccupancyLedger("news");
 * ledger.join({ subject: "alice" }, now); // [channel.occupied, member.added alice]
 * ledger.join({ subject: "alice" }, now); // [] — a second tab
 * ledger.setShard(3, [["alice", 1], ["bob", 2]], now); // [member.added bob]
 */
export class OccupancyLedger {
  #total = 0;
  /** Connections per subject over the room and its shards; "" counts those without one. */
  readonly #connections = new Map<string, number>();
  /** What each shard last reported, by shard index. */
  readonly #shards = new Map<number, Map<string, number>>();

  constructor(
    readonly channel: string,
    readonly newId: () => string = () => crypto.randomUUID(),
  ) {}

  /** Starts from the subscribers a room already holds (after it woke from hibernation), without events. */
  static of(channel: string, occupants: Iterable<Occupant>, newId?: () => string): OccupancyLedger {
    const ledger = new OccupancyLedger(channel, newId);
    for (const occupant of occupants) ledger.join(occupant, 0);
    return ledger;
  }

  get total(): number {
    return this.#total;
  }

  /** How many connections `subject` holds over the room and its shards ("" for those without a subject). */
  connectionsOf(subject: string): number {
    return this.#connections.get(subject) ?? 0;
  }

  join(occupant: Occupant, ts: number): WebhookEvent[] {
    return this.#apply([[keyOf(occupant), 1]], ts);
  }

  leave(occupant: Occupant, ts: number): WebhookEvent[] {
    return this.#apply([[keyOf(occupant), -1]], ts);
  }

  /** Takes what shard `index` holds now for the subjects named; returns the channel's events that makes. */
  setShard(index: number, occupants: ShardOccupants, ts: number): WebhookEvent[] {
    const held = this.#shards.get(index) ?? new Map<string, number>();
    const changes: ShardOccupants = [];
    for (const [subject, connections] of occupants) {
      const now = Math.max(0, connections);
      changes.push([subject, now - (held.get(subject) ?? 0)]);
      if (now > 0) held.set(subject, now);
      else held.delete(subject);
    }
    if (held.size > 0) this.#shards.set(index, held);
    else this.#shards.delete(index);
    return this.#apply(changes, ts);
  }

  /** Shard `index` holds nobody any more (let go, or started afresh): its subscribers leave. */
  dropShard(index: number, ts: number): WebhookEvent[] {
    const held = this.#shards.get(index);
    return held
      ? this.setShard(
          index,
          [...held.keys()].map((subject) => [subject, 0]),
          ts,
        )
      : [];
  }

  /** Applies changes in connections per subject: occupied first, then members added or removed, then vacated. */
  #apply(changes: ShardOccupants, ts: number): WebhookEvent[] {
    const events: WebhookEvent[] = [];
    const totalBefore = this.#total;
    const members: WebhookEvent[] = [];
    for (const [subject, by] of changes) {
      const was = this.#connections.get(subject) ?? 0;
      // A leave nobody joined for (a room woken without the sockets it had) changes nothing.
      const now = Math.max(0, was + by);
      this.#total += now - was;
      if (now > 0) this.#connections.set(subject, now);
      else this.#connections.delete(subject);
      if (subject === "") continue;
      if (was === 0 && now > 0) members.push(this.#event(WebhookEventType.MemberAdded, ts, subject));
      if (was > 0 && now === 0) members.push(this.#event(WebhookEventType.MemberRemoved, ts, subject));
    }
    if (totalBefore === 0 && this.#total > 0) events.push(this.#event(WebhookEventType.ChannelOccupied, ts));
    events.push(...members);
    if (totalBefore > 0 && this.#total === 0) events.push(this.#event(WebhookEventType.ChannelVacated, ts));
    return events;
  }

  #event(type: WebhookEventType, ts: number, member?: string): WebhookEvent {
    return { id: this.newId(), type, channel: this.channel, ...(member === undefined ? {} : { member }), ts };
  }
}
