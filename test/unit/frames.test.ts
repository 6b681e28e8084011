import { describe, expect, it } from "vitest";
import { type ParseResult, parseClientFrame } from "../../src/protocol/frames";
import { mulberry32, pick } from "../support/prng";

const options = { maxDataBytes: 16 };
const parse = (raw: string | ArrayBuffer) => parseClientFrame(raw, options);
const frame = (value: unknown) => parse(JSON.stringify(value));

/** The error code and ref of a failed parse, or the frame of a good one. */
function outcome(result: ParseResult) {
  return result.ok ? { frame: result.frame } : { code: result.error.error.code, ref: result.error.ref };
}

describe("parseClientFrame: valid publish frames", () => {
  it("reads data alone", () => {
    expect(parse('{"type":"publish","data":"hi"}')).toEqual({ ok: true, frame: { type: "publish", data: "hi" } });
  });

  it("reads event and ref", () => {
    expect(frame({ type: "publish", data: "hi", event: "chat:msg-1", ref: "c1" })).toEqual({
      ok: true,
      frame: { type: "publish", data: "hi", event: "chat:msg-1", ref: "c1" },
    });
  });

  it("accepts empty data and an empty ref", () => {
    expect(frame({ type: "publish", data: "", ref: "" })).toEqual({ ok: true, frame: { type: "publish", data: "", ref: "" } });
  });

  it("drops unknown fields from the frame it returns", () => {
    expect(frame({ type: "publish", data: "x", extra: 1 })).toEqual({ ok: true, frame: { type: "publish", data: "x" } });
  });

  it("accepts a 128-character ref", () => {
    const ref = "r".repeat(128);
    expect(outcome(frame({ type: "publish", data: "x", ref }))).toEqual({ frame: { type: "publish", data: "x", ref } });
  });
});

describe("parseClientFrame: malformed frames", () => {
  it.each<[string, string | ArrayBuffer]>([
    ["binary", new TextEncoder().encode('{"type":"publish","data":"hi"}').buffer as ArrayBuffer],
    ["not JSON", "hello"],
    ["truncated JSON", '{"type":"publish"'],
    ["empty text", ""],
    ["a JSON array", '[{"type":"publish","data":"x"}]'],
    ["null", "null"],
    ["a number", "42"],
    ["a string", '"publish"'],
    ["true", "true"],
  ])("refuses %s as invalid_frame", (_, raw) => {
    const result = parse(raw);
    expect(result).toEqual({ ok: false, error: { type: "error", error: { code: "invalid_frame", message: expect.stringMatching(/\w/) } } });
  });

  it.each<[string, object]>([
    ["an unknown type", { type: "shout", data: "x", ref: "r1" }],
    ["no type", { data: "x", ref: "r1" }],
    ["a ping written differently", { type: "ping", ref: "r1" }],
    ["type inherited from Object.prototype", { type: "toString", ref: "r1" }],
    ["missing data", { type: "publish", ref: "r1" }],
    ["null data", { type: "publish", data: null, ref: "r1" }],
    ["numeric data", { type: "publish", data: 5, ref: "r1" }],
    ["object data", { type: "publish", data: { a: 1 }, ref: "r1" }],
  ])("refuses %s as invalid_frame, keeping the ref", (_, value) => {
    expect(outcome(frame(value))).toEqual({ code: "invalid_frame", ref: "r1" });
  });

  it.each<[string, unknown]>([
    ["the reserved relay. prefix", "relay.x"],
    ["a newline", "a\nb"],
    ["65 characters", "e".repeat(65)],
    ["an empty name", ""],
    ["a space", "a b"],
    ["a number", 7],
    ["null", null],
  ])("refuses an event with %s as invalid_event, keeping the ref", (_, event) => {
    expect(outcome(frame({ type: "publish", data: "x", event, ref: "r2" }))).toEqual({ code: "invalid_event", ref: "r2" });
  });

  it("accepts a 64-character event", () => {
    expect(frame({ type: "publish", data: "x", event: "e".repeat(64) }).ok).toBe(true);
  });

  it.each<[string, unknown]>([
    ["129 characters", "r".repeat(129)],
    ["a number", 1],
    ["null", null],
    ["an object", { id: 1 }],
  ])("refuses a ref of %s as invalid_frame without echoing it", (_, ref) => {
    expect(outcome(frame({ type: "publish", data: "x", ref }))).toEqual({ code: "invalid_frame", ref: undefined });
  });
});

