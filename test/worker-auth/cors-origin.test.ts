import { describe, expect, it } from "vitest";
import { BASE, expectError, randomChannel } from "../worker/helpers";
import { APP_ORIGIN, FOREIGN_ORIGIN, mint, outcomeOf, relay, send, Ws } from "./auth-helpers";

function preflight(path: string, origin: string, method = "POST", headers = "authorization,content-type") {
  return relay(path, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers } });
}

describe("CORS on HTTP routes", () => {
  it.each(["/v1/channels/news/messages", "/v1/publish", "/v1/channels/news/events", "/v1/events?channel=a", "/healthz"])(
    "answers a preflight from a listed origin on %s",
    async (path) => {
      const res = await preflight(path, APP_ORIGIN);
      expect(res.status).toBe(204);
      expect(res.headers.get("Access-Control-Allow-Origin")).toBe(APP_ORIGIN);
      expect(res.headers.get("Access-Control-Allow-Credentials")).toBe("true");
      expect(res.headers.get("Access-Control-Allow-Methods")).toMatch(/POST/);
      expect(res.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toMatch(/authorization/);
      expect(res.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toMatch(/content-type/);
      expect(res.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toMatch(/idempotency-key/);
      expect(res.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toMatch(/last-event-id/);
      expect(res.headers.get("Vary")).toMatch(/Origin/i);
    },
  );

  it("gives a foreign origin no allow header, on a preflight or an actual request", async () => {
    const res = await preflight("/v1/channels/news/messages", FOREIGN_ORIGIN);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    for (const origin of [FOREIGN_ORIGIN, "null", "https://app.example.evil.example", "http://app.example", "https://app.example:444"]) {
      const get = await relay("/healthz", { headers: { Origin: origin } });
      expect(get.status).toBe(200);
      expect(get.headers.get("Access-Control-Allow-Origin"), origin).toBeNull();
    }
  });

  it("lets a listed origin read successful responses and errors alike, with Retry-After exposed", async () => {
    const channel = randomChannel("cors");
    const ok = await send(`/v1/channels/${channel}/messages`, await mint({ subscribe: [channel] }), { headers: { Origin: APP_ORIGIN } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("Access-Control-Allow-Origin")).toBe(APP_ORIGIN);
    expect(ok.headers.get("Access-Control-Allow-Credentials")).toBe("true");

    const denied = await relay(`/v1/channels/${channel}/messages`, { headers: { Origin: APP_ORIGIN } });
    expect(denied.headers.get("Access-Control-Allow-Origin")).toBe(APP_ORIGIN);
    expect(denied.headers.get("Access-Control-Expose-Headers")).toMatch(/Retry-After/i);
    await expectError(denied, 401, "unauthorized");

    const notFound = await relay("/v1/nothing-here", { headers: { Origin: APP_ORIGIN } });
    expect(notFound.headers.get("Access-Control-Allow-Origin")).toBe(APP_ORIGIN);
    await expectError(notFound, 404, "not_found");

    const sse = await send(`/v1/channels/${channel}/events`, await mint({ subscribe: [channel] }), { headers: { Origin: APP_ORIGIN } });
    expect(sse.status).toBe(200);
    expect(sse.headers.get("Access-Control-Allow-Origin")).toBe(APP_ORIGIN);
    await sse.body?.cancel();
  });

  it("a preflight needs no token, even on a private channel", async () => {
    expect((await preflight(`/v1/channels/${randomChannel("cors")}/messages`, APP_ORIGIN)).status).toBe(204);
  });
});

describe("WebSocket upgrades and Origin", () => {
  const PATHS = [(c: string) => `/v1/channels/${c}/ws`, () => "/v1/ws"];

  it.each(PATHS.map((p) => [p("{c}"), p] as const))("%s: a foreign Origin is refused with 403, whatever the token and its source", async (_name, path) => {
    const channel = randomChannel("origin");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    for (const source of ["header", "query", "cookie"] as const) {
      const res = await send(path(channel), token, { source, headers: { Upgrade: "websocket", Origin: FOREIGN_ORIGIN } });
      await expectError(res, 403, "forbidden");
    }
    await expectError(await relay(path(channel), { headers: { Upgrade: "websocket", Origin: FOREIGN_ORIGIN } }), 403, "forbidden");
    await expectError(await relay(path(channel), { headers: { Upgrade: "websocket", Origin: "null" } }), 403, "forbidden");
  });

  it.each(PATHS.map((p) => [p("{c}"), p] as const))("%s: a listed Origin, the relay's own origin and no Origin are let in", async (_name, path) => {
    const channel = randomChannel("origin");
    const token = await mint({ publish: [channel], subscribe: [channel] });
    for (const origin of [APP_ORIGIN, new URL(BASE).origin, undefined]) {
      for (const source of ["header", "query", "cookie"] as const) {
        const headers: Record<string, string> = { Upgrade: "websocket" };
        if (origin) headers.Origin = origin;
        expect(await outcomeOf(await send(path(channel), token, { source, headers }), 101), `${origin} ${source}`).toBe("ok");
      }
    }
  });

  it("a listed origin's socket works end to end, with the token in a cookie", async () => {
    const channel = randomChannel("origin");
    const ws = await Ws.connect(channel, await mint({ publish: [channel], subscribe: [channel] }), { source: "cookie", headers: { Origin: APP_ORIGIN } });
    const ack = await ws.request({ type: "publish", data: "hi", ref: "r" }, (f) => f.ref === "r", "ack");
    expect(ack).toMatchObject({ type: "ack", id: "1" });
    ws.close();
  });

  it("the 101 carries no CORS headers and is not broken by them", async () => {
    const channel = randomChannel("origin");
    const res = await send(`/v1/channels/${channel}/ws`, await mint({ subscribe: [channel] }), { headers: { Upgrade: "websocket", Origin: APP_ORIGIN } });
    expect(res.status).toBe(101);
    expect(res.webSocket).toBeTruthy();
    res.webSocket!.accept();
    res.webSocket!.close();
  });
});
