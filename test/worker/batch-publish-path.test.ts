import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { expectError, history, publish, randomChannel, relay } from "./helpers";

/** The worker project's settings (vitest.config.ts): MAX_MESSAGE_BYTES=1024, MAX_BATCH_MESSAGES=100. */
const MAX_MESSAGE_BYTES = 1024;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BODY = MAX_BATCH_MESSAGES * (2 * MAX_MESSAGE_BYTES + 1024);

function batch(body: unknown) {
  return relay("/v1/publish", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

type Results = { results: Array<{ channel: unknown; id?: string; error?: { code: string; message: string } }> };

describe("batch publish: one room call per channel", () => {
  it("a channel's entries get consecutive ids in their order, even while others publish to it, each with its own key and result", async () => {
    const channel = randomChannel("batch-atomic");
    const other = randomChannel("batch-other");
    // Within HISTORY_LIMIT (50 here), so history shows every message.
    const entries = Array.from({ length: 40 }, (_, i) => ({ channel: i % 4 === 3 ? other : channel, data: `b${i}` }));
    const concurrent = Array.from({ length: 15 }, (_, i) => publish(channel, `h${i}`));
    const [res] = await Promise.all([batch({ messages: entries }), ...concurrent]);
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as Results;
    const ids = results.filter((r) => r.channel === channel).map((r) => Number(r.id));
    expect(ids).toHaveLength(30);
    expect(ids).toEqual(Array.from({ length: 30 }, (_, i) => ids[0]! + i));
    const stored = (await history(channel)).messages;
    expect(stored).toHaveLength(45);
    expect(stored.filter((m) => m.data.startsWith("b")).map((m) => m.data)).toEqual(entries.filter((e) => e.channel === channel).map((e) => e.data));
    expect(results.filter((r) => r.channel === other).map((r) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 1)));

    // Inside the one call each entry keeps its own idempotency key and result.
    const keyed = randomChannel("batch-keys");
    const keyedRes = await batch({
      messages: [
        { channel: keyed, data: "a", idempotencyKey: "ka" },
        { channel: keyed, data: "b" },
        { channel: keyed, data: "a again", idempotencyKey: "ka" },
        { channel: keyed, data: "c", idempotencyKey: "kc" },
        { channel: keyed, data: "x".repeat(MAX_MESSAGE_BYTES + 1) },
        { channel: keyed, data: "c again", idempotencyKey: "kc" },
      ],
    });
    expect(((await keyedRes.json()) as Results).results.map((r) => r.id ?? r.error?.code)).toEqual(["1", "2", "1", "3", "message_too_large", "3"]);
    expect((await history(keyed)).messages.map((m) => m.data)).toEqual(["a", "b", "c"]);
  });
});

describe("batch publish: the body bound is what the messages can need", () => {
  it("takes a full batch of the largest messages made of characters JSON escapes in 2 bytes, and no more (413)", async () => {
    const channel = randomChannel("batch-full");
    // Quotes, backslashes and newlines: JSON.stringify writes each in 2 bytes.
    const data = '"\\\n'.repeat(MAX_MESSAGE_BYTES / 3) + "x".repeat(MAX_MESSAGE_BYTES % 3);
    const body = JSON.stringify({ messages: Array.from({ length: MAX_BATCH_MESSAGES }, () => ({ channel, data, event: "e".repeat(64) })) });
    expect(body.length).toBeGreaterThan(MAX_BATCH_MESSAGES * 2 * (MAX_MESSAGE_BYTES - 2));
    expect(body.length).toBeLessThanOrEqual(MAX_BATCH_BODY);
    const res = await batch(body);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Results).results.every((r) => r.id !== undefined)).toBe(true);
    expect((await history(channel)).lastId).toBe(String(MAX_BATCH_MESSAGES));

    // A larger body: 413, nothing stored, though 6 bytes per data byte would have let it in.
    const big = randomChannel("batch-big");
    const padding = " ".repeat(MAX_BATCH_BODY);
    const refused = await batch(`{"messages":[{"channel":"${big}","data":"x"}]${padding}}`);
    expect((await expectError(refused, 413, "message_too_large")).message).toContain(String(MAX_BATCH_BODY));
    expect((await history(big)).lastId).toBe("0");
  });
});

describe("batch publish: one entry's failure stays that entry's", () => {
  /** The relay's app over this project's settings, with rooms that fail for two channels. */
  function appWithFailingRooms() {
    const overloaded = Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true });
    const room = (channel: string) => ({
      publishAll: async (_channel: string, inputs: unknown[]) => {
        if (channel === "overloaded") throw overloaded;
        if (channel === "buggy") throw new TypeError("x is undefined");
        return inputs.map((_, i) => ({ status: "stored", message: { id: String(i + 1), event: "message", ts: 1 } }));
      },
    });
    const fakeEnv = {
      ...env,
      ROOMS: { idFromName: (name: string) => name, get: (name: string) => room(name) },
      PUBLISH_RATE_LIMITER: { limit: async () => ({ success: true }) },
    };
    const app = createApp();
    const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
    return (body: unknown) =>
      app.fetch(
        new Request("http://relay.test/v1/publish", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }),
        fakeEnv,
        ctx,
      );
  }

  it("a room that is overloaded makes its entries unavailable, a bug makes them internal; the others are stored; the answer is 200", async () => {
    const send = appWithFailingRooms();
    const res = await send({
      messages: [
        { channel: "fine", data: "1" },
        { channel: "overloaded", data: "2" },
        { channel: "buggy", data: "3" },
        { channel: "fine", data: "4" },
        { channel: "overloaded", data: "5" },
      ],
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as Results;
    expect(results.map((r) => [r.channel, r.id ?? r.error?.code])).toEqual([
      ["fine", "1"],
      ["overloaded", "unavailable"],
      ["buggy", "internal"],
      ["fine", "2"],
      ["overloaded", "unavailable"],
    ]);
    expect(JSON.stringify(results)).not.toContain("x is undefined");
  });
});
