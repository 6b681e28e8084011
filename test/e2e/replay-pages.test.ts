import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { RssSampler } from "../../bench/lib/proc";
import { channelUrl, request, uniqueChannel, withTimeout } from "../support/clients";
import { type Relay, startRelay } from "../support/relay";

/**
 * A full channel resumed from 0 by many clients at once: the room sends each replay a page at a
 * time and history and long-poll answers are bounded by size, so room and Worker stay healthy,
 * and every resumer still gets every message once, in order, and the live ones after them.
 * Sized for 2 shared cores: 1,000 messages of 16 KB (16 MB) and 20 resumes (320 MB sent).
 */
const MESSAGES = 1000;
const MESSAGE_CHARS = 60 * 1024;
const RESUMERS = 20;
/** Published while the replays run; the channel holds MESSAGES - LIVE before, so it is full (HISTORY_LIMIT) and nothing is pruned. */
const LIVE = 5;
const TOTAL = MESSAGES;
/** The documented bound of one history page or long-poll answer, plus one envelope's JSON. */
const ANSWER_MAX_CHARS = 1024 * 1024;

let relay: Relay;
const channel = uniqueChannel("replay-full");

function body(id: number): string {
  return `m${id}:`.padEnd(MESSAGE_CHARS, "x");
}

beforeAll(async () => {
  relay = await startRelay();
  for (let first = 1; first <= MESSAGES - LIVE; first += 100) {
    const messages = Array.from({ length: Math.min(100, MESSAGES - LIVE - first + 1) }, (_, i) => ({ channel, data: body(first + i) }));
    const result = await request(
      `${relay.url}/v1/publish`,
      // Each batch from its own address: the publish rate limit (1000 per 10 s per address) is not under test here.
      { method: "POST", headers: { "Content-Type": "application/json", "CF-Connecting-IP": `192.0.2.${first % 250}` }, body: JSON.stringify({ messages }) },
      30_000,
    );
    expect(result.status).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await relay?.stop();
});

/** A resuming WebSocket that keeps only what it checks: each message's id and whether its data is what was published. */
function resume(url: string): { ids: number[]; bad: string[]; done: Promise<void>; ws: WebSocket } {
  const ids: number[] = [];
  const bad: string[] = [];
  const ws = new WebSocket(url);
  const done = new Promise<void>((resolve, reject) => {
    ws.on("message", (raw) => {
      const frame = JSON.parse(raw.toString()) as { type: string; id?: string; data?: string; channel?: string };
      if (frame.type !== "message") return;
      const id = Number(frame.id);
      if (frame.channel !== channel || frame.data !== body(id)) bad.push(String(frame.id));
      ids.push(id);
      if (id === TOTAL) resolve();
    });
    ws.on("close", (code) => reject(new Error(`closed with ${code} after ${ids.length} messages`)));
    ws.on("error", reject);
  });
  if (url.endsWith("/v1/ws")) ws.on("open", () => ws.send(JSON.stringify({ type: "subscribe", channel, since: "0" })));
  return { ids, bad, done, ws };
}

describe(`${RESUMERS} concurrent since=0 resumes of a full channel (${MESSAGES} × ${MESSAGE_CHARS / 1024} KB)`, () => {
  it("every resumer gets every message once and in order, live ones after the replay; the relay stays healthy", async () => {
    const wsBase = relay.url.replace(/^http/, "ws");
    const sampler = new RssSampler(relay.pid, 100);
    const before = sampler.sample();
    const clients = Array.from({ length: RESUMERS }, (_, i) => resume(i % 4 === 3 ? `${wsBase}/v1/ws` : `${channelUrl(wsBase, channel, "ws")}?since=0`));
    // Published while the replays are under way: each must come after the whole replay, once.
    for (let i = 1; i <= LIVE; i++) {
      const result = await request(`${channelUrl(relay.url, channel, "messages")}`, { method: "POST", body: body(MESSAGES - LIVE + i) }, 30_000);
      expect(result.status).toBe(201);
      expect((await request(`${relay.url}/healthz`, {}, 10_000)).status).toBe(200);
    }
    await withTimeout(Promise.all(clients.map((c) => c.done)), 120_000, "every resumer to reach the last live message");
    sampler.stop();
    console.log(
      `relay process tree RSS: ${(before / 2 ** 20).toFixed(0)} MB before, peak ${(sampler.peakTreeBytes / 2 ** 20).toFixed(0)} MB during ${RESUMERS} resumes of ${((MESSAGES * MESSAGE_CHARS) / 2 ** 20).toFixed(0)} MB`,
    );
    for (const [i, client] of clients.entries()) {
      expect(client.bad, `resumer ${i}: messages with the wrong data`).toEqual([]);
      expect(client.ids, `resumer ${i}`).toEqual(Array.from({ length: TOTAL }, (_, k) => k + 1));
      client.ws.close();
    }
    const info = await request(channelUrl(relay.url, channel), {}, 10_000);
    expect(info.body).toMatchObject({ lastId: String(TOTAL) });
  }, 180_000);

  it("history pages are bounded by size: at least one message each, and paging by the last id reads everything once", async () => {
    const seen: number[] = [];
    let since = 0;
    let pages = 0;
    for (;;) {
      const page = await request(`${channelUrl(relay.url, channel, "messages")}?since=${since}&limit=1000`, {}, 30_000);
      expect(page.status).toBe(200);
      const text = JSON.stringify(page.body.messages);
      expect(text.length).toBeLessThanOrEqual(ANSWER_MAX_CHARS + MESSAGE_CHARS + 200);
      expect(page.body.messages.length).toBeGreaterThan(0);
      for (const m of page.body.messages as Array<{ id: string }>) seen.push(Number(m.id));
      pages++;
      since = Number(page.body.messages.at(-1).id);
      if (String(since) === page.body.lastId) break;
    }
    expect(pages).toBeGreaterThan(1);
    expect(seen).toEqual(Array.from({ length: TOTAL }, (_, k) => k + 1));
  }, 60_000);

  it("long-poll answers are bounded by size; polling on from lastId reads everything once", async () => {
    const seen: number[] = [];
    let since = 0;
    while (since < TOTAL) {
      const answer = await request(`${channelUrl(relay.url, channel, "poll")}?since=${since}&timeout=0`, {}, 30_000);
      expect(answer.status).toBe(200);
      expect(JSON.stringify(answer.body.messages).length).toBeLessThanOrEqual(ANSWER_MAX_CHARS + MESSAGE_CHARS + 200);
      expect(answer.body.messages.length).toBeGreaterThan(0);
      for (const m of answer.body.messages as Array<{ id: string }>) seen.push(Number(m.id));
      since = Number(answer.body.lastId);
    }
    expect(seen).toEqual(Array.from({ length: TOTAL }, (_, k) => k + 1));
  }, 60_000);
});
