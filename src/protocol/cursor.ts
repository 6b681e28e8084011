import { parseSeq } from "./ids";
import { isChannelName } from "./names";

/**
 * A multi-channel SSE stream's position in each of its channels, carried as the event id:
 * `channel=id` pairs joined by commas, in the stream's channel order. `=` and `,` never occur in
 * channel names, so the text is unambiguous, and a browser's `Last-Event-ID` resumes every channel.
 *
 * @example formatCursor(new Map([["news", 17], ["chat", 4]])) // "news=17,chat=4"
 */
export type Cursor = Map<string, number>;

export function formatCursor(cursor: Cursor): string {
  return Array.from(cursor, ([channel, seq]) => `${channel}=${seq}`).join(",");
}

/**
 * Reads a cursor; `undefined` when it is malformed (bad pair, bad name or id, repeated channel).
 * @example parseCursor("news=17,chat=4") // Map { "news" => 17, "chat" => 4 }
 */
export function parseCursor(text: string): Cursor | undefined {
  const cursor: Cursor = new Map();
  for (const pair of text.split(",")) {
    const at = pair.indexOf("=");
    if (at < 0) return undefined;
    const channel = pair.slice(0, at);
    const seq = parseSeq(pair.slice(at + 1));
    if (!isChannelName(channel) || seq === undefined || cursor.has(channel)) return undefined;
    cursor.set(channel, seq);
  }
  return cursor;
}
