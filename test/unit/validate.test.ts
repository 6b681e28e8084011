import { describe, expect, it } from "vitest";
import { HISTORY_PAGE, optionalCount, POLL_TIMEOUT_SECONDS } from "../../src/protocol/validate";

describe("optionalCount", () => {
  it("is the default when absent", () => {
    expect(optionalCount("timeout", undefined, POLL_TIMEOUT_SECONDS)).toBe(25);
    expect(optionalCount("limit", undefined, HISTORY_PAGE)).toBe(100);
  });

  it("caps what is above the most, however large, instead of refusing it", () => {
    expect(optionalCount("timeout", "61", POLL_TIMEOUT_SECONDS)).toBe(60);
    expect(optionalCount("timeout", "99999999999999999999", POLL_TIMEOUT_SECONDS)).toBe(60);
    expect(optionalCount("limit", "1001", HISTORY_PAGE)).toBe(1000);
    expect(optionalCount("timeout", "0", POLL_TIMEOUT_SECONDS)).toBe(0);
    expect(optionalCount("timeout", "60", POLL_TIMEOUT_SECONDS)).toBe(60);
  });

  it("refuses anything but digits with invalid_request", () => {
    for (const value of ["", "-1", "1.5", "1e3", "abc", " 5"]) {
      expect(() => optionalCount("timeout", value, POLL_TIMEOUT_SECONDS)).toThrow(expect.objectContaining({ code: "invalid_request" }));
    }
  });
});
