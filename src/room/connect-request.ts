import { isChannelName } from "../protocol/names";
import { parseSeq } from "../protocol/ids";
import { isSubscriberKind, type SubscriberKind } from "./subscriber-formats";

/** What the Worker tells a room when it hands it a subscriber socket. */
export interface ConnectParams {
  channel: string;
  kind: SubscriberKind;
  /** Replay retained messages after this id before going live. */
  since?: number;
  canPublish: boolean;
}

// Rooms are reachable only through the Worker's stubs, so this URL never comes from a client.
const ROOM_ORIGIN = "https://room.internal";

/** The WebSocket upgrade request the Worker sends to a room with `stub.fetch()`. */
export function connectRequest(params: ConnectParams): Request {
  const url = new URL("/connect", ROOM_ORIGIN);
  url.searchParams.set("channel", params.channel);
  url.searchParams.set("kind", params.kind);
  if (params.since !== undefined) url.searchParams.set("since", String(params.since));
  if (params.canPublish) url.searchParams.set("publish", "1");
  return new Request(url, { headers: { Upgrade: "websocket" } });
}

/** Reads a connect request in the room; `undefined` for anything the Worker would not send. */
export function readConnectRequest(request: Request): ConnectParams | undefined {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return undefined;
  const url = new URL(request.url);
  const channel = url.searchParams.get("channel");
  const kind = url.searchParams.get("kind");
  const sinceParam = url.searchParams.get("since");
  const since = sinceParam === null ? undefined : parseSeq(sinceParam);
  if (url.pathname !== "/connect" || channel === null || !isChannelName(channel) || !isSubscriberKind(kind)) return undefined;
  if (sinceParam !== null && since === undefined) return undefined;
  return { channel, kind, since, canPublish: url.searchParams.get("publish") === "1" };
}
