import { describe, expect, it } from "vitest";
import { checkPublishRate, publisherKey } from "../../src/limits/publish-rate";
import { PublishMeter, TokenBucket } from "../../src/limits/token-bucket";
import { RelayError } from "../../src/protocol/errors";

describe("TokenBucket", () => {
  it("starts full: burst takes at once, then refuses", () => {
    const bucket = new TokenBucket(5, 3);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false]);
  });

  it("refills at the rate, from the time of the last take", () => {
    const bucket = new TokenBucket(5, 3);
    for (let i = 0; i < 3; i++) bucket.take(1000);
    expect(bucket.take(1000)).toBe(false);
    expect(bucket.take(1199)).toBe(false); // 0.995 tokens
    expect(bucket.take(1201)).toBe(true); // 1.005 tokens
    expect(bucket.take(1201)).toBe(false);
  });

  it("never holds more than burst, however long it was idle", () => {
    const bucket = new TokenBucket(10, 2);
    bucket.take(0);
    const results = Array.from({ length: 4 }, () => bucket.take(3_600_000));
    expect(results).toEqual([true, true, false, false]);
  });

  it("sustains exactly the rate over time", () => {
    const bucket = new TokenBucket(5, 1);
    let taken = 0;
    // One attempt every 10 ms for 10 s.
    for (let t = 0; t <= 10_000; t += 10) if (bucket.take(t)) taken++;
    expect(taken).toBeGreaterThanOrEqual(50);
    expect(taken).toBeLessThanOrEqual(51);
  });

  it("says when the next token comes, at least 1 s", () => {
    const bucket = new TokenBucket(0.5, 1);
    bucket.take(0);
    expect(bucket.retryAfterSeconds()).toBe(2);
    const fast = new TokenBucket(100, 1);
    fast.take(0);
    expect(fast.retryAfterSeconds()).toBe(1);
    expect(new TokenBucket(1, 5).retryAfterSeconds()).toBe(1);
  });

  it("a clock that goes backwards does not mint tokens", () => {
    const bucket = new TokenBucket(5, 2);
    bucket.take(10_000);
    bucket.take(10_000);
    expect(bucket.take(5_000)).toBe(false);
  });
});

describe("PublishMeter", () => {
  it("allows the burst, refuses up to burst more in a row, then says disconnect", () => {
    const meter = new PublishMeter(5, 5);
    const verdicts = Array.from({ length: 12 }, () => meter.check(0));
    expect(verdicts).toEqual(["ok", "ok", "ok", "ok", "ok", "refuse", "refuse", "refuse", "refuse", "refuse", "disconnect", "disconnect"]);
  });

  it("a publish that gets through resets the run of refusals", () => {
    const meter = new PublishMeter(5, 2);
    expect([meter.check(0), meter.check(0), meter.check(0), meter.check(0)]).toEqual(["ok", "ok", "refuse", "refuse"]);
    expect(meter.check(200)).toBe("ok"); // one token refilled
    expect([meter.check(200), meter.check(200)]).toEqual(["refuse", "refuse"]);
    expect(meter.check(200)).toBe("disconnect");
  });

  it("a client that keeps to the rate is never refused", () => {
    const meter = new PublishMeter(50, 100);
    for (let t = 0; t < 60_000; t += 20) expect(meter.check(t)).toBe("ok");
  });
});

describe("publisherKey", () => {
  const request = (headers: Record<string, string> = {}) => new Request("https://relay.test/", { headers });
  const claims = (subject?: string) => ({ subject, publish: [], subscribe: [], expiresAt: 0 });

  it("keys by token subject, else by client address (IPv6: its /64), else one local key", () => {
    expect(publisherKey({ kind: "token", source: "header", claims: claims("alice") }, request({ "CF-Connecting-IP": "203.0.113.9" }))).toBe("sub:alice");
    expect(publisherKey({ kind: "token", source: "header", claims: claims() }, request({ "CF-Connecting-IP": "203.0.113.9" }))).toBe("ip:203.0.113.9");
    // An IPv6 address is keyed by its /64, so one host cannot take a fresh key per address.
    expect(publisherKey({ kind: "anonymous" }, request({ "CF-Connecting-IP": "2001:db8::1" }))).toBe("ip:2001:db8:0:0::/64");
    expect(publisherKey({ kind: "anonymous" }, request({ "CF-Connecting-IP": "2001:db8::2" }))).toBe("ip:2001:db8:0:0::/64");
    expect(publisherKey({ kind: "anonymous" }, request())).toBe("ip:local");
  });

  it("a subject cannot pose as an IP key", () => {
    const key = publisherKey({ kind: "token", source: "header", claims: claims("ip:203.0.113.9") }, request());
    expect(key).not.toBe("ip:203.0.113.9");
  });
});

describe("checkPublishRate", () => {
  function limiterEnv(success: boolean, keys: string[] = []) {
    return {
      PUBLISH_RATE_LIMITER: {
        limit: async ({ key }: { key: string }) => {
          keys.push(key);
          return { success };
        },
      },
    } as unknown as Env;
  }

  it("passes under the limit and asks with the key", async () => {
    const keys: string[] = [];
    await expect(checkPublishRate(limiterEnv(true, keys), "sub:alice")).resolves.toBeUndefined();
    expect(keys).toEqual(["sub:alice"]);
  });

  it("throws 429 rate_limited with Retry-After past it", async () => {
    const error = await checkPublishRate(limiterEnv(false), "sub:alice").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RelayError);
    expect((error as RelayError).status).toBe(429);
    expect((error as RelayError).code).toBe("rate_limited");
    const response = (error as RelayError).toResponse();
    expect(response.status).toBe(429);
    expect(Number(response.headers.get("Retry-After"))).toBeGreaterThan(0);
  });
});