describe("parseClientFrame: data size in UTF-8 bytes", () => {
  it("accepts data of exactly maxDataBytes and refuses one byte more", () => {
    expect(frame({ type: "publish", data: "a".repeat(16) }).ok).toBe(true);
    expect(outcome(frame({ type: "publish", data: "a".repeat(17), ref: "big" }))).toEqual({ code: "message_too_large", ref: "big" });
  });

  it("counts multi-byte characters by their UTF-8 bytes", () => {
    // "é" is 2 bytes, "€" 3, "😀" 4 (two UTF-16 units).
    expect(frame({ type: "publish", data: "é".repeat(8) }).ok).toBe(true);
    expect(outcome(frame({ type: "publish", data: `${"é".repeat(8)}a` }))).toEqual({ code: "message_too_large", ref: undefined });
    expect(frame({ type: "publish", data: `${"€".repeat(5)}a` }).ok).toBe(true);
    expect(outcome(frame({ type: "publish", data: `${"€".repeat(5)}é` }))).toEqual({ code: "message_too_large", ref: undefined });
    expect(frame({ type: "publish", data: "😀".repeat(4) }).ok).toBe(true);
    expect(frame({ type: "publish", data: `${"😀".repeat(4)}a` }).ok).toBe(false);
  });

  it("checks the size of data written with JSON escapes by its decoded text", () => {
    // 16 "é" escapes are 96 characters of JSON but 32 bytes of data: too large; 8 of them fit.
    expect(parse(`{"type":"publish","data":"${"\\u00e9".repeat(8)}"}`).ok).toBe(true);
    expect(outcome(parse(`{"type":"publish","data":"${"\\u00e9".repeat(9)}"}`))).toEqual({ code: "message_too_large", ref: undefined });
  });

  it("uses the limit it is given", () => {
    expect(parseClientFrame(JSON.stringify({ type: "publish", data: "x".repeat(65536) }), { maxDataBytes: 65536 }).ok).toBe(true);
    expect(parseClientFrame(JSON.stringify({ type: "publish", data: "x".repeat(65537) }), { maxDataBytes: 65536 }).ok).toBe(false);
  });
});

