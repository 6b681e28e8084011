import { describe, expect, it } from "vitest";
import { parseClientFrame } from "../../src/protocol/frames";

const frame = (value: unknown) => parseClientFrame(JSON.stringify(value), { maxDataBytes: 16 });

describe("parseClientFrame: idempotencyKey on publish frames (the Idempotency-Key header's rules)", () => {
  it("reads a key on a channel socket's and a multi-channel socket's publish", () => {
    expect(frame({ type: "publish", data: "hi", idempotencyKey: "order-42", ref: "c1" })).toEqual({
      ok: true,
      frame: { type: "publish", data: "hi", idempotencyKey: "order-42", ref: "c1" },
    });
    expect(frame({ type: "publish", channel: "news", data: "hi", idempotencyKey: "k" })).toEqual({
      ok: true,
      frame: { type: "publish", channel: "news", data: "hi", idempotencyKey: "k" },
    });
  });

  it("accepts every printable ASCII character, up to 128 of them", () => {
    const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join("");
    expect(printable).toHaveLength(95);
    for (const key of [printable, "k".repeat(128), " "]) {
      expect(frame({ type: "publish", data: "x", idempotencyKey: key })).toEqual({ ok: true, frame: { type: "publish", data: "x", idempotencyKey: key } });
    }
  });

  it.each<[string, unknown]>([
    ["empty", ""],
    ["129 characters", "k".repeat(129)],
    ["non-ASCII", "clé"],
    ["a control character", "a\nb"],
    ["DEL", "a\x7f"],
    ["a number", 42],
    ["null", null],
    ["an array", ["k"]],
  ])("refuses a key that is %s with invalid_idempotency_key, carrying the ref", (_, idempotencyKey) => {
    const result = frame({ type: "publish", data: "x", idempotencyKey, ref: "r9" });
    expect(result).toEqual({
      ok: false,
      error: { type: "error", ref: "r9", error: { code: "invalid_idempotency_key", message: expect.stringMatching(/1–128 printable ASCII/) } },
    });
  });

  it("checks the key before the data's size, as a bad name comes before a bad body", () => {
    const result = frame({ type: "publish", data: "x".repeat(17), idempotencyKey: "", ref: "r" });
    expect(result.ok ? undefined : result.error.error.code).toBe("invalid_idempotency_key");
  });
});
