import { describe, expect, it } from "vitest";
import { expectError, history, publish, publishOk, randomChannel, range, relay, WsClient } from "./helpers";

describe("publish", () => {
  it("answers 201 with the stored message's fields", async () => {
    const channel = randomChannel();
    const before = Date.now();
    const res = await publish(channel, "hello", { query: "event=greeting" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ id: "1", channel, event: "greeting" });
    expect(body.ts).toBeGreaterThanOrEqual(before);
  });

  it("numbers messages consecutively per channel, independently across channels", async () => {
    const a = randomChannel("a");
    const b = randomChannel("b");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await publishOk(a, `a${i}`));
      if (i % 2 === 0) await publishOk(b, `b${i}`);
    }
    expect(ids).toEqual(range(1, 5));
    expect((await history(b)).messages.map((m) => m.data)).toEqual(["b0", "b2", "b4"]);
    expect((await history(b)).lastId).toBe("3");
  });

  it("keeps ids in order under concurrent publishes", async () => {
    const channel = randomChannel();
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => publishOk(channel, String(i))));
    expect(new Set(ids).size).toBe(20);
    expect((await history(channel)).messages.map((m) => m.id)).toEqual(range(1, 20));
  });

  it("carries the body byte for byte, and invalid UTF-8 as base64", async () => {
    const channel = randomChannel();
    const text = "\uFEFFline 1\r\nline 2 — ünïcødé 🎉";
    await publishOk(channel, text);
    const bytes = new Uint8Array([0xff, 0x00, 0xc3, 0x28]);
    expect((await publish(channel, bytes)).status).toBe(201);
    await publishOk(channel, "");
    const [first, second, empty] = (await history(channel)).messages;
    expect(first).toMatchObject({ data: text, event: "message" });
    expect(first).not.toHaveProperty("encoding");
    expect(second).toMatchObject({ data: btoa(String.fromCharCode(...bytes)), encoding: "base64" });
    expect(empty).toMatchObject({ data: "" });
  });

  it("accepts exactly MAX_MESSAGE_BYTES and refuses one byte more", async () => {
    const channel = randomChannel();
    expect((await publish(channel, "x".repeat(1024))).status).toBe(201);
    await expectError(await publish(channel, "x".repeat(1025)), 413, "message_too_large");
    expect((await history(channel)).lastId).toBe("1");
  });

  describe("Idempotency-Key", () => {
    it("answers a repeat with the first message and stores and delivers nothing new", async () => {
      const channel = randomChannel();
      const ws = await WsClient.connect(channel);
      const headers = { "Idempotency-Key": "order-42" };
      const first = (await (await publish(channel, "once", { headers })).json()) as { id: string; ts: number };
      const again = await publish(channel, "twice", { headers });
      expect(again.status).toBe(201);
      expect(await again.json()).toEqual(first);
      const next = await publishOk(channel, "after");
      expect(next).toBe("2");
      await ws.waitForMessages(2);
      expect(ws.messages().map((m) => m.data)).toEqual(["once", "after"]);
      ws.close();
    });

    it("is scoped to its channel", async () => {
      const headers = { "Idempotency-Key": "same-key" };
      const a = randomChannel();
      const b = randomChannel();
      expect((await publish(a, "a", { headers })).status).toBe(201);
      expect((await publish(b, "b", { headers })).status).toBe(201);
      expect((await history(b)).messages.map((m) => m.data)).toEqual(["b"]);
    });

    it("refuses keys that are empty, too long or not printable ASCII", async () => {
      const channel = randomChannel();
      for (const key of ["k".repeat(129), "del\x7f", "tab\there"]) {
        await expectError(await publish(channel, "x", { headers: { "Idempotency-Key": key } }), 400, "invalid_idempotency_key");
      }
      expect((await history(channel)).lastId).toBe("0");
    });
  });

  describe("If-Match", () => {
    it("stores only when the channel's last id matches", async () => {
      const channel = randomChannel();
      expect((await publish(channel, "first", { headers: { "If-Match": '"0"' } })).status).toBe(201);
      const stale = await expectError(await publish(channel, "stale", { headers: { "If-Match": '"0"' } }), 412, "precondition_failed");
      expect(stale.lastId).toBe("1");
      expect((await publish(channel, "second", { headers: { "If-Match": '"1"' } })).status).toBe(201);
      expect((await history(channel)).messages.map((m) => m.data)).toEqual(["first", "second"]);
    });

    it("refuses a value that is not an id", async () => {
      const channel = randomChannel();
      await expectError(await publish(channel, "x", { headers: { "If-Match": '"abc"' } }), 400, "invalid_request");
      expect((await history(channel)).lastId).toBe("0");
    });
  });

  describe("bad input stores nothing", () => {
    const badChannels = ["", "x".repeat(129), "a%2Fb", "a%20b", "caf%C3%A9", ".hidden", "-dash", "a%0Ab"];
    for (const name of badChannels) {
      it(`refuses channel ${JSON.stringify(decodeURIComponent(name))}`, async () => {
        const res = await relay(`/v1/channels/${name}/messages`, { method: "POST", body: "x" });
        await expectError(res, 400, "invalid_channel");
      });
    }

    it("answers '..' with a JSON error, as URL normalisation routes it elsewhere", async () => {
      const res = await relay("/v1/channels/%2E%2E/messages", { method: "POST", body: "x" });
      expect([400, 404, 405]).toContain(res.status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/^(invalid_channel|not_found|method_not_allowed)$/);
    });

    it("refuses a channel name holding a raw slash", async () => {
      await expectError(await relay("/v1/channels/a/b/messages", { method: "POST", body: "x" }), 400, "invalid_channel");
    });

    it("accepts every allowed character and 128 characters", async () => {
      expect((await publish("Az09._-:~@", "x")).status).toBe(201);
      expect((await publish("c".repeat(128), "x")).status).toBe(201);
    });

    for (const event of ["relay.x", "a%0Ab", "e".repeat(65), "", "sp%20ace"]) {
      it(`refuses event ${JSON.stringify(decodeURIComponent(event))}`, async () => {
        const channel = randomChannel();
        await expectError(await publish(channel, "x", { query: `event=${event}` }), 400, "invalid_event");
        expect((await history(channel)).lastId).toBe("0");
      });
    }
  });
});
