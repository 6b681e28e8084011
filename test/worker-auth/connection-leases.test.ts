import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { expectError } from "../worker/helpers";
import { eventually, mint, randomChannel, send, Ws } from "./auth-helpers";

/** The worker-auth project's MAX_CONNECTIONS_PER_IP. */
const MAX_CONNECTIONS = 50;

function limiter(key: string) {
  return env.CONNECTION_LIMITER.get(env.CONNECTION_LIMITER.idFromName(key));
}

function leaseIds(key: string): Promise<string[]> {
  return runInDurableObject(limiter(key), (_limiter, state) =>
    state.storage.sql
      .exec<{ id: string }>("SELECT id FROM leases")
      .toArray()
      .map((row) => row.id),
  );
}

/**
 * Leases as a relay that was killed leaves them: taken `ageMs` ago for subscribers of `holder`'s
 * room (a channel) or, with `holder` null, for a Worker-side session that renewed it last `ageMs`
 * ago. Nothing is open for them: the room restarted, the isolate died.
 */
function orphanLeases(key: string, count: number, holder: string | null, ageMs: number): Promise<void> {
  return runInDurableObject(limiter(key), (_limiter, state) => {
    const created = Date.now() - ageMs;
    const expires = holder === null ? created + 60_000 : Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < count; i++) {
      state.storage.sql.exec("INSERT INTO leases (id, expires, holder, created) VALUES (?, ?, ?, ?)", `orphan-${i}`, expires, holder, created);
    }
  });
}

/** Makes every lease of `key` look `ageMs` old, past the moment a room is trusted to know it. */
function ageLeases(key: string, ageMs: number): Promise<void> {
  return runInDurableObject(limiter(key), (_limiter, state) => {
    state.storage.sql.exec("UPDATE leases SET created = ?", Date.now() - ageMs);
  });
}

function randomIpv4(): string {
  return `198.18.${Math.floor(Math.random() * 250) + 1}.${Math.floor(Math.random() * 250) + 1}`;
}

async function openWs(channel: string, token: string, address: string): Promise<Response> {
  return send(`/v1/channels/${channel}/ws`, token, { headers: { "CF-Connecting-IP": address, Upgrade: "websocket" } });
}

describe("connection leases end with their connection, also when no close handler ran", () => {
  it("leases whose room no longer holds them (it restarted) are dropped when the address is at its limit; held ones stay", async () => {
    const prefix = randomChannel("lease");
    const token = await mint({ subscribe: [`${prefix}*`] });
    const address = randomIpv4();
    const live = `${prefix}-live`;
    const held = [new Ws((await openWs(live, token, address)).webSocket!), new Ws((await openWs(live, token, address)).webSocket!)];
    const stream = await send(`/v1/channels/${live}/events`, token, { headers: { "CF-Connecting-IP": address } });
    expect(stream.status).toBe(200);
    const liveLeases = await leaseIds(address);
    expect(liveLeases).toHaveLength(3);
    // The rest of the slots were taken by subscribers of a room that has since restarted.
    await orphanLeases(address, MAX_CONNECTIONS - 3, `${prefix}-restarted`, 60_000);
    await ageLeases(address, 60_000);

    const next = await openWs(`${prefix}-next`, token, address);
    expect(next.status).toBe(101);
    const after = await leaseIds(address);
    expect(after).toHaveLength(4);
    expect(after).toEqual(expect.arrayContaining(liveLeases));

    const ws = new Ws(next.webSocket!);
    for (const socket of [...held, ws]) socket.close();
    await stream.body?.cancel();
    await eventually(async () => (await leaseIds(address)).length === 0, "every lease given back");
  });

  it("a lease just handed to its room is not taken for lost: a full address is still refused", async () => {
    const prefix = randomChannel("lease-young");
    const token = await mint({ subscribe: [`${prefix}*`] });
    const address = randomIpv4();
    await orphanLeases(address, MAX_CONNECTIONS, `${prefix}-handing-over`, 0);
    await expectError(await openWs(`${prefix}-x`, token, address), 429, "rate_limited");
  });

  it("a Worker-side session's lease that stopped being renewed ends after 60 s", async () => {
    const prefix = randomChannel("lease-session");
    const token = await mint({ subscribe: [`${prefix}*`] });
    const address = randomIpv4();
    await orphanLeases(address, MAX_CONNECTIONS, null, 59_000);
    await expectError(await openWs(`${prefix}-a`, token, address), 429, "rate_limited");
    await runInDurableObject(limiter(address), (_limiter, state) => {
      state.storage.sql.exec("UPDATE leases SET expires = ?", Date.now() - 1);
    });
    const next = await openWs(`${prefix}-b`, token, address);
    expect(next.status).toBe(101);
    new Ws(next.webSocket!).close();
    await eventually(async () => (await leaseIds(address)).length === 0, "the lease given back");
  });

  it("an open /v1/ws session's lease is one that expires within 60 s unless renewed", async () => {
    const address = randomIpv4();
    const ws = await Ws.open("/v1/ws", await mint({ subscribe: ["*"] }), { headers: { "CF-Connecting-IP": address } });
    const rows = await runInDurableObject(limiter(address), (_limiter, state) =>
      state.storage.sql.exec<{ holder: string | null; expires: number }>("SELECT holder, expires FROM leases").toArray(),
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.holder).toBeNull();
    expect(rows[0]!.expires - Date.now()).toBeLessThanOrEqual(60_000);
    ws.close();
    await eventually(async () => (await leaseIds(address)).length === 0, "the lease given back");
  });
});

