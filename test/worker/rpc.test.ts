import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { history, randomChannel, WsClient } from "./helpers";

/** The auxiliary "publisher" Worker in vitest.config.ts calls `env.RELAY.publish()` over a service binding. */
const publisher = (env as unknown as { PUBLISHER: Fetcher }).PUBLISHER;

async function publishFromOtherWorker(body: Record<string, unknown>) {
  const res = await publisher.fetch("http://publisher/", { method: "POST", body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { id?: string; error?: string } };
}

describe("RPC publish from another Worker", () => {
  it("returns the id and reaches WebSocket subscribers, without HTTP", async () => {
    const channel = randomChannel();
    const ws = await WsClient.connect(channel);
    expect(await publishFromOtherWorker({ channel, data: "from a service", event: "svc" })).toEqual({ status: 200, body: { id: "1" } });
    expect(await publishFromOtherWorker({ channel, data: "again" })).toEqual({ status: 200, body: { id: "2" } });
    const messages = await ws.waitForMessages(2);
    expect(messages.map((m) => [m.id, m.event, m.data])).toEqual([
      ["1", "svc", "from a service"],
      ["2", "message", "again"],
    ]);
    ws.close();
  });

  it("throws errors that start with API.md's code, and stores nothing", async () => {
    const channel = randomChannel();
    const bad = await publishFromOtherWorker({ channel: "a/b", data: "x" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^invalid_channel: /);
    expect((await publishFromOtherWorker({ channel, data: "x", event: "relay.no" })).body.error).toMatch(/^invalid_event: /);
    expect((await publishFromOtherWorker({ channel, data: "x".repeat(1025) })).body.error).toMatch(/^message_too_large: /);
    expect((await history(channel)).lastId).toBe("0");
  });
});
