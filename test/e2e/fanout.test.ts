import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, type Envelope, idRange, openSse, openWs, publishOk, type SseEvent, type SseSubscriber, uniqueChannel, type WsSubscriber } from "../support/clients";
import { type Relay, startRelay } from "../support/wrangler";

const WS_SUBSCRIBERS = 200;
const SSE_SUBSCRIBERS = 200;
const MESSAGES = 100;

let relay: Relay;
const clients: Array<WsSubscriber | SseSubscriber> = [];

beforeAll(async () => {
  relay = await startRelay();
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
    await new Promise((resolve) => setTimeout(resolve, 300));

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
  }, 120_000);
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
    await new Promise((resolve) => setTimeout(resolve, 300));

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
