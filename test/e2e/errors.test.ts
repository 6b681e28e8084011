import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  closeAll,
  type HttpResult,
  history,
  openSse,
  openWs,
  publish,
  request,
  type SseSubscriber,
  uniqueChannel,
  type WsSubscriber,
} from "../support/clients";
import { type Relay, sleep, startRelay } from "../support/relay";

/** Not the default, so the tests also show that the var is honoured. */
const MAX = 10_000;
const REJECTED = "REJECTED";

let relay: Relay;
const clients: Array<WsSubscriber | SseSubscriber> = [];
/** The channel every rejected publish aimed at (when its name was valid) and a few accepted ones. */
const channel = uniqueChannel("errors");
/** What was accepted on `channel`, in order; the history must hold exactly this at the end. */
const accepted: string[] = [];

beforeAll(async () => {
  relay = await startRelay({ vars: { MAX_MESSAGE_BYTES: String(MAX) } });
});

afterAll(async () => {
  await closeAll(clients);
  await relay?.stop();
});

function expectError(result: HttpResult, status: number, code: string): void {
  expect(result.status, JSON.stringify(result.body)).toBe(status);
  expect(result.headers.get("content-type") ?? "").toMatch(/^application\/json/);
  expect(result.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(result.body.error.message.length).toBeGreaterThan(10);
  // No stack trace or internals leak into the message.
  expect(result.body.error.message).not.toMatch(/\bat .*:\d+:\d+|Error:/);
}

/** POST to a raw (already encoded) channel path segment. */
function postRaw(segment: string, body: BodyInit = REJECTED, query = ""): Promise<HttpResult> {
  return request(`${relay.url}/v1/channels/${segment}/messages${query}`, { method: "POST", body });
}

async function acceptedPublish(data: BodyInit, options: Parameters<typeof publish>[3] = {}): Promise<HttpResult> {
  const result = await publish(relay.url, channel, data, options);
  expect(result.status, JSON.stringify(result.body)).toBe(201);
  return result;
}

describe("channel names", () => {
  const invalid = [
    "a%2Fb", // a percent-encoded slash must not become a path separator or part of a name
    "a%2fb",
    "a/b",
    "_leading-underscore",
    "-leading-dash",
    "%40leading-at",
    "a%20b",
    "caf%C3%A9",
    "a!b",
    "a%00b",
    "a%0Ab",
    "a%0D%0Ab",
    "a%25",
    "a".repeat(129),
  ];

  for (const segment of invalid) {
    it(`POST to ${JSON.stringify(segment.length > 40 ? `${segment.slice(0, 10)}…(${segment.length})` : segment)} is 400 invalid_channel`, async () => {
      expectError(await postRaw(segment), 400, "invalid_channel");
    });
  }

  it("the other channel resources reject a percent-encoded slash too", async () => {
    for (const resource of ["events", "ws", "messages"]) {
      expectError(await request(`${relay.url}/v1/channels/a%2Fb/${resource}`), 400, "invalid_channel");
    }
    expectError(await request(`${relay.url}/v1/channels/a%2Fb`), 400, "invalid_channel");
  });

  it("dot segments get a JSON 404 or 405, never something else", async () => {
    for (const segment of ["..", "%2E%2E", ".", "%2e"]) {
      const result = await postRaw(segment);
      expect([404, 405], `${segment}: ${result.status}`).toContain(result.status);
      expect(result.body).toMatchObject({ error: { code: expect.stringMatching(/^(not_found|method_not_allowed)$/) } });
    }
  });

  it("128 characters and every allowed character are fine; percent-encoded allowed characters name the same channel", async () => {
    const long = `L${"a".repeat(127)}-${Date.now()}`.slice(0, 128);
    expect((await postRaw(long, "ok")).status).toBe(201);
    const name = uniqueChannel("Az09._-:~@");
    const encoded = name.replace("@", "%40").replace(":", "%3A").replace("~", "%7E");
    const result = await postRaw(encoded, "same channel");
    expect(result.status).toBe(201);
    expect(result.body.channel).toBe(name);
    expect((await history(relay.url, name)).messages.map((m) => m.data)).toEqual(["same channel"]);
  });
});

describe("event names", () => {
  const invalid = ["", "relay.gap", "relay.custom", "a b", "a\nb", "a\r\nid: 99", "é", "e".repeat(65), "a/b"];
  for (const event of invalid) {
    it(`event=${JSON.stringify(event.length > 20 ? `${event.slice(0, 5)}…(${event.length})` : event)} is 400 invalid_event`, async () => {
      expectError(await publish(relay.url, channel, REJECTED, { event }), 400, "invalid_event");
    });
  }

  it("a valid event name of 64 characters is stored as given", async () => {
    const event = `x${"y".repeat(62)}.`;
    const result = await acceptedPublish("named", { event });
    accepted.push("named");
    expect(result.body.event).toBe(event);
  });
});

describe("sizes", () => {
  it(`exactly MAX_MESSAGE_BYTES (${MAX}) is 201, one byte more is 413`, async () => {
    await acceptedPublish("a".repeat(MAX));
    accepted.push("a".repeat(MAX));
    expectError(await publish(relay.url, channel, REJECTED + "a".repeat(MAX + 1 - REJECTED.length)), 413, "message_too_large");
  });

  it("counts bytes, not characters", async () => {
    // 2 bytes per "é": MAX/2 characters fit, one more ASCII byte does not.
    const fits = "é".repeat(MAX / 2);
    await acceptedPublish(fits);
    accepted.push(fits);
    // MAX + 1 bytes in far fewer characters.
    const room = MAX + 1 - REJECTED.length;
    const tooLarge = `${REJECTED}${"é".repeat(Math.floor(room / 2))}${"x".repeat(room % 2)}`;
    expect(new TextEncoder().encode(tooLarge).byteLength).toBe(MAX + 1);
    expectError(await publish(relay.url, channel, tooLarge), 413, "message_too_large");
  });

  it("a chunked body without Content-Length is measured as it streams", async () => {
    const chunked = (size: number, fill: string): ReadableStream<Uint8Array> => {
      const bytes = new TextEncoder().encode(fill.repeat(size).slice(0, size));
      return new ReadableStream({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 1000) controller.enqueue(bytes.slice(at, at + 1000));
          controller.close();
        },
      });
    };
    const init = (body: ReadableStream<Uint8Array>) => ({ method: "POST", body, duplex: "half" }) as RequestInit;
    const url = `${relay.url}/v1/channels/${channel}/messages`;
    expectError(await request(url, init(chunked(MAX + 1, "R"))), 413, "message_too_large");
    expect((await request(url, init(chunked(MAX, "c")))).status).toBe(201);
    accepted.push("c".repeat(MAX));
  });

  it("a body that is not UTF-8 is carried as base64, byte for byte", async () => {
    const bytes = new Uint8Array(MAX).map((_, i) => (i % 2 === 0 ? 0xff : i % 256));
    await acceptedPublish(bytes);
    accepted.push(Buffer.from(bytes).toString("base64"));
    expectError(await publish(relay.url, channel, new Uint8Array(MAX + 1).fill(0xfe)), 413, "message_too_large");
  });
});

