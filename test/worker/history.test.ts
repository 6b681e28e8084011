import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { expectError, history, publishOk, randomChannel, range, relay, roomStub } from "./helpers";

describe("history", () => {
  it("pages with since and limit, oldest first", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 10; i++) await publishOk(channel, `m${i}`);
    const page = await history(channel, "since=3&limit=4");
    expect(page.messages.map((m) => m.id)).toEqual(["4", "5", "6", "7"]);
    expect(page.messages[0]).toMatchObject({ type: "message", channel, event: "message", data: "m4" });
    expect(page).toMatchObject({ lastId: "10", oldestId: "1" });
    expect((await history(channel, "")).messages).toHaveLength(10);
    expect((await history(channel, "limit=99999999999999999999")).messages).toHaveLength(10);
    expect((await history(channel, "since=10")).messages).toEqual([]);
  });

  it("describes an empty channel with lastId 0 and oldestId null", async () => {
    expect(await history(randomChannel())).toEqual({ messages: [], lastId: "0", oldestId: null });
  });

  it("refuses a since or limit that is not a whole number", async () => {
    const channel = randomChannel();
    for (const query of ["since=-1", "since=abc", "since=1.5", "since=99999999999999999999", "limit=-1", "limit=ten", "since="]) {
      await expectError(await relay(`/v1/channels/${channel}/messages?${query}`), 400, "invalid_request");
    }
  });

  it("keeps at most HISTORY_LIMIT messages, and the counter goes on", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 55; i++) await publishOk(channel, `m${i}`);
    const page = await history(channel);
    expect(page.messages.map((m) => m.id)).toEqual(range(6, 55));
    expect(page).toMatchObject({ lastId: "55", oldestId: "6" });
    expect(await publishOk(channel, "next")).toBe("56");
  });

  it("prunes messages older than HISTORY_TTL_SECONDS by alarm, never the counter", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 3; i++) await publishOk(channel, `m${i}`);
    const stub = roomStub(channel);
    // Age the first two messages past the TTL (86400 s in wrangler.toml).
    await runInDurableObject(stub, (_room, state) => {
      state.storage.sql.exec("UPDATE messages SET ts = ts - 90000000 WHERE seq <= 2");
    });
    expect((await history(channel)).messages.map((m) => m.id)).toEqual(["3"]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const count = await runInDurableObject(stub, (_room, state) => state.storage.sql.exec("SELECT count(*) AS n FROM messages").one().n);
    expect(count).toBe(1);
    expect(await history(channel)).toMatchObject({ lastId: "3", oldestId: "3" });
    expect(await publishOk(channel, "m4")).toBe("4");
  });
});

describe("channel info", () => {
  it("reports ids and subscriber counts", async () => {
    const channel = randomChannel();
    await publishOk(channel, "x");
    const res = await relay(`/v1/channels/${channel}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      channel,
      lastId: "1",
      oldestId: "1",
      subscribers: { ws: 0, sse: 0, poll: 0 },
      counters: { published: 1, delivered: 0, dropped: 0 },
    });
  });
});

describe("routes", () => {
  it("answers health", async () => {
    const res = await relay("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("answers unknown routes with 404 not_found", async () => {
    await expectError(await relay("/v2/nothing"), 404, "not_found");
    await expectError(await relay("/v1/channels/news/unknown"), 404, "not_found");
  });

  it("answers wrong methods with 405 and an Allow header", async () => {
    const cases: Array<[string, string, string]> = [
      ["DELETE", "/v1/channels/news/messages", "POST, GET"],
      ["POST", "/v1/channels/news/events", "GET"],
      ["PUT", "/v1/channels/news", "GET"],
      ["POST", "/healthz", "GET"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await relay(path, { method });
      expect(res.headers.get("Allow")).toBe(allow);
      await expectError(res, 405, "method_not_allowed");
    }
  });

  it("asks for an upgrade on the WebSocket route", async () => {
    await expectError(await relay(`/v1/channels/${randomChannel()}/ws`), 426, "upgrade_required");
  });
});

describe("HEAD on subscribing routes", () => {
  it("is refused with 405 and leaves no subscriber behind", async () => {
    const channel = randomChannel();
    for (const path of [`/v1/channels/${channel}/events`, `/v1/channels/${channel}/poll`, `/v1/channels/${channel}/ws`, `/v1/events?channel=${channel}`]) {
      const res = await relay(path, { method: "HEAD" });
      expect(res.status).toBe(405);
      expect(res.headers.get("Allow")).toBe("GET");
    }
    const info = (await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: Record<string, number> };
    expect(info.subscribers).toEqual({ ws: 0, sse: 0, poll: 0 });
  });

  it("still answers HEAD on plain resources", async () => {
    expect((await relay("/healthz", { method: "HEAD" })).status).toBe(200);
  });
});
