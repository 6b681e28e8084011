import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, type HttpResult, openWs, publish, request, uniqueChannel, type WsSubscriber } from "../support/clients";
import { type Relay, startRelay } from "../support/relay";

/**
 * An identity provider on 127.0.0.1 serving its JSON Web Key Set, and a relay configured with it
 * (RELAY_JWKS_URL, RELAY_JWT_ISSUER, RELAY_JWT_AUDIENCE): the relay fetches real keys over HTTP.
 */
const ISSUER = "https://login.example/";
const AUDIENCE = "edge-relay";

interface Key {
  alg: "RS256" | "ES256";
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(alg: Key["alg"], kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

let relay: Relay;
let provider: Server;
let jwksUrl: string;
const published: Key[] = [];
let jwksFetches = 0;
let providerDown = false;
const clients: WsSubscriber[] = [];

function sign(key: Key, rights: { publish?: string[]; subscribe?: string[] }, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: "alice", relay: rights, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setExpirationTime("10m")
    .sign(key.privateKey);
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/**
 * Publishes until `done` accepts the answer, at most ~10 s: a kid the relay has not seen refetches
 * the key set at most once every few seconds (src/auth/jwks.ts), so the first try may come too soon.
 */
async function publishUntil(channel: string, data: string, token: string, done: (result: HttpResult) => boolean): Promise<HttpResult> {
  let result = await publish(relay.url, channel, data, { headers: bearer(token) });
  for (let tries = 0; tries < 20 && !done(result); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    result = await publish(relay.url, channel, data, { headers: bearer(token) });
  }
  return result;
}

beforeAll(async () => {
  published.push(await makeKey("RS256", "rsa-1"), await makeKey("ES256", "ec-1"));
  provider = createServer((_req, res) => {
    jwksFetches += 1;
    if (providerDown) return void res.writeHead(503).end("down");
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "public, max-age=300" });
    res.end(JSON.stringify({ keys: published.map((key) => key.jwk) }));
  });
  await new Promise<void>((resolve) => provider.listen(0, "127.0.0.1", resolve));
  jwksUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/.well-known/jwks.json`;
  relay = await startRelay({ vars: { RELAY_JWKS_URL: jwksUrl, RELAY_JWT_ISSUER: ISSUER, RELAY_JWT_AUDIENCE: AUDIENCE } });
});

afterAll(async () => {
  await closeAll(clients);
  await relay?.stop();
  await new Promise((resolve) => provider?.close(resolve));
});

describe("tokens from an identity provider's key set", () => {
  it("RS256 and ES256 tokens publish and subscribe; the key set is fetched once, then cached", async () => {
    const channel = uniqueChannel("idp");
    const [rsa, ec] = published as [Key, Key];
    const ws = await openWs(relay.url, channel, { query: { token: await sign(ec, { subscribe: [channel] }) } });
    clients.push(ws);
    const first = await publish(relay.url, channel, "from rsa", { headers: bearer(await sign(rsa, { publish: [channel] })) });
    const second = await publish(relay.url, channel, "from ec", { headers: bearer(await sign(ec, { publish: [channel] })) });
    expect([first.status, second.status]).toEqual([201, 201]);
    await ws.waitForId(second.body.id, 10_000);
    expect(ws.messages().map((m) => m.data)).toEqual(["from rsa", "from ec"]);
    expect(jwksFetches).toBe(1);
  });

  it("refuses with 401 saying which check failed, and stores nothing", async () => {
    const channel = uniqueChannel("idp-refused");
    const [rsa] = published as [Key];
    const stranger = await makeKey("RS256", "rsa-1");
    const cases: Array<[string, RegExp]> = [
      [await sign(rsa, { publish: [channel] }, { iss: "https://evil.example/" }), /issuer.*RELAY_JWT_ISSUER/],
      [await sign(rsa, { publish: [channel] }, { aud: "another-app" }), /audience.*RELAY_JWT_AUDIENCE/],
      [await sign(stranger, { publish: [channel] }), /signature does not match/],
    ];
    for (const [token, message] of cases) {
      const result = await publish(relay.url, channel, "REJECTED", { headers: bearer(token) });
      expect(result.status).toBe(401);
      expect(result.body).toMatchObject({ error: { code: "unauthorized", message: expect.stringMatching(message) } });
    }
    const anyone = await sign(rsa, { subscribe: ["*"] });
    const stored = await request(`${relay.url}/v1/channels/${channel}/messages?since=0`, { headers: bearer(anyone) });
    expect(stored.body.messages).toEqual([]);
  });

  it("a rotated key is found by refetching the set; an unreachable set is a 401 that names it", async () => {
    const channel = uniqueChannel("idp-rotation");
    const rotated = await makeKey("RS256", "rsa-2");
    published.push(rotated);
    const before = jwksFetches;
    expect((await publishUntil(channel, "after rotation", await sign(rotated, { publish: [channel] }), (r) => r.status === 201)).status).toBe(201);
    expect(jwksFetches).toBe(before + 1);

    providerDown = true;
    const unknown = await makeKey("ES256", "ec-unknown");
    const refused = await publishUntil(channel, "REJECTED", await sign(unknown, { publish: [channel] }), (r) => /answered 503/.test(JSON.stringify(r.body)));
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toMatch(new RegExp(`key set at ${jwksUrl.replace(/[.]/g, "\\.")} answered 503`));
    // Keys already known keep working while the provider is down.
    expect((await publish(relay.url, channel, "still fine", { headers: bearer(await sign(rotated, { publish: [channel] })) })).status).toBe(201);
    providerDown = false;
    const anyone = await sign(rotated, { subscribe: ["*"] });
    const stored = await request(`${relay.url}/v1/channels/${channel}/messages?since=0`, { headers: bearer(anyone) });
    expect(stored.body.messages.map((m: { data: string }) => m.data)).toEqual(["after rotation", "still fine"]);
  });
});
