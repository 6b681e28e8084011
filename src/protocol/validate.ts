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