describe("what counts against MAX_CONNECTIONS_PER_IP", () => {
  it("a waiting long-poll holds a slot until it is answered", async () => {
    const prefix = randomChannel("lease-poll");
    const token = await mint({ subscribe: [`${prefix}*`], publish: [`${prefix}*`] });
    const address = randomIpv4();
    const channel = `${prefix}-polled`;
    await orphanLeases(address, MAX_CONNECTIONS - 1, `${prefix}-handing-over`, 0);
    const waiting = send(`/v1/channels/${channel}/poll?timeout=30`, token, { headers: { "CF-Connecting-IP": address } });
    await eventually(async () => (await leaseIds(address)).length === MAX_CONNECTIONS, "the poll's lease");
    await expectError(await openWs(`${prefix}-refused`, token, address), 429, "rate_limited");
    await expectError(await send(`/v1/channels/${channel}/poll?timeout=0`, token, { headers: { "CF-Connecting-IP": address } }), 429, "rate_limited");

    expect((await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: "wake" })).status).toBe(201);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    await eventually(async () => (await leaseIds(address)).length === MAX_CONNECTIONS - 1, "the poll's slot given back");
    const next = await openWs(`${prefix}-after`, token, address);
    expect(next.status).toBe(101);
    new Ws(next.webSocket!).close();
    await eventually(async () => (await leaseIds(address)).length === MAX_CONNECTIONS - 1, "the socket's slot given back");
  });

  it("IPv6 addresses count by their /64: two hosts of one network share the limit, another network does not", async () => {
    const prefix = randomChannel("lease-v6");
    const token = await mint({ subscribe: [`${prefix}*`] });
    const network = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:1`;
    await orphanLeases(`${network}::/64`, MAX_CONNECTIONS - 1, `${prefix}-handing-over`, 0);
    const first = await openWs(`${prefix}-a`, token, `${network}::a`);
    expect(first.status).toBe(101);
    await expectError(await openWs(`${prefix}-b`, token, `${network}:0:0:0:b`), 429, "rate_limited");
    const elsewhere = await openWs(`${prefix}-c`, token, `${network.replace(/:1$/, ":2")}::a`);
    expect(elsewhere.status).toBe(101);
    new Ws(first.webSocket!).close();
    new Ws(elsewhere.webSocket!).close();
    await eventually(async () => (await leaseIds(`${network}::/64`)).length === MAX_CONNECTIONS - 1, "the first socket's slot given back");
    await eventually(async () => (await leaseIds(`${network.replace(/:1$/, ":2")}::/64`)).length === 0, "the other network's slot given back");
  });
});
