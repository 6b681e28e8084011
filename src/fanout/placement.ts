import type { RelayConfig } from "../config";
import { type ConnectParams, connectRequest } from "../room/connect-request";
import { roomOf } from "../room/stub";
import { configuredShards, shardFor } from "./settings";
import { FANOUT_HEADER, shardOf } from "./stub";

/** How long a Worker isolate remembers that a channel fanned out by itself, before asking its room again. */
const REMEMBER_FANOUT_MS = 30_000;
/** Channels remembered at most (the oldest is forgotten first): a bound on the isolate's memory. */
const REMEMBER_MAX_CHANNELS = 10_000;
const fannedOut = new Map<string, { shards: number; until: number }>();

/**
 * Hands a subscriber to the object that will hold it: the channel's room, or for a hot channel one
 * of its shards, picked by hashing a fresh connection id — so a connect costs no round trip to the
 * room, and a reconnect storm of a whole stadium never passes through it. A channel that fanned out
 * by itself (FANOUT_AFTER) is learned from its room once per isolate and REMEMBER_FANOUT_MS. A
 * subscriber that reconnects may land on another shard; resume makes that safe.
 */
export async function connectSubscriber(env: Env, config: RelayConfig, params: ConnectParams): Promise<Response> {
  const shards = Math.max(configuredShards(config.hotChannels, params.channel), rememberedShards(params.channel));
  if (shards > 1) return connectToShard(env, params, shards);
  const response = await roomOf(env, params.channel).fetch(connectRequest(params));
  const redirected = Number(response.headers.get(FANOUT_HEADER) ?? 0);
  if (redirected <= 1) return response;
  remember(params.channel, redirected);
  return connectToShard(env, params, redirected);
}

function connectToShard(env: Env, params: ConnectParams, shards: number): Promise<Response> {
  const index = shardFor(crypto.randomUUID(), shards);
  return shardOf(env, params.channel, index).fetch(connectRequest({ ...params, shard: { index, count: shards } }));
}

function rememberedShards(channel: string): number {
  const entry = fannedOut.get(channel);
  if (!entry) return 0;
  if (entry.until > Date.now()) return entry.shards;
  fannedOut.delete(channel);
  return 0;
}

function remember(channel: string, shards: number): void {
  fannedOut.delete(channel);
  fannedOut.set(channel, { shards, until: Date.now() + REMEMBER_FANOUT_MS });
  if (fannedOut.size > REMEMBER_MAX_CHANNELS) fannedOut.delete(fannedOut.keys().next().value!);
}
