import { EventSource } from "eventsource";
import { describe, expect, it } from "vitest";
import { encodeSSE, encodeSSEComment } from "../../src/sse/encode";
import { mulberry32, pick } from "../support/prng";

interface ParsedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/**
 * A minimal parser following the WHATWG "event stream interpretation" rules, so the tests can
 * say what a browser's EventSource would dispatch for the relay's bytes.
 */
function parseEventStream(text: string): { events: ParsedEvent[]; retry: number | undefined } {
  const events: ParsedEvent[] = [];
  let retry: number | undefined;
  let data = "";
  let type = "";
  let lastEventId = "";
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  // The text after the last line break is an unfinished line: the spec discards it.
  lines.pop();
  for (const line of lines) {
    if (line === "") {
      if (data !== "") events.push({ type: type || "message", data: data.slice(0, -1), lastEventId });
      data = "";
      type = "";
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data += `${value}\n`;
    else if (field === "id" && !value.includes("\0")) lastEventId = value;
    else if (field === "retry" && /^[0-9]+$/.test(value)) retry = Number(value);
  }
  return { events, retry };
}

describe("encodeSSE", () => {
  it("writes single-line data", () => {
    expect(encodeSSE({ data: "hello" })).toBe("data: hello\n\n");
  });

  it("writes each line of multi-line data as its own data: line, for every kind of line break", () => {
    expect(encodeSSE({ data: "a\nb" })).toBe("data: a\ndata: b\n\n");
    expect(encodeSSE({ data: "a\r\nb" })).toBe("data: a\ndata: b\n\n");
    expect(encodeSSE({ data: "a\rb" })).toBe("data: a\ndata: b\n\n");
    expect(encodeSSE({ data: "a\r\n\r\nb\n\rc" })).toBe("data: a\ndata: \ndata: b\ndata: \ndata: c\n\n");
  });

  it("keeps a trailing line break as an empty last data: line", () => {
    expect(encodeSSE({ data: "a\n" })).toBe("data: a\ndata: \n\n");
  });

  it("writes empty data as one empty data: line", () => {
    expect(encodeSSE({ data: "" })).toBe("data: \n\n");
  });

  it("passes unicode and emoji through unchanged", () => {
    expect(encodeSSE({ data: "héllo wörld ✓ 😀 日本" })).toBe("data: héllo wörld ✓ 😀 日本\n\n");
  });

  it("keeps a leading space of data (only the one after the colon is eaten by the parser)", () => {
    expect(encodeSSE({ data: " indented" })).toBe("data:  indented\n\n");
  });

  it("writes retry, id, event, data in that order", () => {
    expect(encodeSSE({ data: "x", event: "update", id: "17", retry: 3000 })).toBe("retry: 3000\nid: 17\nevent: update\ndata: x\n\n");
    expect(encodeSSE({ id: "17", event: "message", data: "a\nb" })).toBe("id: 17\nevent: message\ndata: a\ndata: b\n\n");
  });

  it("writes only the fields given", () => {
    expect(encodeSSE({ retry: 3000 })).toBe("retry: 3000\n\n");
    expect(encodeSSE({ retry: 0 })).toBe("retry: 0\n\n");
    expect(encodeSSE({ id: "5" })).toBe("id: 5\n\n");
    expect(encodeSSE({ event: "ping", data: "x" })).toBe("event: ping\ndata: x\n\n");
  });

  it.each(["a\nb", "a\rb", "a\r\nb", "\n", "1\n\ndata: injected"])("refuses a line break in id (%j)", (value) => {
    expect(() => encodeSSE({ id: value, data: "x" })).toThrow(TypeError);
  });

  it.each(["a\nb", "a\rb", "a\r\nb", "\r", "x\nid: 999"])("refuses a line break in event (%j)", (value) => {
    expect(() => encodeSSE({ event: value, data: "x" })).toThrow(TypeError);
  });

  it("refuses NUL in id, which would make EventSource drop the resume point", () => {
    expect(() => encodeSSE({ id: "1\0", data: "x" })).toThrow(TypeError);
    expect(() => encodeSSE({ id: "\0" })).toThrow(TypeError);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])("refuses retry %s", (retry) => {
    expect(() => encodeSSE({ retry, data: "x" })).toThrow(TypeError);
  });
});

describe("encodeSSEComment", () => {
  it("writes a comment line followed by a blank line", () => {
    expect(encodeSSEComment("keepalive")).toBe(": keepalive\n\n");
  });

  it("is ignored by a conforming parser", () => {
    expect(parseEventStream(encodeSSEComment("keepalive") + encodeSSE({ data: "x" })).events).toEqual([{ type: "message", data: "x", lastEventId: "" }]);
  });

  it("refuses a line break, which would turn the rest into a field", () => {
    expect(() => encodeSSEComment("a\ndata: injected")).toThrow(TypeError);
    expect(() => encodeSSEComment("a\rb")).toThrow(TypeError);
  });
});

const ROUND_TRIP_DATA = [
  "hello",
  "",
  "a\nb",
  "a\r\nb",
  "a\rb",
  "a\n",
  "\n",
  "\r\n\r\n",
  "\n\n\nx",
  "trailing\r",
  " leading space",
  "  two leading spaces",
  ": looks like a comment",
  "data: looks like a field",
  "id: 999\nevent: evil\n\nsecond",
  "emoji 😀 and é and 日本語",
  "\uFEFFbom first",
  "tab\tand nul\0inside",
];

describe("encodeSSE round trip through an SSE parser", () => {
  it.each(ROUND_TRIP_DATA)("delivers %j as the original text with CR and CRLF normalised to LF", (data) => {
    const text = encodeSSE({ retry: 3000 }) + encodeSSE({ id: "7", event: "update", data });
    expect(parseEventStream(text)).toEqual({
      retry: 3000,
      events: [{ type: "update", data: data.replace(/\r\n?/g, "\n"), lastEventId: "7" }],
    });
  });

  it("delivers random data unchanged apart from line-break normalisation", () => {
    const random = mulberry32(0x5eed);
    const alphabet = ["a", "b", " ", ":", "\n", "\r", "\r\n", "é", "😀", "\0", "d", "data:", "id:"];
    for (let i = 0; i < 500; i++) {
      let data = "";
      const length = Math.floor(random() * 20);
      for (let j = 0; j < length; j++) data += pick(random, alphabet);
      const { events } = parseEventStream(encodeSSE({ id: String(i), data }));
      expect(events).toEqual([{ type: "message", data: data.replace(/\r\n?/g, "\n"), lastEventId: String(i) }]);
    }
  });

  it("is read the same way by the eventsource package", async () => {
    const sent = ["plain", "a\r\nb\rc\nd", "", " spaced", "😀\n"];
    const text = encodeSSE({ retry: 60_000 }) + sent.map((data, i) => encodeSSE({ id: String(i + 1), event: "update", data })).join("");
    const received = await collect(text, "update", sent.length);
    expect(received).toEqual(sent.map((data, i) => ({ data: data.replace(/\r\n?/g, "\n"), lastEventId: String(i + 1) })));
  });
});

/** Feeds `text` to an EventSource through a fake fetch and gathers `count` events of `type`. */
function collect(text: string, type: string, count: number): Promise<{ data: string; lastEventId: string }[]> {
  return new Promise((resolve, reject) => {
    const received: { data: string; lastEventId: string }[] = [];
    const source = new EventSource("http://relay.test/v1/channels/news/events", {
      fetch: async () => new Response(text, { status: 200, headers: { "content-type": "text/event-stream" } }),
    });
    const timer = setTimeout(() => {
      source.close();
      reject(new Error(`timed out with ${received.length} of ${count} events`));
    }, 2000);
    source.addEventListener(type, (event) => {
      received.push({ data: event.data, lastEventId: event.lastEventId });
      if (received.length === count) {
        clearTimeout(timer);
        source.close();
        resolve(received);
      }
    });
  });
}
