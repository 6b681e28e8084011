import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { authenticate, type TokenSettings } from "../../src/auth/identity";
import { DEFAULT_MAX_AGE_MS, JwksCache, MAX_MAX_AGE_MS, MIN_REFETCH_INTERVAL_MS, maxAgeOf, REFETCHES_PER_MINUTE } from "../../src/auth/jwks";

const A = "https://a.example/.well-known/jwks.json";
const B = "https://b.example/.well-known/jwks.json";
const relay = { publish: ["news"], subscribe: ["*"] };

type Alg = "RS256" | "ES256" | "EdDSA";
interface Signer {
  alg: Alg;
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signer(alg: Alg, kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

function token(by: Signer, claims: Record<string, unknown> = {}, header: { kid?: string | null } = {}): Promise<string> {
  const kid = header.kid === null ? undefined : (header.kid ?? by.kid);
  return new SignJWT({ relay, ...claims })
    .setProtectedHeader({ alg: by.alg, ...(kid === undefined ? {} : { kid }) })
    .setExpirationTime("5m")
    .sign(by.privateKey);
}

/** Key set documents served by URL, with every fetch counted; a clock the test moves. */
class Providers {
  readonly sets = new Map<string, { keys: JWK[]; cacheControl?: string; status?: number }>();
  readonly fetches: string[] = [];
  now = 1_000_000_000_000;
  fail: Error | undefined;

  cache(): JwksCache {
    return new JwksCache({
      now: () => this.now,
      fetch: async (input) => {
        const url = String(input);
        this.fetches.push(url);
        if (this.fail) throw this.fail;
        const set = this.sets.get(url);
        if (!set) return new Response("not found", { status: 404 });
        const headers: Record<string, string> = { "Content-Type": "application/json" };
        if (set.cacheControl !== undefined) headers["Cache-Control"] = set.cacheControl;
        return new Response(JSON.stringify({ keys: set.keys }), { status: set.status ?? 200, headers });
      },
    });
  }
}

const withBearer = (value: string) => new Request("https://relay.test/v1/channels/news", { headers: { Authorization: `Bearer ${value}` } });

let rsa: Signer;
let ec: Signer;
let ed: Signer;
let other: Signer;

beforeAll(async () => {
  [rsa, ec, ed, other] = await Promise.all([signer("RS256", "rsa-1"), signer("ES256", "ec-1"), signer("EdDSA", "ed-1"), signer("RS256", "rsa-1")]);
});

describe("provider tokens (RELAY_JWKS_URL)", () => {
  it("verifies RS256, ES256 and EdDSA tokens against the provider's key set, reading the relay claim", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk, ec.jwk, ed.jwk] });
    const keys = providers.cache();
    const settings: TokenSettings = { jwtSecrets: [], jwksUrls: [A] };
    for (const by of [rsa, ec, ed]) {
      const identity = await authenticate(withBearer(await token(by, { sub: `user-${by.alg}` })), settings, keys);
      expect(identity, by.alg).toMatchObject({ kind: "token", source: "header", claims: { subject: `user-${by.alg}`, publish: ["news"] } });
    }
    expect(providers.fetches).toEqual([A]);
  });

  it("keeps HS256 working beside it, each algorithm checked only by its own keys", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk] });
    const keys = providers.cache();
    const { sign } = await import("hono/jwt");
    const hs = await sign({ exp: Math.floor(Date.now() / 1000) + 60, relay }, "s3cret", "HS256");
    expect(await authenticate(withBearer(hs), { jwtSecrets: ["s3cret"], jwksUrls: [A] }, keys)).toMatchObject({ kind: "token" });
    expect(await authenticate(withBearer(await token(rsa)), { jwtSecrets: ["s3cret"], jwksUrls: [A] }, keys)).toMatchObject({ kind: "token" });
    expect(await authenticate(withBearer(hs), { jwtSecrets: [], jwksUrls: [A] }, keys)).toMatchObject({
      kind: "invalid",
      reason: expect.stringContaining("no RELAY_JWT_SECRET"),
    });
    expect(await authenticate(withBearer(await token(rsa)), { jwtSecrets: ["s3cret"] }, keys)).toMatchObject({
      kind: "invalid",
      reason: expect.stringContaining("no RELAY_JWKS_URL"),
    });
  });

  it("says which check failed: a key that does not match, issuer, audience, an unknown kid", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk] });
    const keys = providers.cache();
    const checked: TokenSettings = { jwtSecrets: [], jwksUrls: [A], jwtIssuer: "https://a.example/", jwtAudience: "edge-relay" };
    const reason = async (value: string) => {
      const identity = await authenticate(withBearer(value), checked, keys);
      expect(identity.kind).toBe("invalid");
      return identity.kind === "invalid" ? identity.reason : "";
    };
    // Same kid, another key: the signature does not verify.
    expect(await reason(await token(other, { iss: "https://a.example/", aud: "edge-relay" }))).toMatch(/signature does not match/);
    expect(await reason(await token(rsa, { iss: "https://evil.example/", aud: "edge-relay" }))).toMatch(/issuer \(iss\).*RELAY_JWT_ISSUER/);
    expect(await reason(await token(rsa, { iss: "https://a.example/", aud: "someone-else" }))).toMatch(/audience \(aud\).*RELAY_JWT_AUDIENCE/);
    expect(await reason(await token(rsa, { iss: "https://a.example/", aud: "edge-relay" }, { kid: "nope" }))).toMatch(/has no RS256 key with kid "nope"/);
    expect(await authenticate(withBearer(await token(rsa, { iss: "https://a.example/", aud: ["x", "edge-relay"] })), checked, keys)).toMatchObject({
      kind: "token",
    });
  });

  it("an unreachable or broken key set is a 401 reason naming it, and nothing is cached from it", async () => {
    const providers = new Providers();
    const keys = providers.cache();
    const settings: TokenSettings = { jwtSecrets: [], jwksUrls: [A] };
    providers.fail = new Error("connect ECONNREFUSED");
    expect(await authenticate(withBearer(await token(rsa)), settings, keys)).toMatchObject({
      kind: "invalid",
      reason: expect.stringMatching(/key set at https:\/\/a\.example.*could not be fetched/),
    });
    providers.fail = undefined;
    providers.sets.set(A, { keys: [rsa.jwk], status: 500 });
    providers.now += MIN_REFETCH_INTERVAL_MS;
    expect(await authenticate(withBearer(await token(rsa)), settings, keys)).toMatchObject({
      kind: "invalid",
      reason: expect.stringContaining("answered 500"),
    });
    providers.sets.set(A, { keys: [rsa.jwk] });
    providers.now += MIN_REFETCH_INTERVAL_MS;
    expect(await authenticate(withBearer(await token(rsa)), settings, keys)).toMatchObject({ kind: "token" });
  });

  it("takes the rights from the claim RELAY_CLAIM names (namespaced, as Auth0 requires)", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk] });
    const claim = "https://app.example/relay";
    const value = await new SignJWT({ [claim]: { subscribe: ["scores.*"] } })
      .setProtectedHeader({ alg: "RS256", kid: rsa.kid })
      .setExpirationTime("5m")
      .sign(rsa.privateKey);
    const keys = providers.cache();
    expect(await authenticate(withBearer(value), { jwtSecrets: [], jwksUrls: [A], relayClaim: claim }, keys)).toMatchObject({
      kind: "token",
      claims: { subscribe: ["scores.*"] },
    });
    // Read under the default name, the same token has no relay claim: valid, and it grants nothing.
    expect(await authenticate(withBearer(value), { jwtSecrets: [], jwksUrls: [A] }, keys)).toMatchObject({
      kind: "token",
      claims: { publish: [], subscribe: [] },
    });
  });
});

