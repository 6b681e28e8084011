import { RelayError } from "./errors";
import { parseSeq } from "./ids";
import { CHANNEL_NAME_RULE, EVENT_NAME_RULE, IDEMPOTENCY_KEY_RULE, isChannelName, isEventName, isIdempotencyKey } from "./names";

// The checks every way in (HTTP routes, frames turned into publishes, RPC) applies to what a
// client sent; each throws the RelayError that API.md names.

/** A channel name from anywhere (path, query, JSON); throws `invalid_channel` unless valid. */
export function requireChannel(value: unknown): string {
  if (typeof value !== "string" || !isChannelName(value)) throw invalidChannel();
  return value;
}

export function invalidChannel(): RelayError {
  return new RelayError("invalid_channel", CHANNEL_NAME_RULE);
}

/** An optional event name from anywhere; `undefined` when absent (an empty one is invalid). */
export function optionalEvent(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !isEventName(value)) throw new RelayError("invalid_event", EVENT_NAME_RULE);
  return value;
}

/** An optional Idempotency-Key from anywhere. */
export function optionalIdempotencyKey(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !isIdempotencyKey(value)) {
    throw new RelayError("invalid_idempotency_key", IDEMPOTENCY_KEY_RULE);
  }
  return value;
}

/** A message id given as a cursor (`since`, `Last-Event-ID`). */
export function cursor(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seq = parseSeq(value);
  if (seq === undefined) throw new RelayError("invalid_request", `${name} must be a message id: a whole number from 0 up.`);
  return seq;
}

/** A count's default and the most it may be; more counts as the most. */
export interface CountRange {
  fallback: number;
  max: number;
}

/** History pages: 100 messages unless `limit` says otherwise, at most 1000. */
export const HISTORY_PAGE: CountRange = { fallback: 100, max: 1000 };
/** How long a long-poll waits: 25 s unless `timeout` says otherwise, at most 60. */
export const POLL_TIMEOUT_SECONDS: CountRange = { fallback: 25, max: 60 };

/**
 * A count such as `limit` or `timeout`: digits only; absent is the fallback, above `max` counts as `max`.
 * @example optionalCount("timeout", "99999999999999999999", POLL_TIMEOUT_SECONDS) // 60
 */
export function optionalCount(name: string, value: string | undefined, { fallback, max }: CountRange): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value)) throw new RelayError("invalid_request", `${name} must be a whole number from 0 up.`);
  return Math.min(Number(value), max);
}

/** `rewind=N`: start with the channel's last N retained messages, at most 100; absent is none. */
export const REWIND: CountRange = { fallback: 0, max: 100 };
/** The `frames` query of WebSocket routes: whether the client takes batch frames (`frames=batch`). */
export function batchFramesOption(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value !== "batch")
    throw new RelayError("invalid_request", 'frames must be "batch" (several messages in one frame), or left out for one message per frame.');
  return true;
}
