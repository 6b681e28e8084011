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
 * Turns a channel's joins and leaves into webhook events: `channel.occupied` for the first
 * subscriber in and `channel.vacated` for the last one out (every transport counts), and
 * `member.added` / `member.removed` once per token `sub`, however many connections it holds.
 * Pure: the room feeds it joins and leaves and sends what it returns.
 *
 * @example
 * const ledger = new OccupancyLedger("news");
 * ledger.join({ subject: "alice" }, now); // [channel.occupied, member.added alice]
 * ledger.join({ subject: "alice" }, now); // [] — a second tab
 */
export class OccupancyLedger {
  #total = 0;
  readonly #connections = new Map<string, number>();

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

  join({ subject }: Occupant, ts: number): WebhookEvent[] {
    const events: WebhookEvent[] = [];
    this.#total += 1;
    if (this.#total === 1) events.push(this.#event(WebhookEventType.ChannelOccupied, ts));
    if (subject !== undefined) {
      const count = (this.#connections.get(subject) ?? 0) + 1;
      this.#connections.set(subject, count);
      if (count === 1) events.push(this.#event(WebhookEventType.MemberAdded, ts, subject));
    }
    return events;
  }

  leave({ subject }: Occupant, ts: number): WebhookEvent[] {
    if (this.#total === 0) return [];
    const events: WebhookEvent[] = [];
    this.#total -= 1;
    if (subject !== undefined) {
      const count = (this.#connections.get(subject) ?? 0) - 1;
      if (count <= 0) {
        this.#connections.delete(subject);
        events.push(this.#event(WebhookEventType.MemberRemoved, ts, subject));
      } else this.#connections.set(subject, count);
    }
    if (this.#total === 0) events.push(this.#event(WebhookEventType.ChannelVacated, ts));
    return events;
  }

  #event(type: WebhookEventType, ts: number, member?: string): WebhookEvent {
    return { id: this.newId(), type, channel: this.channel, ...(member === undefined ? {} : { member }), ts };
  }
}