describe("JwksCache", () => {
  it("keys by URL and kid together: the same kid in two sets names two keys", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk] });
    providers.sets.set(B, { keys: [other.jwk] });
    const keys = providers.cache();
    const settings: TokenSettings = { jwtSecrets: [], jwksUrls: [A, B] };
    // B's key, cached after A's under the same kid, neither replaces it nor stands in for it.
    expect(await authenticate(withBearer(await token(other)), settings, keys)).toMatchObject({ kind: "token" });
    expect(await authenticate(withBearer(await token(rsa)), settings, keys)).toMatchObject({ kind: "token" });
    expect(await authenticate(withBearer(await token(rsa)), { jwtSecrets: [], jwksUrls: [B] }, keys)).toMatchObject({ kind: "invalid" });
    const a = await keys.key(A, "rsa-1", "RS256");
    const b = await keys.key(B, "rsa-1", "RS256");
    expect(a.ok && b.ok && a.key !== b.key).toBe(true);
  });

  it("keeps a set as long as Cache-Control says, then fetches it again", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk], cacheControl: "public, max-age=600" });
    const keys = providers.cache();
    for (let i = 0; i < 3; i++) expect((await keys.key(A, "rsa-1", "RS256")).ok).toBe(true);
    providers.now += 599_000;
    expect((await keys.key(A, "rsa-1", "RS256")).ok).toBe(true);
    expect(providers.fetches).toHaveLength(1);
    providers.now += 2_000;
    expect((await keys.key(A, "rsa-1", "RS256")).ok).toBe(true);
    expect(providers.fetches).toHaveLength(2);
  });

  it("refetches for a kid it does not know (a rotation), one fetch at a time and a few a minute", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk] });
    const keys = providers.cache();
    expect((await keys.key(A, "rsa-1", "RS256")).ok).toBe(true);
    // The provider rotates: the new kid is found by one refetch.
    const rotated = await signer("RS256", "rsa-2");
    providers.sets.set(A, { keys: [rsa.jwk, rotated.jwk] });
    providers.now += MIN_REFETCH_INTERVAL_MS;
    expect((await keys.key(A, "rsa-2", "RS256")).ok).toBe(true);
    expect(providers.fetches).toHaveLength(2);

    // Made-up kids: many lookups at once share one fetch…
    providers.now += MIN_REFETCH_INTERVAL_MS;
    const lookups = await Promise.all(Array.from({ length: 50 }, (_, i) => keys.key(A, `made-up-${i}`, "RS256")));
    expect(lookups.every((found) => !found.ok)).toBe(true);
    expect(providers.fetches).toHaveLength(3);
    // …and a minute of them, one every second, fetches at most REFETCHES_PER_MINUTE times.
    const before = providers.fetches.length;
    for (let second = 0; second < 60; second++) {
      providers.now += 1000;
      await keys.key(A, `made-up-${second}`, "RS256");
    }
    expect(providers.fetches.length - before).toBeLessThanOrEqual(REFETCHES_PER_MINUTE);
    // Known keys keep working meanwhile, without a fetch.
    const fetched = providers.fetches.length;
    expect((await keys.key(A, "rsa-1", "RS256")).ok).toBe(true);
    expect(providers.fetches).toHaveLength(fetched);
  });

  it("a key must fit the token's algorithm; without a kid the set's only fitting key is used", async () => {
    const providers = new Providers();
    providers.sets.set(A, { keys: [rsa.jwk, ec.jwk] });
    const keys = providers.cache();
    expect((await keys.key(A, "rsa-1", "ES256")).ok).toBe(false);
    expect((await keys.key(A, undefined, "ES256")).ok).toBe(true);
    expect(await authenticate(withBearer(await token(ec, {}, { kid: null })), { jwtSecrets: [], jwksUrls: [A] }, keys)).toMatchObject({ kind: "token" });
  });
});

describe("maxAgeOf", () => {
  it("reads max-age within bounds", () => {
    expect(maxAgeOf(null)).toBe(DEFAULT_MAX_AGE_MS);
    expect(maxAgeOf("public, max-age=3600, must-revalidate")).toBe(3_600_000);
    expect(maxAgeOf("s-maxage=10")).toBe(DEFAULT_MAX_AGE_MS);
    expect(maxAgeOf("max-age=99999999")).toBe(MAX_MAX_AGE_MS);
    expect(maxAgeOf("no-store")).toBe(MIN_REFETCH_INTERVAL_MS);
    expect(maxAgeOf("private")).toBe(DEFAULT_MAX_AGE_MS);
  });
});
