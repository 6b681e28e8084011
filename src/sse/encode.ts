/** One Server-Sent Events event. Fields left out are not written. */
export interface SSEEvent {
  id?: string;
  event?: string;
  data?: string;
  /** Reconnection delay for the browser, in ms. */
  retry?: number;
}

const LINE_BREAK = /\r\n|\r|\n/;

/**
 * Encodes one SSE event. Data with line breaks becomes several `data:` lines, so an
 * `EventSource` receives the original text (CR and CRLF normalised to LF, as SSE requires).
 * `id` and `event` must not contain CR or LF: they would let a value inject a field.
 *
 * @example encodeSSE({ id: "1", event: "message", data: "a\nb" })
 * // "id: 1\nevent: message\ndata: a\ndata: b\n\n"
 * @throws {TypeError} when `id` or `event` contains a line break, or `retry` is not a whole number
 */
export function encodeSSE({ id, event, data, retry }: SSEEvent): string {
  let out = "";
  if (retry !== undefined) {
    if (!Number.isSafeInteger(retry) || retry < 0) throw new TypeError("SSE retry must be a whole number of ms");
    out += `retry: ${retry}\n`;
  }
  if (id !== undefined) out += `id: ${singleLine("id", id)}\n`;
  if (event !== undefined) out += `event: ${singleLine("event", event)}\n`;
  if (data !== undefined) {
    for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  }
  return `${out}\n`;
}

/**
 * Encodes a comment line, which clients ignore; used as a keep-alive.
 * @example encodeSSEComment("keepalive") // ": keepalive\n\n"
 */
export function encodeSSEComment(text: string): string {
  return `: ${singleLine("comment", text)}\n\n`;
}

function singleLine(field: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new TypeError(`SSE ${field} must not contain a line break`);
  // NUL in an id makes EventSource ignore the field; refuse it rather than send a broken resume point.
  if (field === "id" && value.includes("\0")) throw new TypeError("SSE id must not contain NUL");
  return value;
}
