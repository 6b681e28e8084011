import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isFresherToken, tokenExpiry } from "../../src/client/token-freshness";
import { CloseCode } from "../../src/protocol/close-codes";
import { base64url } from "../support/tokens";
import { harnessPerTest } from "./support";

const start = harnessPerTest();

/** An unsigned JWT-shaped token with this `exp` (the fake relay does not verify tokens). */
function jwt(exp: number, nonce: string): string {
  return `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(JSON.stringify({ exp, nonce }))}.sig`;
}

describe("tokenExpiry and isFresherToken", () => {
  it("read exp from a JWT and compare tokens by it", () => {
    expect(tokenExpiry(jwt(1_700_000_000, "a"))).toBe(1_700_000_000);
    expect(tokenExpiry("not-a-jwt")).toBeUndefined();
    expect(tokenExpiry("a.!!!.c")).toBeUndefined();
    expect(isFresherToken("same", "same")).toBe(false);
    expect(isFresherToken("other", "same")).toBe(true);
    expect(isFresherToken(jwt(100, "b"), jwt(100, "a"))).toBe(false);
    expect(isFresherToken(jwt(99, "b"), jwt(100, "a"))).toBe(false);
    expect(isFresherToken(jwt(101, "b"), jwt(100, "a"))).toBe(true);
  });
});

/**
 * The relay closes a connection with 4002 when its token expires. A token function that keeps
 * returning that token (or one that expires no later) must not make the SDK reconnect at once,
 * over and over: it backs off. Timers are faked, so "not yet" and "now" are exact.
 */
describe("4002 with a token function that changes nothing", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** WebSocket attempts so far. */
  const attempts = (log: string[]) => log.filter((line) => line.startsWith("WS")).length;

  /** Lets the fake relay open the socket it was just asked for. */
  async function opened(h: ReturnType<typeof start>): Promise<void> {
    await vi.advanceTimersByTimeAsync(1);
    expect(h.client.state).toBe("open");
  }

  it("the same token again: reconnects after a backoff delay that doubles with each expiry in a row", async () => {
    const h = start({ token: () => "same-token", backoff: { initialDelay: 1000, maxDelay: 30_000, factor: 2 }, random: () => 0.5 });
    h.client.subscribe("news", () => {});
    await opened(h);
    for (const delay of [500, 1000, 2000]) {
      const before = attempts(h.relay.log);
      h.relay.dropAll(CloseCode.TokenExpired);
      await vi.advanceTimersByTimeAsync(delay - 10);
      expect(h.client.state).toBe("reconnecting");
      expect(attempts(h.relay.log), `no reconnect before ${delay} ms`).toBe(before);
      await vi.advanceTimersByTimeAsync(20);
      expect(attempts(h.relay.log), `a reconnect at ${delay} ms`).toBe(before + 1);
      await opened(h);
    }
    expect(h.errors).toEqual([]);
  });

  it("a new token that expires no later backs off too; a token that expires later reconnects at once", async () => {
    let exp = 1_000;
    let issued = 0;
    const h = start({ token: () => jwt(exp, `n${++issued}`), backoff: { initialDelay: 1000, maxDelay: 30_000, factor: 2 }, random: () => 0.5 });
    h.client.subscribe("news", () => {});
    await opened(h);

    const before = attempts(h.relay.log);
    h.relay.dropAll(CloseCode.TokenExpired);
    await vi.advanceTimersByTimeAsync(490);
    expect(attempts(h.relay.log), "no reconnect with an equally expired token").toBe(before);
    await vi.advanceTimersByTimeAsync(20);
    expect(attempts(h.relay.log)).toBe(before + 1);
    await opened(h);

    exp = 2_000;
    h.relay.dropAll(CloseCode.TokenExpired);
    await vi.advanceTimersByTimeAsync(5);
    expect(attempts(h.relay.log), "a fresher token reconnects at once").toBe(before + 2);
    await opened(h);
    expect(h.errors).toEqual([]);
  });
});
