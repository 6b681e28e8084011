// Tokens against a real relay with RELAY_JWT_SECRET set: a token function is called on every
// connect, so the SDK rides through the relay's TokenExpired (4002) closes without losing a message;
// a fixed token stops it for good.

import { RelayClient, type RelayClientError, type StateChange, type TransportName, type WebSocketConstructor } from "edge-relay/client";
import { sign } from "hono/jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CLOCK_LEEWAY_SECONDS } from "../../src/auth/claims";
import { publishOk } from "../support/clients";
import { type Relay, removeState, sleep, startRelay, waitUntil } from "../support/relay";

const SECRET = "browser-test-secret-0123456789abcdef";
let relay: Relay;
beforeAll(async () => {
  relay = await startRelay({ vars: { RELAY_JWT_SECRET: SECRET } });
});
afterAll(async () => {
  await relay?.stop();
  if (relay) await removeState(relay.persistTo);
});

/** A token for every channel that the relay honours for `ttl` seconds from now (its exp plus the 30 s leeway). */
function token(ttl: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign({ sub: "sdk-test", iat: now, exp: now + ttl - CLOCK_LEEWAY_SECONDS, relay: { publish: ["*"], subscribe: ["*"] } }, SECRET, "HS256");
}

const waitFor = (predicate: () => boolean, what: string, timeoutMs = 20_000) => waitUntil(predicate, what, timeoutMs);

describe("tokens against a real relay", () => {
  for (const transport of ["ws", "sse"] as TransportName[]) {
    it(`fetches a fresh token when the old one expires and loses nothing (${transport})`, async () => {
      const channel = `tokens.${transport}.${Date.now().toString(36)}`;
      let issued = 0;
      const client = new RelayClient({
        url: relay.url,
        transport,
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        // Each token lives two seconds: the relay ends the connection at its expiry.
        token: () => {
          issued++;
          return token(2);
        },
        backoff: { initialDelay: 200, maxDelay: 1000 },
      });
      const states: StateChange[] = [];
      const errors: RelayClientError[] = [];
      client.on("state", (change) => states.push(change));
      client.on("error", (error) => errors.push(error));
      const ids: number[] = [];
      client.subscribe(channel, (m) => ids.push(Number(m.id)), { since: 0 });
      await waitFor(() => client.state === "open", "open");

      const publisher = await token(600);
      for (let i = 1; i <= 30; i++) {
        await publishOk(relay.url, channel, `m${i}`, { headers: { Authorization: `Bearer ${publisher}` } });
        await sleep(200);
      }
      await waitFor(() => ids.length >= 30, "every message");
      await sleep(300);
      expect(ids).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      // Six seconds of two-second tokens: the connection was renewed each time, never given up.
      expect(issued).toBeGreaterThanOrEqual(3);
      expect(states.some((s) => s.newState === "closed")).toBe(false);
      expect(errors).toEqual([]);
      client.close();
    });
  }

  it("stops with token_expired when its one token expires", async () => {
    const client = new RelayClient({ url: relay.url, transport: "ws", WebSocket: WebSocket as unknown as WebSocketConstructor, token: await token(2) });
    const errors: RelayClientError[] = [];
    const states: string[] = [];
    client.on("error", (error) => errors.push(error));
    client.on("state", ({ newState }) => states.push(newState));
    client.subscribe(`tokens.fixed.${Date.now().toString(36)}`, () => {});
    await waitFor(() => client.state === "closed", "closed at expiry", 10_000);
    expect(states).toEqual(["open", "closed"]);
    expect(errors.map((e) => [e.code, e.closeCode])).toEqual([["token_expired", 4002]]);
    await expect(client.publish("x", "y")).rejects.toMatchObject({ code: "closed" });
  });

  it("stops with unauthorized when the token is refused at the WebSocket upgrade", async () => {
    const client = new RelayClient({ url: relay.url, transport: "auto", WebSocket: WebSocket as unknown as WebSocketConstructor, token: "not-a-jwt" });
    const errors: RelayClientError[] = [];
    client.on("error", (error) => errors.push(error));
    client.subscribe(`tokens.bad.${Date.now().toString(36)}`, () => {});
    await waitFor(() => client.state === "closed", "closed");
    expect(errors.map((e) => [e.code, e.status])).toEqual([["unauthorized", 401]]);
  });
});
