/** One event of a `text/event-stream`, as the SSE spec assembles it from fields. */
export interface ParsedSSEEvent {
  /** The `id` field, when the event had one. */
  id: string | undefined;
  /** The `event` field; `message` when absent. */
  event: string;
  /** The `data` lines joined by `\n`; `undefined` for an event without data (an id-only event). */
  data: string | undefined;
}

/**
 * An incremental SSE parser: feed it text as it arrives, in chunks cut anywhere, and it calls
 * `onEvent` for each complete event. Comments (keep-alives) and `retry` are skipped; an event still
 * incomplete when the stream ends is never reported, as the spec requires.
 *
 * @example
 * const parser = new SSEParser((e) => console.log(e));
 * parser.push("id: 1\nevent: up"); parser.push("date\ndata: hi\n\n"); // { id: "1", event: "update", data: "hi" }
 */
export class SSEParser {
  readonly #onEvent: (event: ParsedSSEEvent) => void;
  #buffer = "";
  #id: string | undefined;
  #event = "";
  #data: string[] = [];
  #hasId = false;
  /** A chunk ended in CR: if the next starts with LF, that LF belongs to the same line break. */
  #skipLeadingLF = false;

  constructor(onEvent: (event: ParsedSSEEvent) => void) {
    this.#onEvent = onEvent;
  }

  push(chunk: string): void {
    if (this.#skipLeadingLF && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.#skipLeadingLF = false;
    this.#buffer += chunk;
    let start = 0;
    for (;;) {
      const cr = this.#buffer.indexOf("\r", start);
      const lf = this.#buffer.indexOf("\n", start);
      if (cr < 0 && lf < 0) break;
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      const line = this.#buffer.slice(start, end);
      if (end === cr && this.#buffer[end + 1] === "\n") start = end + 2;
      else {
        start = end + 1;
        if (end === cr && start === this.#buffer.length) this.#skipLeadingLF = true;
      }
      this.#line(line);
    }
    this.#buffer = this.#buffer.slice(start);
  }

  #line(line: string): void {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        break;
      case "event":
        this.#event = value;
        break;
      case "id":
        if (!value.includes("\0")) {
          this.#id = value;
          this.#hasId = true;
        }
        break;
    }
  }

  #dispatch(): void {
    const hasData = this.#data.length > 0;
    if (hasData || this.#hasId) {
      this.#onEvent({ id: this.#hasId ? this.#id : undefined, event: this.#event || "message", data: hasData ? this.#data.join("\n") : undefined });
    }
    this.#id = undefined;
    this.#hasId = false;
    this.#event = "";
    this.#data = [];
  }
}
