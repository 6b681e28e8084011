import type { ConnectionLease } from "../limits/connections";
import { parseSeq } from "../protocol/ids";
import { isChannelName } from "../protocol/names";
import { isTransport, type Transport } from "../protocol/transports";

/**
 * How a room delivers to a subscriber: over a hibernatable WebSocket of JSON frames (`socket`: a
 * client's own channel socket, or one the Worker holds for a multi-channel or long-poll client),
 * or as an SSE stream the room holds and answers the connect request with (`stream`).
 */
export type Delivery = "socket" | "stream";

/** A client's own channel WebSocket: the room answers its frames, publishes among them. */
export interface OwnSocket {
  canPublish: boolean;
  /** The error a refused publish gets: no token (`unauthorized`) or no right (`forbidden`). */
  publishRefusal?: "unauthorized" | "forbidden";
  /** Whose publishes count together against PUBLISH_RATE_LIMITER, which the room asks as the Worker does. */
  publisherKey: string;
}

/** What the Worker tells a room when it hands it a subscriber. */
export interface ConnectParams {
  channel: string;
  delivery: Delivery;
  /** What the subscriber counts as in channel info and presence; independent of `delivery`. */
  transport: Transport;
  /** Who this is in presence lists: the token's `sub`, else a connection id. */
  clientId: string;
  /** The token's `sub`, when it has one: webhooks' `member`. */
  subject?: string;
  /** Replay retained messages after this id before going live. */
  since?: number;
  /** Without `since`: start with the last this many retained messages (`rewind=N`). */
  rewind?: number;
  /** Also send this subscriber join and leave events. */
  presence?: boolean;
  /** A socket that takes batch frames (`?frames=batch`): several messages in one frame. */
  batch?: boolean;
  /** The client's token's `exp` (seconds since the epoch); the room closes the subscriber at tokenDeadlineMs(expiresAt). */
  expiresAt?: number;
  /** The client address's connection slot, which the room gives back when the subscriber leaves. */
  lease?: ConnectionLease;
  /** Only for a client's own channel socket. */
  ownSocket?: OwnSocket;
  /** Set when the subscriber is placed on a shard of a hot channel: which one, of how many. */
  shard?: ShardPlace;
}

export interface ShardPlace {
  index: number;
  count: number;
}

// Rooms are reachable only through the Worker's stubs, so this URL never comes from a client.
const ROOM_ORIGIN = "https://room.internal";
const MAX_CLIENT_ID = 256;

/**
 * The request the Worker sends a room with `stub.fetch()`: a WebSocket upgrade for a socket, a
 * plain GET answered with the stream itself for a stream.
 */
export function connectRequest(params: ConnectParams): Request {
  const url = new URL("/connect", ROOM_ORIGIN);
  const query = url.searchParams;
  query.set("channel", params.channel);
  query.set("delivery", params.delivery);
  query.set("transport", params.transport);
  query.set("client", params.clientId);
  if (params.subject !== undefined) query.set("subject", params.subject);
  if (params.since !== undefined) query.set("since", String(params.since));
  if (params.rewind) query.set("rewind", String(params.rewind));
  if (params.presence) query.set("presence", "1");
  if (params.batch) query.set("frames", "batch");
  if (params.expiresAt !== undefined) query.set("expires", String(params.expiresAt));
  if (params.lease) {
    query.set("lease_key", params.lease.key);
    query.set("lease_id", params.lease.id);
  }
  if (params.shard) {
    query.set("shard", String(params.shard.index));
    query.set("shards", String(params.shard.count));
  }
  if (params.ownSocket) {
    query.set("own", "1");
    if (params.ownSocket.canPublish) query.set("publish", "1");
    if (params.ownSocket.publishRefusal) query.set("refusal", params.ownSocket.publishRefusal);
    query.set("publisher", params.ownSocket.publisherKey);
  }
  return new Request(url, params.delivery === "stream" ? {} : { headers: { Upgrade: "websocket" } });
}

/** Reads a connect request in the room; `undefined` for anything the Worker would not send. */
export function readConnectRequest(request: Request): ConnectParams | undefined {
  const url = new URL(request.url);
  const query = url.searchParams;
  const channel = query.get("channel");
  const delivery = query.get("delivery");
  const transport = query.get("transport");
  const clientId = query.get("client");
  const sinceParam = query.get("since");
  const since = sinceParam === null ? undefined : parseSeq(sinceParam);
  const leaseKey = query.get("lease_key");
  const leaseId = query.get("lease_id");
  const rewindParam = query.get("rewind");
  const rewind = rewindParam === null ? undefined : parseSeq(rewindParam);
  const expiresParam = query.get("expires");
  const expiresAt = expiresParam === null ? undefined : Number(expiresParam);
  if (url.pathname !== "/connect" || channel === null || !isChannelName(channel)) return undefined;
  if (delivery !== "socket" && delivery !== "stream") return undefined;
  const upgrade = request.headers.get("Upgrade")?.toLowerCase() === "websocket";
  if (upgrade !== (delivery === "socket")) return undefined;
  if (!isTransport(transport) || !clientId || clientId.length > MAX_CLIENT_ID) return undefined;
  if (sinceParam !== null && since === undefined) return undefined;
  if (rewindParam !== null && rewind === undefined) return undefined;
  if (expiresAt !== undefined && !Number.isFinite(expiresAt)) return undefined;
  const frames = query.get("frames");
  if (frames !== null && (frames !== "batch" || delivery !== "socket")) return undefined;
  const params: ConnectParams = { channel, delivery, transport, clientId, since, presence: query.get("presence") === "1", expiresAt };
  if (rewind) params.rewind = rewind;
  const subject = query.get("subject");
  if (subject !== null && subject.length <= MAX_CLIENT_ID) params.subject = subject;
  if (frames === "batch") params.batch = true;
  if (leaseKey !== null && leaseId !== null) params.lease = { key: leaseKey, id: leaseId };
  const shard = query.get("shard");
  const shards = query.get("shards");
  if (shard !== null || shards !== null) {
    const index = shard === null ? undefined : parseSeq(shard);
    const count = shards === null ? undefined : parseSeq(shards);
    if (index === undefined || count === undefined || index >= count) return undefined;
    params.shard = { index, count };
  }
  if (query.get("own") === "1") {
    const publisherKey = query.get("publisher");
    if (!publisherKey) return undefined;
    params.ownSocket = {
      canPublish: query.get("publish") === "1",
      publishRefusal: query.get("refusal") === "unauthorized" ? "unauthorized" : "forbidden",
      publisherKey,
    };
  }
  return params;
}
