import type { Context } from "hono";
import { RelayError } from "../errors";
import { parseSeq } from "../protocol/ids";
import { isChannelName, isEventName, isIdempotencyKey } from "../protocol/names";

/** The `{channel}` path segment, percent-decoded and validated. */
export function channelParam(c: Context): string {
  const channel = c.req.param("channel") ?? "";
  if (!isChannelName(channel)) throw invalidChannel();
  return channel;
}

export function invalidChannel(): RelayError {
  return new RelayError(
    "invalid_channel",
    "Channel names are 1–128 characters of A–Z a–z 0–9 . _ - : ~ @ and start with a letter or digit.",
  );
}

/** The `event` query of a publish; `undefined` when absent (an empty value is invalid). */
export function eventQuery(c: Context): string | undefined {
  const event = c.req.query("event");
  if (event === undefined) return undefined;
  if (!isEventName(event)) {
    throw new RelayError("invalid_event", 'Event names are 1–64 characters of A–Z a–z 0–9 . _ : - and must not start with "relay.".');
  }
  return event;
}

export function idempotencyKeyHeader(c: Context): string | undefined {
  const key = c.req.header("Idempotency-Key");
  if (key === undefined) return undefined;
  if (!isIdempotencyKey(key)) throw new RelayError("invalid_idempotency_key", "Idempotency-Key must be 1–128 printable ASCII characters.");
  return key;
}

/** `If-Match: "17"`: the last id the publisher expects the channel to have. */
export function ifMatchHeader(c: Context): number | undefined {
  const value = c.req.header("If-Match");
  if (value === undefined) return undefined;
  const seq = parseSeq(value.trim().replace(/^"(.*)"$/, "$1"));
  if (seq === undefined) throw new RelayError("invalid_request", 'If-Match must be a message id in quotes, like "17" ("0" for an empty channel).');
  return seq;
}

/** A message id given as a cursor (`since`, `Last-Event-ID`). */
export function cursor(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seq = parseSeq(value);
  if (seq === undefined) throw new RelayError("invalid_request", `${name} must be a message id: a whole number from 0 up.`);
  return seq;
}

/** Where a subscription resumes: `Last-Event-ID` (what a reconnecting browser sends) wins over `since`. */
export function resumeCursor(c: Context): number | undefined {
  const lastEventId = c.req.header("Last-Event-ID");
  if (lastEventId) return cursor("Last-Event-ID", lastEventId);
  return cursor("since", c.req.query("since"));
}

/** A count such as `limit`: digits only; values above `max` count as `max`. */
export function countQuery(c: Context, name: string, fallback: number, max: number): number {
  const value = c.req.query(name);
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value)) throw new RelayError("invalid_request", `${name} must be a whole number from 0 up.`);
  return Math.min(Number(value), max);
}

/** Reads a request body of at most `maxBytes`, answering 413 as soon as it is known to be larger. */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new RelayError("message_too_large", `The message is larger than ${maxBytes} bytes (MAX_MESSAGE_BYTES).`);
  const declared = Number(request.headers.get("Content-Length") ?? Number.NaN);
  if (declared > maxBytes) throw tooLarge();
  if (!request.body) return new Uint8Array();

  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
