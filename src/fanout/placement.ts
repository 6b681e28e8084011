import type { RelayConfig } from "../config";
import { type ConnectParams, connectRequest } from "../room/connect-request";
import { roomOf } from "../room/stub";
import { configuredShards, shardFor } from "./settings";
import { shardOf } from "./stub";

/**
 * Hands a subscriber to the object that will hold it: the channel's room, or for a hot channel one
 * of its shards, picked by hashing a fresh connection id — so a connect costs no round trip to the
 * room, and a reconnect storm of a whole stadium never passes through it. A subscriber that
 * reconnects may land on another shard; resume makes that safe.
 */
export function connectSubscriber(env: Env, config: RelayConfig, params: ConnectParams): Promise<Response> {
  const shards = configuredShards(config.hotChannels, params.channel);
  if (shards <= 1) return roomOf(env, params.channel).fetch(connectRequest(params));
  const index = shardFor(crypto.randomUUID(), shards);
  return shardOf(env, params.channel, index).fetch(connectRequest({ ...params, shard: { index, count: shards } }));
}