describe("headers and cursors", () => {
  it("a bad Idempotency-Key is 400 invalid_idempotency_key", async () => {
    expectError(await publish(relay.url, channel, REJECTED, { headers: { "Idempotency-Key": "k".repeat(129) } }), 400, "invalid_idempotency_key");
  });

  it("If-Match: a malformed value is 400, a stale one is 412 with the current lastId", async () => {
    expectError(await publish(relay.url, channel, REJECTED, { headers: { "If-Match": "nonsense" } }), 400, "invalid_request");
    const stale = await publish(relay.url, channel, REJECTED, { headers: { "If-Match": '"999999"' } });
    expectError(stale, 412, "precondition_failed");
    expect(stale.body.error.lastId).toBe((await history(relay.url, channel)).lastId);
  });

  it("non-numeric or negative cursors are 400 invalid_request", async () => {
    for (const path of ["events?since=-1", "events?since=abc", "events?since=1.5", "messages?since=-1", "messages?limit=x", "ws?since=x"]) {
      // /ws checks the upgrade first; everything else must be the cursor error.
      const result = await request(`${relay.url}/v1/channels/${channel}/${path}`);
      if (path.startsWith("ws")) expectError(result, 426, "upgrade_required");
      else expectError(result, 400, "invalid_request");
    }
    const ws = openWs(relay.url, channel, { since: "-1" });
    await expect(ws).rejects.toThrow(/400/);
  });
});

describe("methods and routes", () => {
  it("a wrong method is 405 with an Allow header", async () => {
    const cases: Array<[string, string, string[]]> = [
      ["PUT", `/v1/channels/${channel}/messages`, ["GET", "POST"]],
      ["DELETE", `/v1/channels/${channel}/messages`, ["GET", "POST"]],
      ["DELETE", `/v1/channels/${channel}`, ["GET"]],
      ["POST", `/v1/channels/${channel}/events`, ["GET"]],
      ["POST", `/v1/channels/${channel}/ws`, ["GET"]],
      ["POST", "/healthz", ["GET"]],
    ];
    for (const [method, path, allowed] of cases) {
      const result = await request(`${relay.url}${path}`, { method, body: method === "GET" ? undefined : REJECTED });
      expectError(result, 405, "method_not_allowed");
      const allow = (result.headers.get("allow") ?? "").split(",").map((m) => m.trim());
      for (const m of allowed) expect(allow, `${method} ${path}`).toContain(m);
    }
  });

  it("an unknown route is a JSON 404", async () => {
    for (const path of ["/nope", "/v1", `/v1/channels/${channel}/unknown`, `/v1/channels/${channel}/messages/1`]) {
      expectError(await request(`${relay.url}${path}`), 404, "not_found");
    }
  });

  it("/ws without Upgrade: websocket is 426", async () => {
    expectError(await request(`${relay.url}/v1/channels/${channel}/ws`), 426, "upgrade_required");
  });
});

