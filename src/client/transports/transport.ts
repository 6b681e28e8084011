import type { Envelope } from "../../protocol/envelope";
import type { ResolvedOptions } from "../defaults";
import type { RelayClientError } from "../errors";
import type { GapEvent, TransportName } from "../types";

/**
 * Why a transport stopped. The connection decides what it means (retry, fall back, give up):
 * - `unsupported`: this environment cannot run it at all (no WebSocket, constructor threw);
 * - `stalled`: it answered but its stream never flowed (a buffering proxy);
 * - `http`: the relay refused with an HTTP error;
 * - `lost`: it closed or failed; `opened` says whether it had worked first.
 */
export type TransportFailure =
  | { kind: "unsupported"; error: RelayClientError }
  | { kind: "stalled" }
  | { kind: "http"; status: number; error: RelayClientError; opened: boolean }
  | { kind: "lost"; opened: boolean; code?: number; reason?: string };

/** What a transport reports to its connection; it reports nothing after `close()`. */
export interface TransportEvents {
  /** The transport works: the connection is open. */
  open(): void;
  /** Where a channel stands, for subscriptions that did not say where to start. */
  position(channel: string, lastId: number): void;
  message(envelope: Envelope): void;
  gap(gap: GapEvent): void;
  /** The relay refused one channel (the others go on). */
  channelError(channel: string, error: RelayClientError): void;
  /** Stopped for good; called once. */
  failed(failure: TransportFailure): void;
}

/** Channels to carry, each with the id to resume after (`undefined`: from now on). */
export type Positions = ReadonlyMap<string, number | undefined>;

export interface TransportContext {
  options: ResolvedOptions;
  token: string | undefined;
  events: TransportEvents;
  /** The channels to carry and their resume points, read whenever the transport (re)subscribes. */
  positions(): Positions;
}

/** One way of carrying a connection's channels; one file per transport. */
export interface Transport {
  readonly name: TransportName;
  start(): void;
  /** The set of channels changed: subscribe new ones, drop the others. */
  sync(): void;
  /** Replay a channel from its position again (a subscription joined behind the others). */
  resubscribe(channel: string): void;
  close(): void;
}

/** Authorization header for HTTP transports, when there is a token. */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/** A channel's URL path segment. */
export function channelPath(channel: string): string {
  return `/v1/channels/${encodeURIComponent(channel)}`;
}
