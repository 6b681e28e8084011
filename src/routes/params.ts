import type { Context } from "hono";
import { RelayError } from "../protocol/errors";
import { parseSeq } from "../protocol/ids";
import { type CountRange, cursor, optionalCount, requireChannel } from "../protocol/validate";

/** The `{channel}` path segment, percent-decoded and validated. */
export function channelParam(c: Context): string {
  return requireChannel(c.req.param("channel"));
}

/** `If-Match: "17"`: the last id the publisher expects the channel to have. */
export function ifMatchHeader(c: Context): number | undefined {
  const value = c.req.header("If-Match");
  if (value === undefined) return undefined;
  const seq = parseSeq(value.trim().replace(/^"(.*)"$/, "$1"));
  if (seq === undefined) throw new RelayError("invalid_request", 'If-Match must be a message id in quotes, like "17" ("0" for an empty channel).');
  return seq;
}

/** WebSocket routes answer a plain request with 426. */
export function requireUpgrade(upgrade: string | undefined): void {
  if (upgrade?.toLowerCase() !== "websocket") {
    throw new RelayError("upgrade_required", "This endpoint speaks WebSocket: connect with a WebSocket client (Upgrade: websocket).");
  }
}

/** Where a subscription resumes: `Last-Event-ID` (what a reconnecting browser sends) wins over `since`. */
export function resumeFrom(c: Context): number | undefined {
  const lastEventId = c.req.header("Last-Event-ID");
  if (lastEventId) return cursor("Last-Event-ID", lastEventId);
  return cursor("since", c.req.query("since"));
}

/** A count in the query such as `limit` or `timeout`; see `optionalCount`. */
export function countQuery(c: Context, name: string, range: CountRange): number {
  return optionalCount(name, c.req.query(name), range);
}

/**
 * How much of an oversize body is read and thrown away past its limit before the 413, so the
 * connection can carry the next request: wrangler's dev proxy stalls the next request on a
 * connection whose chunked body was left unread. Reading costs time, not memory (nothing is kept);
 * past this bound the body is cancelled and the connection dropped, which a client notices at once.
 */
const DRAIN_MAX_BYTES = 1 << 20;

/**
 * Reads a request body of at most `maxBytes`, throwing `tooLarge()` once it is known to be larger:
 * at once for a larger Content-Length, else after draining the rest (up to DRAIN_MAX_BYTES).
 */
export async function readBody(request: Request, maxBytes: number, tooLarge: () => RelayError): Promise<Uint8Array> {
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
      await drain(reader, DRAIN_MAX_BYTES);
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

/** Reads and drops what is left of a body, up to `maxBytes`; cancels it if there is more. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, maxBytes: number): Promise<void> {
  let drained = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    drained += value.byteLength;
    if (drained > maxBytes) return reader.cancel();
  }
}
