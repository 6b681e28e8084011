import { describe, expect, it } from "vitest";
import { type ParsedSSEEvent, SSEParser } from "../../src/client/sse-parser";
import { encodeSSE } from "../../src/sse/encode";
import { mulberry32 } from "./support";

function parseAll(chunks: string[]): ParsedSSEEvent[] {
  const events: ParsedSSEEvent[] = [];
  const parser = new SSEParser((event) => events.push(event));
  for (const chunk of chunks) parser.push(chunk);
  return events;
}

describe("SSEParser", () => {
  it("reads the relay's events: retry line, id-only position event, messages with names, comments", () => {
    const text =
      encodeSSE({ retry: 3000 }) +
      encodeSSE({ id: "a=0,b=4" }) +
      ": keepalive\n\n" +
      encodeSSE({ id: "a=1,b=4", event: "update", data: '{"x":1}' }) +
      encodeSSE({ event: "relay.gap", data: '{"channel":"a","after":"1","oldest":"5"}' });
    expect(parseAll([text])).toEqual([
      { id: "a=0,b=4", event: "message", data: undefined },
      { id: "a=1,b=4", event: "update", data: '{"x":1}' },
      { id: undefined, event: "relay.gap", data: '{"channel":"a","after":"1","oldest":"5"}' },
    ]);
  });

  it("joins multi-line data and accepts CRLF, CR and LF line ends, also split across chunks", () => {
    expect(parseAll(["data: one\r\ndata: two\rdata: three\n\n"])).toEqual([{ id: undefined, event: "message", data: "one\ntwo\nthree" }]);
    expect(parseAll(["data: x\r", "\n", "\r", "\n"])).toEqual([{ id: undefined, event: "message", data: "x" }]);
  });

  it("gives the same events however the stream is cut into chunks", () => {
    const text = Array.from({ length: 50 }, (_, i) => encodeSSE({ id: `c=${i}`, event: i % 2 ? "odd" : "message", data: `line ${i}\nsecond ${i}` })).join(
      ": ka\n\n",
    );
    const whole = parseAll([text]);
    const random = mulberry32(3);
    for (let round = 0; round < 50; round++) {
      const chunks: string[] = [];
      for (let at = 0; at < text.length; ) {
        const size = 1 + Math.floor(random() * 40);
        chunks.push(text.slice(at, at + size));
        at += size;
      }
      expect(parseAll(chunks)).toEqual(whole);
    }
    expect(whole).toHaveLength(50);
  });

  it("never reports an event the stream ended in the middle of", () => {
    expect(parseAll(['id: a=1\nevent: message\ndata: {"type":"mess'])).toEqual([]);
    expect(parseAll(["data: complete\n\ndata: partial\n"])).toEqual([{ id: undefined, event: "message", data: "complete" }]);
  });
});
