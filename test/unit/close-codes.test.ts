import { describe, expect, it } from "vitest";
import { CloseCode, isTerminalCloseCode } from "../../src/protocol/close-codes";

describe("isTerminalCloseCode", () => {
  it.each([1008, 4000, 4001, 4003, 4500, 4999, CloseCode.PolicyViolation, CloseCode.Unauthorized, CloseCode.Forbidden])("%d means do not reconnect", (code) => {
    expect(isTerminalCloseCode(code)).toBe(true);
  });

  it.each([1000, 1001, 1005, 1006, 1007, 1009, 1011, 1012, 1013, 1014, 3000, 3999, 5000, 0, -1])("%d is worth a reconnect", (code) => {
    expect(isTerminalCloseCode(code)).toBe(false);
  });

  it("names the codes the relay sends", () => {
    expect(CloseCode).toMatchObject({
      Normal: 1000,
      GoingAway: 1001,
      PolicyViolation: 1008,
      InternalError: 1011,
      TryAgainLater: 1013,
      Unauthorized: 4001,
      Forbidden: 4003,
    });
    expect(isTerminalCloseCode(CloseCode.TryAgainLater)).toBe(false);
  });
});
