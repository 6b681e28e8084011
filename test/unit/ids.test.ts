import { describe, expect, it } from "vitest";
import { formatId, parseSeq } from "../../src/protocol/ids";

describe("parseSeq", () => {
  it.each<[string, number]>([
    ["0", 0],
    ["1", 1],
    ["17", 17],
    ["1000000", 1_000_000],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
    ["05", 5],
    ["00", 0],
  ])("reads %j as %d", (text, seq) => {
    expect(parseSeq(text)).toBe(seq);
  });

  it.each([
    ["empty", ""],
    ["negative", "-1"],
    ["negative zero", "-0"],
    ["a plus sign", "+1"],
    ["non-numeric", "abc"],
    ["a number with letters", "17a"],
    ["beyond MAX_SAFE_INTEGER", "9007199254740992"],
    ["huge", "99999999999999999999999"],
    ["a leading space", " 1"],
    ["a trailing space", "1 "],
    ["a trailing newline", "1\n"],
    ["an exponent", "1e3"],
    ["hex", "0x10"],
    ["a fraction", "1.0"],
    ["Infinity", "Infinity"],
    ["NaN", "NaN"],
    ["an underscore separator", "1_000"],
    ["full-width digits", "１７"],
  ])("refuses %s", (_, text) => {
    expect(parseSeq(text)).toBeUndefined();
  });
});

describe("formatId", () => {
  it("writes a sequence number as a decimal string", () => {
    expect(formatId(0)).toBe("0");
    expect(formatId(17)).toBe("17");
    expect(formatId(Number.MAX_SAFE_INTEGER)).toBe("9007199254740991");
  });

  it("writes large ids without exponent notation and round-trips through parseSeq", () => {
    for (const seq of [0, 1, 9, 10, 123456789, 2 ** 52, Number.MAX_SAFE_INTEGER]) {
      expect(formatId(seq)).toMatch(/^(0|[1-9][0-9]*)$/);
      expect(parseSeq(formatId(seq))).toBe(seq);
    }
  });
});
