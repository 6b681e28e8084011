import { describe, expect, it } from "vitest";
import { backoffCeiling, backoffDelay } from "../../src/client/backoff";
import { DEFAULTS } from "../../src/client/defaults";
import { mulberry32 } from "./support";

const options = { initialDelay: 100, maxDelay: 5000, factor: 2 };

describe("backoffDelay (full jitter)", () => {
  it("stays within [0, min(maxDelay, initialDelay·factor^attempt))", () => {
    const random = mulberry32(7);
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** attempt);
      expect(backoffCeiling(attempt, options)).toBe(ceiling);
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, options, random);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(ceiling);
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });

  it("is the ceiling scaled by the random draw: 0 at 0, just under the ceiling near 1", () => {
    expect(backoffDelay(3, options, () => 0)).toBe(0);
    expect(backoffDelay(3, options, () => 0.5)).toBe(400);
    expect(backoffDelay(3, options, () => 0.999999)).toBe(799);
    expect(backoffDelay(30, options, () => 0.999999)).toBe(4999);
  });

  it("jitters: draws spread over the whole range instead of clustering at the ceiling", () => {
    const random = mulberry32(42);
    const delays = Array.from({ length: 2000 }, () => backoffDelay(10, options, random));
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    // Uniform on [0, 5000): mean ≈ 2500, both halves well populated.
    expect(mean).toBeGreaterThan(2300);
    expect(mean).toBeLessThan(2700);
    expect(delays.filter((d) => d < 2500).length).toBeGreaterThan(900);
    expect(new Set(delays).size).toBeGreaterThan(1000);
  });

  it("never overflows on a long outage, and treats a negative attempt as the first", () => {
    expect(backoffCeiling(10_000, options)).toBe(5000);
    expect(backoffCeiling(-3, options)).toBe(100);
  });

  it("has documented defaults: 1 s first ceiling, doubling, 30 s at most", () => {
    expect(DEFAULTS.backoff).toEqual({ initialDelay: 1000, maxDelay: 30_000, factor: 2 });
    expect(backoffCeiling(0, DEFAULTS.backoff)).toBe(1000);
    expect(backoffCeiling(5, DEFAULTS.backoff)).toBe(30_000);
  });
});
