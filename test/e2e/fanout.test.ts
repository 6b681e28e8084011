import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  channelUrl,
  closeAll,
  type Envelope,
  idRange,
  openSse,
  openWs,
  publishOk,
  request,
  type SseEvent,
  type SseSubscriber,
  uniqueChannel,
  type WsSubscriber,
} from "../support/clients";
import { type Relay, sleep, startRelay } from "../support/relay";

const WS_SUBSCRIBERS = 200;
const SSE_SUBSCRIBERS = 200;
const MESSAGES = 100;

let relay: Relay;
const clients: Array<WsSubscriber | SseSubscriber> = [];

/** A departed SSE client must stop counting within KEEPALIVE_SECONDS; keep that short here. */
const KEEPALIVE_SECONDS = 2;

beforeAll(async () => {
  relay = await startRelay({ vars: { KEEPALIVE_SECONDS: String(KEEPALIVE_SECONDS) } });
});

afterAll(async () => {
  await closeAll(clients);
  await relay?.stop();
});

/** Opens `count` subscribers a few at a time, so 2 cores are not swamped by handshakes. */
async function openMany<T extends WsSubscriber | SseSubscriber>(count: number, open: () => Promise<T>, batch = 25): Promise<T[]> {
  const opened: T[] = [];
  for (let i = 0; i < count; i += batch) {
    const next = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open));
    clients.push(...next);
    opened.push(...next);
  }
  return opened;
}

function payload(i: number): string {
  return `fanout message ${i} ✓ ${"x".repeat(i % 7)}`;
}

describe("fan-out to many subscribers on one channel", () => {
  it(`delivers ${MESSAGES} messages to ${WS_SUBSCRIBERS} WS and ${SSE_SUBSCRIBERS} SSE subscribers in order, no loss, no duplicate`, async () => {
    const channel = uniqueChannel("fanout");
    const wsSubs = await openMany(WS_SUBSCRIBERS, () => openWs(relay.url, channel, { timeoutMs: 20_000 }));
    const sseSubs = await openMany(SSE_SUBSCRIBERS, () => openSse(relay.url, channel, { timeoutMs: 20_000 }));

    const ids: string[] = [];
    for (let i = 1; i <= MESSAGES; i++) ids.push(await publishOk(relay.url, channel, payload(i), { timeoutMs: 20_000 }));
    expect(ids).toEqual(idRange(1, MESSAGES));
    const last = String(MESSAGES);

    await Promise.all([...wsSubs.map((s) => s.waitForId(last, 30_000)), ...sseSubs.map((s) => s.waitForId(last, 30_000))]);
    // Anything duplicated or late would arrive right behind the last message.
    await sleep(300);

    const expected = idRange(1, MESSAGES).map((id) => ({ id, data: payload(Number(id)) }));
    wsSubs.forEach((sub, n) => {
      const got = sub.messages().map((m: Envelope) => ({ id: m.id, data: m.data }));
      expect(got, `WS subscriber #${n}`).toEqual(expected);
      for (const m of sub.messages()) expect(m).toMatchObject({ type: "message", channel, event: "message" });
    });
    sseSubs.forEach((sub, n) => {
      const got = sub.events.items.map((e: SseEvent) => ({ id: e.id, data: e.data }));
      expect(got, `SSE subscriber #${n}`).toEqual(expected);
    });

    const info = await request(channelUrl(relay.url, channel));
    expect(info.body).toMatchObject({ channel, lastId: last, oldestId: "1", subscribers: { ws: WS_SUBSCRIBERS, sse: SSE_SUBSCRIBERS } });

    // Everyone leaves; nobody is left behind in the room (how fast: see "departed subscribers").
    await closeAll([...wsSubs, ...sseSubs]);
    const { counts } = await waitForCounts(channel, { ws: 0, sse: 0 }, 20_000);
    expect(counts).toMatchObject({ ws: 0, sse: 0 });
  }, 120_000);

  it("concurrent publishers (HTTP and WS frames) still give every subscriber one gapless order", async () => {
    const channel = uniqueChannel("fanout-concurrent");
    const wsSubs = await openMany(20, () => openWs(relay.url, channel));
    const sseSubs = await openMany(20, () => openSse(relay.url, channel));
    const wsPublisher = await openWs(relay.url, channel);
    clients.push(wsPublisher);

    const httpPublishers = Array.from({ length: 4 }, (_, p) =>
      (async () => {
        const ids: number[] = [];
        for (let i = 0; i < 30; i++) ids.push(Number(await publishOk(relay.url, channel, `http${p}-${i}`)));
        return ids;
      })(),
    );
    // One socket's publishes, sent without waiting, are stored and acknowledged in the order sent.
    for (let i = 0; i < 30; i++) wsPublisher.send({ type: "publish", data: `ws-${i}`, ref: `w${i}` });
    const httpIds = await Promise.all(httpPublishers);
    const acksFrames = await wsPublisher.waitFor((all) => all.filter((f) => f.type === "ack").length >= 30, 15_000, "30 acks");
    const acks = acksFrames.filter((f) => f.type === "ack");
    expect(acks.map((a) => a.ref)).toEqual(idRange(0, 29).map((i) => `w${i}`));
    const wsIds = acks.map((a) => Number(a.id));

    const total = 4 * 30 + 30;
    for (const ids of [...httpIds, wsIds]) expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect([...httpIds.flat(), ...wsIds].sort((x, y) => x - y)).toEqual(idRange(1, total).map(Number));

    await Promise.all([...wsSubs, ...sseSubs, wsPublisher].map((s) => s.waitForId(String(total), 20_000)));
    await sleep(300);
    const reference = (await request(`${channelUrl(relay.url, channel, "messages")}?limit=1000`)).body.messages.map((m: Envelope) => [m.id, m.data]);
    expect(reference).toHaveLength(total);
    for (const sub of [...wsSubs, wsPublisher]) expect(sub.messages().map((m) => [m.id, m.data])).toEqual(reference);
    for (const sub of sseSubs) expect(sub.messages().map((m) => [m.id, m.data])).toEqual(reference);
    await closeAll([...wsSubs, ...sseSubs]);
  }, 60_000);
});

