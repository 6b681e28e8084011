import type { PresenceFrame } from "../protocol/frames";
import type { StoredMessage } from "../room/message-log";
import type { DeliveryCounts } from "../room/observers";

/** Shard `index` of a hot channel; channel names hold no `/`, so no room is ever named like a shard. */
export function shardOf(env: Env, channel: string, index: number) {
  return env.SHARDS.get(env.SHARDS.idFromName(`${channel}/shard/${index}`));
}

/** What the room queues for a shard: a stored message, a join or leave on another shard, or how far it has stored. */
export type FanoutItem = { message: StoredMessage } | { presence: PresenceFrame } | { stored: number };

/** One push from the room to a shard: what was queued for it since the last one. */
export interface FanoutPush {
  channel: string;
  index: number;
  /** The attachment the room pushes for (Room.attachShard). */
  epoch: string;
  /** In id order. */
  messages: StoredMessage[];
  presence: PresenceFrame[];
  /** The room has stored up to this id (after a restart: the shard fills what it missed). */
  stored: number;
}

/** A shard's answer: how many subscribers it holds (none, and the room lets it go), and what it delivered and dropped since its last answer. */
export interface PushAnswer extends DeliveryCounts {
  subscribers: number;
  epoch: string | undefined;
}

/**
 * A room whose channel fanned out by itself (FANOUT_AFTER) answers a newcomer with this header,
 * naming how many shards to spread over, instead of taking it; the Worker places it on a shard.
 */
export const FANOUT_HEADER = "Relay-Fanout";

export function fanoutRedirect(shards: number): Response {
  return new Response(null, { status: 307, headers: { [FANOUT_HEADER]: String(shards) } });
}
