import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { authenticate, TOKEN_ALGORITHM } from "../../src/auth/identity";

const SECRET = "test-secret";
const PREVIOUS = "old-secret";
const now = () => Math.floor(Date.now() / 1000);
const relay = { publish: ["news"], subscribe: ["*"] };

const b64url = (value: string | Uint8Array) => Buffer.from(value).toString("base64url");
const part = (value: unknown) => b64url(JSON.stringify(value));

async function hmac(alg: "SHA-256" | "SHA-512", secret: string, input: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: alg }, false, ["sign"]);
  return b64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input))));
}

/** A token with any header and payload, HMAC-signed with SHA-256 (or left unsigned). */
async function craft(header: unknown, payload: unknown, secret: string | undefined = SECRET, hash: "SHA-256" | "SHA-512" = "SHA-256"): Promise<string> {
  const input = `${part(header)}.${part(payload)}`;
  return `${input}.${secret === undefined ? "" : await hmac(hash, secret, input)}`;
}

function withHeader(token: string): Request {
  return new Request("https://relay.test/v1/channels/news/messages", { headers: { Authorization: `Bearer ${token}` } });
}

async function kind(token: string, secrets: string[] = [SECRET]) {
  return (await authenticate(withHeader(token), { jwtSecrets: secrets })).kind;
}

describe("authenticate", () => {
  it("uses HS256", () => {
    expect(TOKEN_ALGORITHM).toBe("HS256");
  });

  it("without a secret, tokens are not looked at", async () => {
    expect(await authenticate(withHeader("garbage"), { jwtSecrets: [] })).toEqual({ kind: "anonymous" });
    expect(await authenticate(new Request("https://relay.test/?token="), { jwtSecrets: [] })).toEqual({ kind: "anonymous" });
  });

  it("no token is anonymous", async () => {
    expect(await authenticate(new Request("https://relay.test/"), { jwtSecrets: [SECRET] })).toEqual({ kind: "anonymous" });
  });

  it("reads a good HS256 token and says where it came from", async () => {
    const token = await sign({ exp: now() + 60, sub: "alice", relay }, SECRET, "HS256");
    expect(await authenticate(withHeader(token), { jwtSecrets: [SECRET] })).toEqual({
      kind: "token",
      source: "header",
      claims: { subject: "alice", publish: ["news"], subscribe: ["*"], expiresAt: now() + 60 },
    });
    expect(await authenticate(new Request(`https://relay.test/?token=${token}`), { jwtSecrets: [SECRET] })).toMatchObject({ kind: "token", source: "query" });
    expect(await authenticate(new Request("https://relay.test/", { headers: { Cookie: `relay_token=${token}` } }), { jwtSecrets: [SECRET] })).toMatchObject({
      kind: "token",
      source: "cookie",
    });
  });

  it("accepts the previous secret during a rotation, and no other", async () => {
    const old = await sign({ exp: now() + 60, relay }, PREVIOUS, "HS256");
    expect(await kind(old, [SECRET, PREVIOUS])).toBe("token");
    expect(await kind(old, [SECRET])).toBe("invalid");
    expect(await kind(await sign({ exp: now() + 60, relay }, "another", "HS256"), [SECRET, PREVIOUS])).toBe("invalid");
  });

  it("refuses every other algorithm, alg none included", async () => {
    const payload = { exp: now() + 60, relay };
    expect(await kind(await sign(payload, SECRET, "HS512"))).toBe("invalid");
    expect(await kind(await sign(payload, SECRET, "HS384"))).toBe("invalid");
    expect(await kind(await craft({ alg: "none", typ: "JWT" }, payload, undefined))).toBe("invalid");
    expect(await kind(await craft({ alg: "none" }, payload, undefined))).toBe("invalid");
    expect(await kind(await craft({ alg: "None", typ: "JWT" }, payload, undefined))).toBe("invalid");
    expect(await kind(await craft({ alg: "none", typ: "JWT" }, payload))).toBe("invalid");
    // An RS256 header over an HMAC signature (the classic key-confusion attempt).
    expect(await kind(await craft({ alg: "RS256", typ: "JWT" }, payload))).toBe("invalid");
    expect(await kind(await craft({ alg: "HS512", typ: "JWT" }, payload, SECRET, "SHA-512"))).toBe("invalid");
    expect(await kind(await craft({ typ: "JWT" }, payload))).toBe("invalid");
    // The same hand-made token with the right header is good: the crafting is not what fails.
    expect(await kind(await craft({ alg: "HS256", typ: "JWT" }, payload))).toBe("token");
  });

  it("refuses a wrong signature, a tampered payload and malformed tokens", async () => {
    const good = await sign({ exp: now() + 60, relay: { subscribe: ["news"] } }, SECRET, "HS256");
    const [header, , signature] = good.split(".");
    const widened = `${header}.${part({ exp: now() + 60, relay: { publish: ["*"], subscribe: ["*"] } })}.${signature}`;
    expect(await kind(widened)).toBe("invalid");
    expect(await kind(await sign({ exp: now() + 60, relay }, "wrong-secret", "HS256"))).toBe("invalid");
    for (const malformed of [
      "abc",
      "a.b",
      "a.b.c",
      "a.b.c.d",
      "..",
      `${header}..`,
      `${header}.${part({ exp: 1 })}`,
      `${good}x`,
      `${good}.`,
      "eyJ.eyJ.eyJ",
      "%%%.%%%.%%%",
    ]) {
      expect(await kind(malformed), malformed).toBe("invalid");
    }
  });

  it("refuses expired, not-yet-valid and exp-less tokens, with 30 s of leeway", async () => {
    expect(await kind(await sign({ exp: now() - 120, relay }, SECRET, "HS256"))).toBe("invalid");
    expect(await kind(await sign({ exp: now() - 10, relay }, SECRET, "HS256"))).toBe("token");
    expect(await kind(await sign({ exp: now() + 600, nbf: now() + 120, relay }, SECRET, "HS256"))).toBe("invalid");
    expect(await kind(await sign({ exp: now() + 600, nbf: now() + 10, relay }, SECRET, "HS256"))).toBe("token");
    expect(await kind(await sign({ relay }, SECRET, "HS256"))).toBe("invalid");
    // iat is not checked: a token "issued" a little in the future (clock skew) is fine.
    expect(await kind(await sign({ exp: now() + 600, iat: now() + 20, relay }, SECRET, "HS256"))).toBe("token");
  });

  it("a malformed or oversized token is invalid, not anonymous", async () => {
    expect(await authenticate(new Request("https://relay.test/", { headers: { Authorization: "Basic x" } }), { jwtSecrets: [SECRET] })).toMatchObject({
      kind: "invalid",
    });
    expect(await authenticate(new Request(`https://relay.test/?token=${"a".repeat(9000)}`), { jwtSecrets: [SECRET] })).toMatchObject({ kind: "invalid" });
  });

  it("a correctly signed token whose payload is not an object is invalid, not a crash", async () => {
    for (const payload of [null, 42, "text", [1, 2], true]) {
      const token = await craft({ alg: "HS256", typ: "JWT" }, payload);
      await expect(authenticate(withHeader(token), { jwtSecrets: [SECRET] }), JSON.stringify(payload)).resolves.toMatchObject({ kind: "invalid" });
    }
  });
});
