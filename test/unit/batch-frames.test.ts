import { describe, expect, it } from "vitest";
import { isBatchFrameText, packFrames, unpackFrame, utf8Length } from "../../src/protocol/batch";
import type { Envelope } from "../../src/protocol/envelope";

const envelope = (id: number, data = "hi"): Envelope => ({ type: "message", channel: "news", id: String(id), event: "message", data, ts: 1763761234567 });
const text = (id: number, data?: string): string => JSON.stringify(envelope(id, data));
const bytes = (s: string): number => new TextEncoder().encode(s).byteLength;

describe("batch frames on the wire", () => {
  it("packs envelopes into one batch frame, in order, that parses to API.md's shape", () => {
    const frames = packFrames([text(1), text(2), text(3)], 65536);
    expect(frames).toHaveLength(1);
    expect(JSON.parse(frames[0]!)).toEqual({ type: "batch", messages: [envelope(1), envelope(2), envelope(3)] });
    expect(isBatchFrameText(frames[0]!)).toBe(true);
  });

  it("leaves a lone envelope as it is", () => {
    expect(packFrames([text(1)], 65536)).toEqual([text(1)]);
    expect(packFrames([], 65536)).toEqual([]);
    expect(isBatchFrameText(text(1))).toBe(false);
  });

  it("splits at the maximum frame size, counting UTF-8 bytes, and never reorders", () => {
    const texts = Array.from({ length: 25 }, (_, i) => text(i + 1, `ünïcødé ✓ 🚀 ${"x".repeat(i * 7)}`));
    for (const maxBytes of [300, 700, 2000]) {
      const frames = packFrames(texts, maxBytes);
      expect(frames.flatMap((frame) => unpackFrame(frame))).toEqual(texts);
      for (const frame of frames) if (isBatchFrameText(frame)) expect(bytes(frame)).toBeLessThanOrEqual(maxBytes);
    }
  });

  it("sends an envelope larger than the maximum alone", () => {
    const big = text(2, "z".repeat(400));
    expect(packFrames([text(1), big, text(3)], 200)).toEqual([text(1), big, text(3)]);
  });

  it("unpacks a batch frame into the exact texts a subscriber without batches gets", () => {
    const texts = [text(7, 'quote " and \\ backslash'), JSON.stringify({ ...envelope(8, "AAE="), encoding: "base64" })];
    expect(unpackFrame(packFrames(texts, 65536)[0]!)).toEqual(texts);
    expect(unpackFrame('{"type":"gap","channel":"news","after":"5","oldest":"12"}')).toEqual(['{"type":"gap","channel":"news","after":"5","oldest":"12"}']);
  });

  it("counts UTF-8 bytes as TextEncoder does", () => {
    for (const s of ["", "ascii", "é", "€", "🚀", "a🚀b", "\ud800", "\udc00x", "\ud800\ud800", "日本語テキスト"])
      expect(utf8Length(s), JSON.stringify(s)).toBe(bytes(s));
  });
});
