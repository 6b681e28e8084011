import type { ConnectionLease } from "../limits/connections";
import { parseSeq } from "../protocol/ids";
import { isChannelName } from "../protocol/names";
import { type FormatName, isFormatName } from "./subscriber-formats";

/** How a subscriber reaches the relay; channel info and presence count by it. */
export type Transport = "ws" | "sse" | "poll";

const TRANSPORTS: readonly string[] = ["ws", "sse", "poll"] satisfies Transport[];

/** What the Worker tells a room when it hands it a subscriber socket. */
export interface ConnectParams {
  channel: string;
  /** `json`: a WebSocket the room accepts; `sse`: an SSE stream the room holds and answers with. */
  format: FormatName;
  transport: Transport;
  /** Who this is in presence lists: the token's `sub`, else a connection id. */
  clientId: string;
  /** Replay retained messages after this id before going live. */
  since?: number;
  /** The socket is the client's own, so the room answers its frames (publish, errors). */
  clientFrames?: boolean;
  canPublish?: boolean;
  /** The error a refused publish gets: no token (`unauthorized`) or no right (`forbidden`). */
  publishRefusal?: "unauthorized" | "forbidden";
  /** Also send this subscriber join and leave events. */
  presence?: boolean;
  /** When the client's token expires (seconds since the epoch); the room closes the socket then. */
  expiresAt?: number;
  /** The client address's connection slot, which the room gives back when the socket closes. */
  lease?: ConnectionLease;
}

// Rooms are reachable only through the Worker's stubs, so this URL never comes from a client.
const ROOM_ORIGIN = "https://room.internal";
const MAX_CLIENT_ID = 256;

/**
 * The request the Worker sends a room with `stub.fetch()`: a WebSocket upgrade for the JSON
 * format, a plain GET answered with the stream itself for SSE.
 */
export function connectRequest(params: ConnectParams): Request {
  const url = new URL("/connect", ROOM_ORIGIN);
  const query = url.searchParams;
  query.set("channel", params.channel);
  query.set("format", params.format);
  query.set("transport", params.transport);
  query.set("client", params.clientId);
  if (params.since !== undefined) query.set("since", String(params.since));
  if (params.clientFrames) query.set("frames", "1");
  if (params.canPublish) query.set("publish", "1");
  if (params.publishRefusal) query.set("refusal", params.publishRefusal);
  if (params.presence) query.set("presence", "1");
  if (params.expiresAt !== undefined) query.set("expires", String(params.expiresAt));
  if (params.lease) {
    query.set("lease_key", params.lease.key);
    query.set("lease_id", params.lease.id);
  }
  return new Request(url, params.format === "sse" ? {} : { headers: { Upgrade: "websocket" } });
}

/** Reads a connect request in the room; `undefined` for anything the Worker would not send. */
export function readConnectRequest(request: Request): ConnectParams | undefined {
  const url = new URL(request.url);
  const query = url.searchParams;
  const channel = query.get("channel");
  const format = query.get("format");
  const transport = query.get("transport");
  const clientId = query.get("client");
  const sinceParam = query.get("since");
  const since = sinceParam === null ? undefined : parseSeq(sinceParam);
  const leaseKey = query.get("lease_key");
  const leaseId = query.get("lease_id");
  const expiresParam = query.get("expires");
  const expiresAt = expiresParam === null ? undefined : Number(expiresParam);
  if (url.pathname !== "/connect" || channel === null || !isChannelName(channel) || !isFormatName(format)) return undefined;
  const upgrade = request.headers.get("Upgrade")?.toLowerCase() === "websocket";
  if (upgrade !== (format !== "sse")) return undefined;
  if (transport === null || !TRANSPORTS.includes(transport) || !clientId || clientId.length > MAX_CLIENT_ID) return undefined;
  if (sinceParam !== null && since === undefined) return undefined;
  if (expiresAt !== undefined && !Number.isFinite(expiresAt)) return undefined;
  return {
    channel,
    format,
    transport: transport as Transport,
    clientId,
    since,
    clientFrames: query.get("frames") === "1",
    canPublish: query.get("publish") === "1",
    publishRefusal: query.get("refusal") === "unauthorized" ? "unauthorized" : "forbidden",
    presence: query.get("presence") === "1",
    expiresAt,
    lease: leaseKey !== null && leaseId !== null ? { key: leaseKey, id: leaseId } : undefined,
  };
}
