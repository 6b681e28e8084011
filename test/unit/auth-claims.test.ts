import { describe, expect, it } from "vitest";
import { CLOCK_LEEWAY_SECONDS, readClaims } from "../../src/auth/claims";

const NOW = 1_800_000_000;
const relay = { publish: ["news"], subscribe: ["*"] };

function reason(payload: Record<string, unknown>, now = NOW): string | undefined {
  const result = readClaims(payload, now);
  return result.ok ? undefined : result.reason;
}

describe("readClaims: exp", () => {
  it("reads a good token's grants, subject and expiry", () => {
    expect(readClaims({ exp: NOW + 60, sub: "alice", relay }, NOW)).toEqual({
      ok: true,
      claims: { subject: "alice", publish: ["news"], subscribe: ["*"], expiresAt: NOW + 60 },
    });
  });

  it("the leeway is 30 s", () => {
    expect(CLOCK_LEEWAY_SECONDS).toBe(30);
  });

  it("requires exp as a finite number", () => {
    for (const exp of [undefined, null, "1900000000", String(NOW + 60), true, [NOW + 60], { at: NOW + 60 }, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(reason({ exp, relay }), JSON.stringify(exp)).toMatch(/exp/);
    }
    expect(reason({ relay })).toMatch(/exp/);
  });

  it("refuses an expired token past the leeway, accepts one inside it", () => {
    expect(reason({ exp: NOW - 3600, relay })).toMatch(/expired/);
    expect(reason({ exp: NOW - 31, relay })).toMatch(/expired/);
    expect(reason({ exp: NOW - 30, relay })).toMatch(/expired/);
    expect(reason({ exp: NOW - 29, relay })).toBeUndefined();
    expect(reason({ exp: NOW - 1, relay })).toBeUndefined();
    expect(reason({ exp: NOW, relay })).toBeUndefined();
    expect(reason({ exp: NOW + 1, relay })).toBeUndefined();
  });

  it("accepts fractional exp values the same way", () => {
    expect(reason({ exp: NOW - 29.5, relay })).toBeUndefined();
    expect(reason({ exp: NOW - 30.5, relay })).toMatch(/expired/);
  });
});

describe("readClaims: nbf", () => {
  it("is optional", () => {
    expect(reason({ exp: NOW + 60, relay })).toBeUndefined();
  });

  it("refuses a token not valid yet past the leeway, accepts one inside it", () => {
    expect(reason({ exp: NOW + 600, nbf: NOW + 3600, relay })).toMatch(/nbf/);
    expect(reason({ exp: NOW + 600, nbf: NOW + 31, relay })).toMatch(/nbf/);
    expect(reason({ exp: NOW + 600, nbf: NOW + 30, relay })).toBeUndefined();
    expect(reason({ exp: NOW + 600, nbf: NOW + 29, relay })).toBeUndefined();
    expect(reason({ exp: NOW + 600, nbf: NOW, relay })).toBeUndefined();
    expect(reason({ exp: NOW + 600, nbf: NOW - 3600, relay })).toBeUndefined();
  });

  it("refuses an nbf that is not a finite number", () => {
    for (const nbf of [null, "0", String(NOW), true, [], {}, Number.NaN, Number.NEGATIVE_INFINITY]) {
      expect(reason({ exp: NOW + 60, nbf, relay }), JSON.stringify(nbf)).toMatch(/nbf/);
    }
  });
});

describe("readClaims: sub", () => {
  it("is optional", () => {
    const result = readClaims({ exp: NOW + 60, relay }, NOW);
    expect(result.ok && result.claims.subject).toBeUndefined();
  });

  it("must be a string", () => {
    for (const sub of [42, null, true, ["alice"], { name: "alice" }]) {
      expect(reason({ exp: NOW + 60, sub, relay }), JSON.stringify(sub)).toMatch(/sub/);
    }
  });
});

describe("readClaims: the relay claim", () => {
  it("may be left out: the token is good and grants nothing (403 for what it asks, not 401)", () => {
    expect(readClaims({ exp: NOW + 60, sub: "alice" }, NOW)).toEqual({
      ok: true,
      claims: { subject: "alice", publish: [], subscribe: [], expiresAt: NOW + 60 },
    });
  });

  it("may grant only one of publish and subscribe; a missing list grants nothing", () => {
    expect(readClaims({ exp: NOW + 60, relay: { subscribe: ["a"] } }, NOW)).toMatchObject({ ok: true, claims: { publish: [], subscribe: ["a"] } });
    expect(readClaims({ exp: NOW + 60, relay: { publish: ["a"] } }, NOW)).toMatchObject({ ok: true, claims: { publish: ["a"], subscribe: [] } });
    expect(readClaims({ exp: NOW + 60, relay: {} }, NOW)).toMatchObject({ ok: true, claims: { publish: [], subscribe: [] } });
  });

  it("refuses a relay claim of the wrong shape", () => {
    const bad: unknown[] = [
      null,
      "news",
      42,
      true,
      ["news"],
      { publish: "news" },
      { subscribe: "*" },
      { publish: [1] },
      { publish: [null] },
      { publish: [""] },
      { publish: ["x".repeat(257)] },
      { publish: ["news", 7] },
      { subscribe: [["*"]] },
      { subscribe: [{ pattern: "*" }] },
      { publish: null },
      { subscribe: {} },
    ];
    for (const value of bad) expect(reason({ exp: NOW + 60, relay: value }), JSON.stringify(value)).toMatch(/relay claim/);
  });

  it("accepts patterns up to 256 characters", () => {
    expect(reason({ exp: NOW + 60, relay: { publish: ["x".repeat(256)] } })).toBeUndefined();
  });

  it("ignores unknown grants and claims", () => {
    expect(readClaims({ exp: NOW + 60, iat: NOW, iss: "me", relay: { publish: ["a"], admin: true } }, NOW)).toEqual({
      ok: true,
      claims: { subject: undefined, publish: ["a"], subscribe: [], expiresAt: NOW + 60 },
    });
  });

  it("does not read grants from the prototype chain", () => {
    const polluted = JSON.parse('{"exp":1800000060,"relay":{"__proto__":{"publish":["*"],"subscribe":["*"]}}}') as Record<string, unknown>;
    expect(readClaims(polluted, NOW)).toMatchObject({ ok: true, claims: { publish: [], subscribe: [] } });
    expect(({} as Record<string, unknown>).publish).toBeUndefined();
  });
});
