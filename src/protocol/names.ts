/** Channel names: 1–128 of `A–Z a–z 0–9 . _ - : ~ @`, starting with a letter or digit. */
const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._\-:~@]{0,127}$/;

/** Event names: 1–64 of `A–Z a–z 0–9 . _ : -`; the `relay.` prefix is the relay's own. */
const EVENT_NAME = /^[A-Za-z0-9._:-]{1,64}$/;
const RESERVED_EVENT_PREFIX = "relay.";

export const DEFAULT_EVENT = "message";

/** How the relay's own SSE events are named; `relay.` is reserved for them. */
export const RelayEvent = { Gap: "relay.gap", Join: "relay.join", Leave: "relay.leave" } as const;

/** The rules above as sentences for error messages. */
export const CHANNEL_NAME_RULE = "Channel names are 1–128 characters of A–Z a–z 0–9 . _ - : ~ @ and start with a letter or digit.";
export const EVENT_NAME_RULE = 'Event names are 1–64 characters of A–Z a–z 0–9 . _ : - and must not start with "relay.".';
export const IDEMPOTENCY_KEY_RULE = "Idempotency keys are 1–128 printable ASCII characters.";

/**
 * @example isChannelName("chat.room-1") // true
 * @example isChannelName("a/b")         // false
 */
export function isChannelName(value: string): boolean {
  return CHANNEL_NAME.test(value);
}

/**
 * A publisher's event name; names under `relay.` are reserved for the relay's own events.
 * @example isEventName("update")     // true
 * @example isEventName("relay.gap")  // false
 */
export function isEventName(value: string): boolean {
  return EVENT_NAME.test(value) && !value.startsWith(RESERVED_EVENT_PREFIX);
}

/** Idempotency keys: 1–128 printable ASCII characters. */
export function isIdempotencyKey(value: string): boolean {
  return /^[\x20-\x7e]{1,128}$/.test(value);
}
