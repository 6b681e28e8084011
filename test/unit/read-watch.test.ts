import { describe, expect, it } from "vitest";
import { ReadWatch, unreadLimitMs } from "../../src/sse/read-watch";

describe("ReadWatch: a client that reads nothing has left", () => {
  it("calls a client gone once bytes waited the limit with nothing read", () => {
    const watch = new ReadWatch(1000);
    expect(watch.observe(0, 0, 13)).toBe("reading");
    expect(watch.observe(999, 0, 28)).toBe("reading");
    expect(watch.observe(1000, 0, 43)).toBe("gone");
  });

  it("starts the clock again each time the client reads something, however little", () => {
    const watch = new ReadWatch(1000);
    expect(watch.observe(0, 0, 100)).toBe("reading");
    expect(watch.observe(900, 1, 99)).toBe("reading");
    expect(watch.observe(1800, 1, 114)).toBe("reading");
    expect(watch.observe(1900, 1, 114)).toBe("gone");
  });

  it("never calls a client gone that has read everything it was sent, however long nothing is written", () => {
    const watch = new ReadWatch(1000);
    expect(watch.observe(0, 13, 0)).toBe("reading");
    expect(watch.observe(60_000, 13, 0)).toBe("reading");
    // Bytes wait from the first observation that sees them, not from the last read.
    expect(watch.observe(120_000, 13, 15)).toBe("reading");
    expect(watch.observe(120_999, 13, 30)).toBe("reading");
    expect(watch.observe(121_000, 13, 45)).toBe("gone");
  });

  it("is half of KEEPALIVE_SECONDS: observed three times a period, a departed client is gone within one", () => {
    expect(unreadLimitMs(15)).toBe(7500);
    // The worst case: the client leaves just after reading everything; the next keep-alive at
    // 5 s waits unread, 10 s is 5 s unread, 15 s is 10 s unread: gone.
    const watch = new ReadWatch(unreadLimitMs(15));
    const seen = [5000, 10_000, 15_000].map((at, i) => watch.observe(at, 13, 15 * (i + 1)));
    expect(seen).toEqual(["reading", "reading", "gone"]);
  });
});