describe("parseClientFrame: hostile keys", () => {
  it("reads __proto__ and constructor keys as plain data without polluting Object.prototype", () => {
    const raw = '{"type":"publish","data":"x","__proto__":{"polluted":true,"event":"relay.x"},"constructor":{"prototype":{"polluted":true}}}';
    expect(parse(raw)).toEqual({ ok: true, frame: { type: "publish", data: "x" } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("does not take type or data from a __proto__ key", () => {
    expect(outcome(parse('{"__proto__":{"type":"publish","data":"x"}}'))).toEqual({ code: "invalid_frame", ref: undefined });
    expect(outcome(parse('{"type":"publish","__proto__":{"data":"x"}}'))).toEqual({ code: "invalid_frame", ref: undefined });
  });
});

describe("parseClientFrame never throws", () => {
  it("returns a well-formed result for 2000 random inputs", () => {
    const random = mulberry32(20240607);
    const values: unknown[] = [null, true, 0, -1, 1.5, "", "x", "publish", "relay.x", "a\nb", "é".repeat(9), [], {}, ["publish"], { a: 1 }];
    const keys = ["type", "data", "event", "ref", "__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];
    const codes = new Set(["invalid_frame", "invalid_event", "message_too_large"]);

    const randomText = () => {
      const pieces = ["{", "}", "[", "]", '"', ":", ",", "type", "publish", "data", "\\", "\\u", "null", " ", "0", "é", "😀", "\ud800"];
      let text = "";
      const length = Math.floor(random() * 30);
      for (let i = 0; i < length; i++) text += pick(random, pieces);
      return text;
    };
    const randomObject = () => {
      const entries: string[] = [];
      if (random() < 0.8) entries.push(`"type":${JSON.stringify(random() < 0.7 ? "publish" : pick(random, values))}`);
      const count = Math.floor(random() * 5);
      for (let i = 0; i < count; i++) entries.push(`${JSON.stringify(pick(random, keys))}:${JSON.stringify(pick(random, values))}`);
      return `{${entries.join(",")}}`;
    };

    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const roll = random();
      const raw = roll < 0.05 ? new Uint8Array(Math.floor(random() * 8)).buffer : roll < 0.5 ? randomText() : randomObject();
      let result: ParseResult | undefined;
      expect(() => (result = parseClientFrame(raw, options)), JSON.stringify(raw)).not.toThrow();
      if (result === undefined) throw new Error("no result");
      seen.add(result.ok ? "ok" : result.error.error.code);
      if (result.ok) {
        if (result.frame.type !== "publish") continue;
        expect(typeof result.frame.data).toBe("string");
        expect(new TextEncoder().encode(result.frame.data).byteLength).toBeLessThanOrEqual(options.maxDataBytes);
      } else {
        expect(result.error.type).toBe("error");
        expect(codes.has(result.error.error.code)).toBe(true);
        expect(typeof result.error.error.message).toBe("string");
        if (result.error.ref !== undefined) expect(typeof result.error.ref).toBe("string");
      }
      // The error frame goes out as JSON: it must serialise.
      expect(() => JSON.stringify(result)).not.toThrow();
    }
    // The inputs reach every outcome, so the checks above ran on each kind.
    expect([...seen].sort()).toEqual(["invalid_event", "invalid_frame", "message_too_large", "ok"]);
  });
});

describe("multi-channel frames", () => {
  const parse = (value: unknown) => parseClientFrame(JSON.stringify(value), { maxDataBytes: 16 });

  it("reads subscribe with since and presence, and unsubscribe", () => {
    expect(parse({ type: "subscribe", channel: "news", since: "5", presence: true, ref: "s1" })).toEqual({
      ok: true,
      frame: { type: "subscribe", channel: "news", since: 5, presence: true, ref: "s1" },
    });
    expect(parse({ type: "subscribe", channel: "news" })).toEqual({ ok: true, frame: { type: "subscribe", channel: "news" } });
    expect(parse({ type: "unsubscribe", channel: "news" })).toEqual({ ok: true, frame: { type: "unsubscribe", channel: "news" } });
  });

  it("reads a publish that names its channel", () => {
    expect(parse({ type: "publish", channel: "chat", data: "hi" })).toEqual({ ok: true, frame: { type: "publish", channel: "chat", data: "hi" } });
  });

  it.each<[string, unknown, string]>([
    ["subscribe without a channel", { type: "subscribe", ref: "r" }, "invalid_channel"],
    ["subscribe to a bad channel", { type: "subscribe", channel: "a/b", ref: "r" }, "invalid_channel"],
    ["subscribe with a numeric since", { type: "subscribe", channel: "a", since: 5, ref: "r" }, "invalid_request"],
    ["subscribe with a negative since", { type: "subscribe", channel: "a", since: "-1", ref: "r" }, "invalid_request"],
    ["subscribe with presence as a string", { type: "subscribe", channel: "a", presence: "yes", ref: "r" }, "invalid_request"],
    ["unsubscribe from a channel given as a number", { type: "unsubscribe", channel: 7, ref: "r" }, "invalid_channel"],
    ["publish to a bad channel", { type: "publish", channel: "..", data: "x", ref: "r" }, "invalid_channel"],
  ])("refuses %s, echoing the ref", (_, value, code) => {
    const result = parse(value);
    expect(result.ok).toBe(false);
    if (!result.ok) expect([result.error.error.code, result.error.ref]).toEqual([code, "r"]);
  });
});