describe("channel isolation", () => {
  it("never delivers channel A's messages to channel B's subscribers (WS and SSE)", async () => {
    const a = uniqueChannel("iso-a");
    const b = uniqueChannel("iso-b");
    const [wsA, wsB, sseA, sseB] = await Promise.all([openWs(relay.url, a), openWs(relay.url, b), openSse(relay.url, a), openSse(relay.url, b)]);
    clients.push(wsA, wsB, sseA, sseB);

    // Interleave the two channels; each channel's ids count on their own.
    for (let i = 1; i <= 10; i++) {
      expect(await publishOk(relay.url, a, `A${i}`)).toBe(String(i));
      if (i % 2 === 0) expect(await publishOk(relay.url, b, `B${i / 2}`)).toBe(String(i / 2));
    }
    await Promise.all([wsA.waitForId("10"), sseA.waitForId("10"), wsB.waitForId("5"), sseB.waitForId("5")]);
    await sleep(300);

    const dataA = idRange(1, 10).map((i) => `A${i}`);
    const dataB = idRange(1, 5).map((i) => `B${i}`);
    expect(wsA.messages().map((m) => m.data)).toEqual(dataA);
    expect(sseA.messages().map((m) => m.data)).toEqual(dataA);
    expect(wsB.messages().map((m) => m.data)).toEqual(dataB);
    expect(sseB.messages().map((m) => m.data)).toEqual(dataB);
    expect(new Set(wsA.messages().map((m) => m.channel))).toEqual(new Set([a]));
    expect(new Set(wsB.messages().map((m) => m.channel))).toEqual(new Set([b]));
  });
});

describe("departed subscribers", () => {
  // API.md: "a departed client stops counting within KEEPALIVE_SECONDS". 1 s of slack for polling.
  const within = KEEPALIVE_SECONDS * 1000 + 1000;

  it(`a WS client that drops its connection stops counting within KEEPALIVE_SECONDS (${KEEPALIVE_SECONDS} s)`, async () => {
    const channel = uniqueChannel("depart-ws");
    const ws = await openWs(relay.url, channel);
    clients.push(ws);
    await waitForCounts(channel, { ws: 1 }, 5_000);
    ws.ws.terminate();
    const { counts, elapsed } = await waitForCounts(channel, { ws: 0 }, within);
    expect(counts, `after ${elapsed} ms`).toMatchObject({ ws: 0 });
  });

  it(`an SSE client that drops its connection stops counting within KEEPALIVE_SECONDS (${KEEPALIVE_SECONDS} s)`, async () => {
    const channel = uniqueChannel("depart-sse");
    const sse = await openSse(relay.url, channel);
    clients.push(sse);
    await waitForCounts(channel, { sse: 1 }, 5_000);
    sse.close();
    const { counts, elapsed } = await waitForCounts(channel, { sse: 0 }, within);
    expect(counts, `after ${elapsed} ms`).toMatchObject({ sse: 0 });
  });

  it("a HEAD request to /events leaves no subscriber behind", async () => {
    const channel = uniqueChannel("depart-head");
    const head = await fetch(channelUrl(relay.url, channel, "events"), { method: "HEAD", signal: AbortSignal.timeout(5_000) });
    await head.body?.cancel();
    const { counts, elapsed } = await waitForCounts(channel, { sse: 0 }, within);
    expect(counts, `after ${elapsed} ms`).toMatchObject({ sse: 0 });
  });
});

/** Polls channel info until its subscriber counts match `want` or `timeoutMs` passes; returns the last counts. */
async function waitForCounts(channel: string, want: Record<string, number>, timeoutMs: number): Promise<{ counts: Record<string, number>; elapsed: number }> {
  const start = Date.now();
  for (;;) {
    const counts = (await request(channelUrl(relay.url, channel))).body.subscribers as Record<string, number>;
    const elapsed = Date.now() - start;
    if (Object.entries(want).every(([kind, n]) => counts[kind] === n) || elapsed > timeoutMs) return { counts, elapsed };
    await sleep(100);
  }
}
