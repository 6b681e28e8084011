import { describe, expect, it } from "vitest";
import { expectError, history, randomChannel, relay, WsClient } from "./helpers";

function batch(body: unknown, contentType = "application/json") {
  return relay("/v1/publish", { method: "POST", headers: { "Content-Type": contentType }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

describe("batch publish", () => {
  it("publishes to several channels, one result per message in order, per-channel order kept", async () => {
    const a = randomChannel("a");
    const b = randomChannel("b");
    const ws = await WsClient.connect(a);
    const res = await batch({
      messages: [
        { channel: a, data: "a1" },
        { channel: b, data: "b1", event: "ping" },
        { channel: a, data: "a2" },
        { channel: a, data: "a3" },
      ],
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      results: [
        { channel: a, id: "1" },
        { channel: b, id: "1" },
        { channel: a, id: "2" },
        { channel: a, id: "3" },
      ],
    });
    expect((await ws.waitForMessages(3)).map((m) => m.data)).toEqual(["a1", "a2", "a3"]);
    expect((await history(b)).messages[0]).toMatchObject({ data: "b1", event: "ping" });
    ws.close();
  });

  it("reports bad entries alone and stores the good ones", async () => {
    const good = randomChannel();
    const res = await batch({
      messages: [
        { channel: "a/b", data: "x" },
        { channel: good, data: "ok" },
        { channel: good, data: 42 },
        { channel: good, data: "x", event: "relay.nope" },
        { channel: good, data: "x".repeat(1025) },
        { channel: 7, data: "x" },
        "not an object",
        { channel: good, data: "ok too", idempotencyKey: "k1" },
        { channel: good, data: "dup", idempotencyKey: "k1" },
      ],
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: Array<{ id?: string; error?: { code: string } }> };
    expect(results.map((r) => r.id ?? r.error?.code)).toEqual([
      "invalid_channel",
      "1",
      "invalid_request",
      "invalid_event",
      "message_too_large",
      "invalid_channel",
      "invalid_channel",
      "2",
      "2",
    ]);
    expect((await history(good)).messages.map((m) => m.data)).toEqual(["ok", "ok too"]);
  });

  it("refuses a batch over the limit, malformed JSON, no messages array, or a non-JSON type, storing nothing", async () => {
    const channel = randomChannel();
    const tooMany = { messages: Array.from({ length: 101 }, (_, i) => ({ channel, data: String(i) })) };
    await expectError(await batch(tooMany), 400, "invalid_request");
    await expectError(await batch("{not json"), 400, "invalid_request");
    await expectError(await batch({ message: [] }), 400, "invalid_request");
    await expectError(await batch({ messages: {} }), 400, "invalid_request");
    await expectError(await batch('{"__proto__":{"messages":[]}}'), 400, "invalid_request");
    await expectError(await batch({ messages: [{ channel, data: "x" }] }, "text/plain"), 415, "unsupported_media_type");
    expect((await history(channel)).lastId).toBe("0");
  });
});