describe("WebSocket bad frames", () => {
  it("answers each with an error frame (with its ref when usable) and keeps the socket open", async () => {
    const ws = await openWs(relay.url, channel);
    clients.push(ws);
    const bad: Array<{ frame: string | Buffer; code: string; ref?: string }> = [
      { frame: "not json", code: "invalid_frame" },
      { frame: "[1,2]", code: "invalid_frame" },
      { frame: "null", code: "invalid_frame" },
      { frame: '{"type":"nope","ref":"r1"}', code: "invalid_frame", ref: "r1" },
      { frame: '{"type":"publish","ref":"r2"}', code: "invalid_frame", ref: "r2" },
      { frame: '{"type":"publish","data":42,"ref":"r3"}', code: "invalid_frame", ref: "r3" },
      { frame: JSON.stringify({ type: "publish", data: REJECTED, event: "relay.gap", ref: "r4" }), code: "invalid_event", ref: "r4" },
      { frame: JSON.stringify({ type: "publish", data: REJECTED, event: "a\nid: 9", ref: "r5" }), code: "invalid_event", ref: "r5" },
      { frame: JSON.stringify({ type: "publish", data: REJECTED + "é".repeat(MAX / 2), ref: "r6" }), code: "message_too_large", ref: "r6" },
      { frame: JSON.stringify({ type: "publish", data: REJECTED, ref: "r".repeat(129) }), code: "invalid_frame" },
      { frame: Buffer.from(`{"type":"publish","data":"${REJECTED}"}`), code: "invalid_frame" },
    ];
    for (const { frame, code, ref } of bad) {
      const before = ws.frames.items.length;
      ws.send(frame);
      const frames = await ws.waitFor((all) => all.length > before, 5_000, `an answer to ${String(frame).slice(0, 60)}`);
      const answer = frames[before];
      expect(answer, String(frame).slice(0, 60)).toMatchObject({ type: "error", error: { code, message: expect.any(String) } });
      if (ref === undefined) expect(answer).not.toHaveProperty("ref");
      else expect(answer).toHaveProperty("ref", ref);
      expect(ws.isClosed()).toBe(false);
    }

    // The exact ping text gets the exact pong text.
    const before = ws.raw.length;
    ws.send('{"type":"ping"}');
    await ws.waitFor((all) => all.length > before, 5_000, "pong");
    expect(ws.raw[before]).toBe('{"type":"pong"}');

    // Still a working socket: exactly MAX bytes of data is accepted and acknowledged.
    const data = "w".repeat(MAX);
    ws.send({ type: "publish", data, ref: "good" });
    const frames = await ws.waitFor((all) => all.some((f) => f.type === "ack" && f.ref === "good"), 5_000, "ack for the good frame");
    const ack = frames.find((f) => f.type === "ack" && f.ref === "good");
    expect(ack).toMatchObject({ id: expect.stringMatching(/^[1-9][0-9]*$/) });
    await ws.waitForId(String(ack?.id));
    accepted.push(data);
    expect(ws.isClosed()).toBe(false);
  });
});

describe("SSE field injection", () => {
  it("line breaks in data become data lines, never fields; an SSE client gets the text back", async () => {
    const sse = await openSse(relay.url, channel);
    clients.push(sse);
    const evil = "first\nid: 999999\nevent: relay.gap\n\ndata: injected\rretry: 1\r\nlast";
    const result = await acceptedPublish(evil);
    accepted.push(evil);
    const events = await sse.waitForId(result.body.id);
    await sleep(200);
    expect(sse.events.items).toEqual([{ id: result.body.id, event: "message", data: evil.replace(/\r\n|\r/g, "\n") }]);
    expect(events).toHaveLength(1);
  });
});

describe("after all the bad input", () => {
  it("the relay is healthy and the channel holds exactly the accepted messages", async () => {
    const health = await request(`${relay.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ ok: true });

    const page = await history(relay.url, channel);
    expect(page.messages.map((m) => m.data)).toEqual(accepted);
    expect(page.messages.map((m) => m.id)).toEqual(accepted.map((_, i) => String(i + 1)));
    expect(page.messages.some((m) => m.data.includes(REJECTED))).toBe(false);
    const base64 = page.messages.find((m) => m.encoding === "base64");
    expect(base64).toBeDefined();
    expect(Buffer.from(base64?.data ?? "", "base64")).toHaveLength(MAX);

    const info = await request(`${relay.url}/v1/channels/${channel}`);
    expect(info.body).toMatchObject({ channel, lastId: String(accepted.length), oldestId: "1" });
  });
});
