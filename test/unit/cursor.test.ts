import { describe, expect, it } from "vitest";
import { formatCursor, parseCursor } from "../../src/protocol/cursor";

describe("multi-channel cursor", () => {
  it("writes channel=id pairs in the stream's order and reads them back", () => {
    const cursor = new Map([
      ["news", 17],
      ["chat.room-1:x~y@z", 0],
    ]);
    const text = formatCursor(cursor);
    expect(text).toBe("news=17,chat.room-1:x~y@z=0");
    expect(parseCursor(text)).toEqual(cursor);
  });

  it.each([
    ["empty", ""],
    ["no id", "news"],
    ["empty id", "news="],
    ["negative id", "news=-1"],
    ["non-numeric id", "news=abc"],
    ["huge id", "news=99999999999999999999"],
    ["bad channel", "a/b=1"],
    ["empty channel", "=1"],
    ["a repeated channel", "news=1,news=2"],
    ["a trailing comma", "news=1,"],
    ["a line break", "news=1\nid: 5"],
    ["two equals signs", "news=1=2"],
  ])("refuses %s", (_, text) => {
    expect(parseCursor(text)).toBeUndefined();
  });
});
