import { describe, expect, it } from "vitest";
import { encodeData } from "../../src/protocol/envelope";

const utf8 = (text: string) => new TextEncoder().encode(text);
const bytes = (...values: number[]) => new Uint8Array(values);
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

describe("encodeData: valid UTF-8 stays text", () => {
  it.each(["hi", "héllo 😀 日本", "line\nbreak\r\n", "nul\0inside", '{"json":true}'])("keeps %j as text", (text) => {
    expect(encodeData(utf8(text))).toEqual({ data: text });
  });

  it("encodes an empty body as empty text", () => {
    expect(encodeData(new Uint8Array(0))).toEqual({ data: "" });
  });

  it("keeps a leading byte-order mark, so the bytes survive the round trip", () => {
    const body = bytes(0xef, 0xbb, 0xbf, 0x68, 0x69);
    const encoded = encodeData(body);
    expect(encoded).toEqual({ data: "\uFEFFhi" });
    expect(utf8(encoded.data)).toEqual(body);
  });

  it("keeps a byte-order mark on every call, not only the first", () => {
    const body = bytes(0xef, 0xbb, 0xbf);
    expect(encodeData(body)).toEqual({ data: "\uFEFF" });
    expect(encodeData(body)).toEqual({ data: "\uFEFF" });
  });

  it("re-encodes text to the same bytes", () => {
    const body = utf8("\uFEFF\uFEFF a ✓ 😀 \u0000 \u{10FFFF}");
    expect(utf8(encodeData(body).data)).toEqual(body);
  });
});

describe("encodeData: invalid UTF-8 becomes base64", () => {
  it.each<[string, Uint8Array]>([
    ["a lone continuation byte", bytes(0x80)],
    ["0xff", bytes(0x61, 0xff, 0x62)],
    ["an overlong NUL", bytes(0xc0, 0x80)],
    ["an encoded surrogate", bytes(0xed, 0xa0, 0x80)],
    ["a sequence cut off at the end", bytes(0x68, 0x69, 0xe2, 0x82)],
    ["a code point above U+10FFFF", bytes(0xf4, 0x90, 0x80, 0x80)],
    ["a PNG header", bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)],
    ["every byte value", new Uint8Array(256).map((_, i) => i)],
  ])("carries %s as base64 that decodes to the same bytes", (_, body) => {
    const encoded = encodeData(body);
    expect(encoded.encoding).toBe("base64");
    expect(encoded.data).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
    expect(fromBase64(encoded.data)).toEqual(body);
  });

  it("gives the standard base64 text", () => {
    expect(encodeData(bytes(0xff, 0xfe, 0xfd))).toEqual({ data: "//79", encoding: "base64" });
    expect(encodeData(bytes(0xff))).toEqual({ data: "/w==", encoding: "base64" });
  });

  it("handles a body larger than one encoding chunk", () => {
    const body = new Uint8Array(100_000).map((_, i) => (i * 7919) % 256);
    body[0] = 0xff;
    const encoded = encodeData(body);
    expect(encoded.encoding).toBe("base64");
    expect(fromBase64(encoded.data)).toEqual(body);
  });

  it("does not let an invalid body affect the next valid one", () => {
    expect(encodeData(bytes(0x68, 0xe2, 0x82)).encoding).toBe("base64");
    expect(encodeData(utf8("€ok"))).toEqual({ data: "€ok" });
  });
});
