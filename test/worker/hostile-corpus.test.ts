import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectAsTabled, expectFrameError } from "../corpus/expect-answer";
import { HOSTILE_CASES, HOSTILE_CHANNELS, HOSTILE_FRAMES, type HostileCase, type HostileFrame, rejectedMarkers } from "../corpus/hostile";
import { eventually, relay, SseReader, WsClient } from "./helpers";

/**
 * Runs test/corpus/hostile.ts against the Worker in workerd. This project's vars (vitest.config.ts:
 * ALLOW_ANONYMOUS=true, MAX_MESSAGE_BYTES=1024, no secret) are the corpus's HOSTILE_CORPUS_VARS.
 */

/** Its own rate-limit key, so the corpus's publishes never meet other test files' in the limiter. */
const CLIENT_IP = `192.0.2.${Math.floor(Math.random() * 254) + 1}`;

/** Live watchers of every corpus channel: they see a message even if history later prunes it. */
const watchers = new Map<string, WsClient>();
let sse: SseReader;
const rejected = rejectedMarkers();

beforeAll(async () => {
  for (const channel of HOSTILE_CHANNELS) watchers.set(channel, await WsClient.connect(channel));
  sse = await SseReader.open("hostile-sse");
});

afterAll(async () => {
  for (const ws of watchers.values()) ws.close();
  await sse?.cancel();
});

async function run(c: HostileCase): Promise<void> {
  const res = await relay(c.path, { method: c.method, headers: { "CF-Connecting-IP": CLIENT_IP, ...c.headers }, body: c.body });
  const where = `#${c.id} ${c.name}: ${c.method} ${c.path.slice(0, 120)}`;
  // An event stream is cancelled once its headers are in; everything else is read whole.
  let text = "";
  if ((res.headers.get("Content-Type") ?? "").startsWith("text/event-stream")) await res.body?.cancel();
  else text = await res.text();
  expectAsTabled(c, { status: res.status, headers: res.headers, text }, where);
}

describe("hostile HTTP corpus", () => {
  it("has at least 100 cases, numbered uniquely, each publishing case marked", () => {
    expect(HOSTILE_CASES.length).toBeGreaterThanOrEqual(100);
    expect(new Set(HOSTILE_CASES.map((c) => c.id)).size).toBe(HOSTILE_CASES.length);
    for (const c of HOSTILE_CASES)
      if (c.method === "POST" && c.body !== undefined && c.body.length > 0 && c.expect.status !== 415) expect(c.markers, c.name).toBeDefined();
  });

  it.each(HOSTILE_CASES)("#$id $name", async (c) => {
    await run(c);
  });
});

/** One socket per path, opened before the frames and checked after them. */
const sockets = new Map<string, WsClient>();

async function socketFor(path: string): Promise<WsClient> {
  let ws = sockets.get(path);
  if (!ws) {
    ws = path === "/v1/ws" ? await WsClient.open(path) : await WsClient.connect(path.split("/")[3]!);
    sockets.set(path, ws);
  }
  return ws;
}

async function sendFrame(f: HostileFrame): Promise<void> {
  const ws = await socketFor(f.path);
  const seen = ws.frames.length;
  ws.socket.send(f.frame);
  const where = `#F${f.id} ${f.name}`;
  await eventually(() => ws.frames.slice(seen).some((x) => x.type !== "message") || ws.closed !== undefined, `an answer to ${where}`);
  const answer = ws.frames.slice(seen).find((x) => x.type !== "message")!;
  expect(ws.closed, where).toBeUndefined();
  expectFrameError(f, answer, where);
}

describe("hostile WebSocket frames", () => {
  it("has frames for both kinds of socket", () => {
    expect(HOSTILE_FRAMES.filter((f) => f.path === "/v1/ws").length).toBeGreaterThan(20);
    expect(HOSTILE_FRAMES.filter((f) => f.path !== "/v1/ws").length).toBeGreaterThan(20);
  });

  it.each(HOSTILE_FRAMES)("#F$id $name", async (f) => {
    await sendFrame(f);
  });

  it("every socket is still open and working after the frames", async () => {
    for (const [path, ws] of sockets) {
      expect(ws.closed, path).toBeUndefined();
      ws.send('{"type":"ping"}');
      await eventually(() => ws.raw.includes('{"type":"pong"}'), `pong on ${path}`);
      const frame =
        path === "/v1/ws"
          ? { type: "publish", channel: "hostile-mux", data: "still alive", ref: "alive" }
          : { type: "publish", data: "still alive", ref: "alive" };
      ws.send(frame);
      await ws.waitFor((f) => f.type === "ack" && f.ref === "alive", `an ack on ${path}`);
      ws.close();
    }
  });
});

describe("after the corpus", () => {
  it("the relay is healthy", async () => {
    const res = await relay("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("no prototype was polluted", () => {
    const probe = {} as Record<string, unknown>;
    for (const key of ["polluted", "messages", "channel", "data", "event", "type", "publish", "subscribe"]) expect(probe[key], key).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(Object.keys(Array.prototype)).toEqual([]);
  });

  it("no channel holds, or ever delivered, a payload of a refused request or frame", async () => {
    const refused = [...rejected, ...HOSTILE_FRAMES.flatMap((f) => f.markers ?? [])];
    expect(refused.length).toBeGreaterThan(100);
    const found: string[] = [];
    const check = (where: string, data: string, encoding?: string) => {
      const text = encoding === "base64" ? new TextDecoder().decode(Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0))) : data;
      for (const m of refused) if (text.includes(m)) found.push(`${where}: ${m}`);
    };
    for (const channel of HOSTILE_CHANNELS) {
      const res = await relay(`/v1/channels/${channel}/messages?since=0&limit=1000`);
      expect(res.status, channel).toBe(200);
      const page = (await res.json()) as { messages: Array<{ data: string; encoding?: string }> };
      for (const message of page.messages) check(`history of ${channel}`, message.data, message.encoding);
      for (const message of watchers.get(channel)!.messages()) check(`live on ${channel}`, message.data, (message as { encoding?: string }).encoding);
    }
    expect(found).toEqual([]);
  });

  it("the SSE stream of a corpus channel holds only well-formed fields: nothing was injected", async () => {
    await eventually(() => sse.text.includes("[HOSTILE-"), "the accepted corpus messages on SSE");
    const lines = sse.text.split("\n");
    const bad = lines.filter((line) => line !== "" && !line.startsWith(":") && !/^(id|event|data|retry):( |$)/.test(line));
    expect(bad).toEqual([]);
    expect(sse.text).not.toContain("\r");
    expect(
      sse
        .events()
        .map((e) => e.event)
        .filter((e) => e !== undefined && e !== "message"),
    ).toEqual([]);
  });
});
