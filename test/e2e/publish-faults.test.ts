import http from "node:http";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { RelayClient } from "../../src/client/client";
import type { WebSocketConstructor } from "../../src/client/platform";
import { history, uniqueChannel } from "../support/clients";
import { type CuttingProxy, startCuttingProxy } from "../support/cutting-proxy";
import { mulberry32 } from "../support/prng";
import { type Relay, sleep, startRelay, waitUntil } from "../support/relay";

/**
 * Publishing against a real relay (`npm run dev`'s stack, through wrangler's dev proxy) when the
 * connection misbehaves: cut again and again under the SDK, or left with an unread oversize body.
 */

let relay: Relay;
beforeAll(async () => {
  relay = await startRelay();
});
afterAll(async () => {
  await relay?.stop();
});

describe("SDK publishes through a connection that is cut every 150–400 ms", () => {
  let proxy: CuttingProxy | undefined;
  afterAll(async () => {
    await proxy?.stop();
  });

  it("are each stored exactly once (history), though the SDK resends what was in flight after every cut", { timeout: 120_000 }, async () => {
    const SEED = Number(process.env.RELAY_TEST_SEED ?? 20_260_110);
    proxy = await startCuttingProxy(relay.port, { minMs: 150, maxMs: 400, random: mulberry32(SEED) });
    const channel = uniqueChannel("cut");
    const client = new RelayClient({
      url: proxy.url,
      transport: "ws",
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoff: { initialDelay: 10, maxDelay: 100, factor: 2 },
      connectTimeout: 2000,
      publishTimeout: 2000,
      pingInterval: 0,
    });
    const COUNT = 150;
    const IN_FLIGHT = 6;
    const receipts: Array<{ id: string }> = [];
    let next = 0;
    // A few publishes in flight at a time, as an app sending a stream of updates would, at about
    // 40/s: under WS_PUBLISH_RATE (50/s), so every refusal would be the relay's fault.
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < COUNT) {
          const data = `m${next++}`;
          receipts.push(await client.publish(channel, data));
          await sleep(IN_FLIGHT * 25);
        }
      }),
    );
    client.close();

    expect(proxy.cuts).toBeGreaterThan(5);
    expect(new Set(receipts.map((r) => r.id)).size).toBe(COUNT);
    const stored = (await history(relay.url, channel)).messages.map((m) => m.data);
    const copies = new Map<string, number>();
    for (const data of stored) copies.set(data, (copies.get(data) ?? 0) + 1);
    expect(
      [...copies].filter(([, n]) => n > 1),
      "stored more than once",
    ).toEqual([]);
    expect(stored).toHaveLength(COUNT);
    expect(new Set(stored)).toEqual(new Set(Array.from({ length: COUNT }, (_, i) => `m${i}`)));
  });
});

describe("an oversize chunked body through wrangler's dev proxy", () => {
  /** One request on the agent's one connection; fails if no answer comes within `boundMs`. */
  function send(agent: http.Agent, method: string, path: string, chunkedBytes = 0, boundMs = 4000) {
    return new Promise<{ status: number; body: string; socket: Socket }>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: relay.port, method, path, agent, headers: chunkedBytes ? { "Transfer-Encoding": "chunked" } : {} },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            body += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body, socket: req.socket! }));
        },
      );
      // The proxy stalls a connection left with an unread body for 5 s or more; a healthy one answers in milliseconds.
      req.setTimeout(boundMs, () => req.destroy(new Error(`no answer to ${method} ${path} within ${boundMs} ms on a kept-alive connection`)));
      req.on("error", reject);
      for (let sent = 0; sent < chunkedBytes; sent += 16_384) req.write("x".repeat(16_384));
      req.end();
    });
  }

  it("is answered 413 and leaves the connection usable: the next request on it is answered at once", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // wrangler.toml's MAX_MESSAGE_BYTES is 65536; 100 KB goes well past it, and well within the drain bound.
      const refused = await send(agent, "POST", `/v1/channels/${uniqueChannel("chunked")}/messages`, 100_000);
      expect(refused.status).toBe(413);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "message_too_large" } });
      await waitUntil(() => agent.freeSockets[`127.0.0.1:${relay.port}:`]?.length === 1, "the connection back in the agent's pool", 2000);
      const next = await send(agent, "GET", "/healthz");
      expect(next.status).toBe(200);
      expect(next.socket).toBe(refused.socket);
    } finally {
      agent.destroy();
    }
  });
});
