import type { ConnectionLease } from "../limits/connections";
import type { PresenceMember } from "../protocol/frames";
import type { Transport } from "../protocol/transports";
import type { SubscriberFormat } from "./subscriber-formats";

/** One subscriber as a room (or a shard) sees it, whatever carries its messages. */
export interface Subscriber {
  transport: Transport;
  /** The token's `sub`, when it has one: webhooks' `member`. */
  subject?: string;
  /** Who it is in presence lists; none for a long-poll, which comes and goes with each request. */
  member?: PresenceMember;
  /** The client address's connection slot, given back when it leaves. */
  lease?: ConnectionLease;
  /** When its token stops being honoured (tokenDeadlineMs), if it has one. */
  deadline?: number;
}

/** Who a broadcast is for: every subscriber that takes messages, or those that asked for presence. */
export type Audience = "messages" | "presence";

/**
 * The subscribers of one kind that a room holds — hibernatable WebSockets (SocketSubscribers) or
 * the SSE streams it answers with (SSEStreams) — behind what the room needs of every kind, so
 * counting, listing, broadcasting and expiry never ask which kind a subscriber is.
 */
export interface SubscriberSet {
  /** How this kind is sent a broadcast, encoded once for all of them. */
  readonly format: SubscriberFormat;
  readonly size: number;
  /** Every subscriber that has not left. */
  subscribers(): Iterable<Subscriber>;
  /** How many use `transport`. */
  count(transport: Transport): number;
  /** Sends finished text in this set's format to each subscriber `audience` names, except `except`; returns how many. */
  broadcast(text: string, audience: Audience, except?: WebSocket): number;
  /** Ends the subscribers whose token stopped being honoured by `nowMs`; each leaves as any subscriber does. */
  endExpired(nowMs: number): void;
}
