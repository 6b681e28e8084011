import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  closeAll,
  type Frame,
  idRange,
  openSse,
  openWs,
  publishOk,
  type SseEvent,
  type SseSubscriber,
  uniqueChannel,
  type WsSubscriber,
} from "../support/clients";
import { type Relay, sleep, startRelay } from "../support/relay";

let relay: Relay;
/** A second relay that keeps only 5 messages, so gaps are easy to make. */
let smallRelay: Relay;
const clients: Array<WsSubscriber | SseSubscriber> = [];

beforeAll(async () => {
  [relay, smallRelay] = await Promise.all([startRelay(), startRelay({ vars: { HISTORY_LIMIT: "5" } })]);
});

afterAll(async () => {
  await closeAll(clients);
  await Promise.all([relay?.stop(), smallRelay?.stop()]);
});

/** Publishes `count` messages one after another (each awaiting its 201) while the test reconnects. */
function publishInBackground(url: string, channel: string, count: number, pauseEvery = 5): { done: Promise<string[]>; sent: () => number } {
  let sent = 0;
  const done = (async () => {
    const ids: string[] = [];
    for (let i = 1; i <= count; i++) {
      ids.push(await publishOk(url, channel, `m${i}`));
      sent = i;
      // A short breather now and then, so reconnects land both between and during publishes.
      if (i % pauseEvery === 0) await sleep(5);
    }
    return ids;
  })();
  return { done, sent: () => sent };
}

/** One reconnect: the last id the client had, and how many publishes were acknowledged around it. */
interface ReconnectWindow {
  lastSeen: number;
  sentBefore: number;
  sentAfter: number;
}

/**
 * The reconnects happened while the publisher was still running, and each had missed messages
 * to replay (the publisher had gone past the last id the client saw).
 */
function expectRacedThePublisher(windows: ReconnectWindow[], total: number): void {
  for (const w of windows) {
    expect(w.sentBefore, JSON.stringify(windows)).toBeLessThan(total);
    expect(w.sentBefore, JSON.stringify(windows)).toBeGreaterThan(w.lastSeen);
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

function idsOf(items: ReadonlyArray<{ id: string }>): string[] {
  return items.map((m) => m.id);
}

describe("WebSocket resume with ?since", () => {
  it("receives exactly the missed messages while publishes continue during each reconnect", async () => {
    const channel = uniqueChannel("resume-ws");
    const total = 150;
    let sub = await openWs(relay.url, channel);
    clients.push(sub);
    const publisher = publishInBackground(relay.url, channel, total);

    const segments: Array<Array<{ id: string; data: string }>> = [];
    const windows: ReconnectWindow[] = [];
    for (let cycle = 1; cycle <= 5; cycle++) {
      // Let some messages arrive, then drop the socket abruptly and keep only what was seen.
      await sub.waitFor((frames) => frames.filter((f) => f.type === "message").length >= 8 || publisher.sent() >= total, 10_000, "some messages");
      sub.ws.removeAllListeners("message");
      const seen = sub.messages().map(({ id, data }) => ({ id, data }));
      sub.ws.terminate();
      segments.push(seen);
      const lastId = segments.flat().at(-1)?.id ?? "0";

      // Stay away until the publisher has moved on, so there is something to miss.
      await waitUntil(() => publisher.sent() >= Number(lastId) + 2, 10_000, "publishes while disconnected");
      const sentBefore = publisher.sent();
      sub = await openWs(relay.url, channel, { since: lastId });
      clients.push(sub);
      windows.push({ lastSeen: Number(lastId), sentBefore, sentAfter: publisher.sent() });
      const greeting = sub.frames.items[0];
      expect(greeting).toMatchObject({ type: "subscribed", channel });
    }

    const ids = await publisher.done;
    expect(ids).toEqual(idRange(1, total));
    await sub.waitForId(String(total), 15_000);
    await sleep(200);
    segments.push(sub.messages().map(({ id, data }) => ({ id, data })));

    const all = segments.flat();
    expect(idsOf(all)).toEqual(idRange(1, total));
    expect(all.map((m) => m.data)).toEqual(idRange(1, total).map((i) => `m${i}`));
    // No gap frame: everything missed was still retained.
    expect(sub.frames.items.some((f) => f.type === "gap")).toBe(false);
    expectRacedThePublisher(windows, total);
  }, 60_000);
});

describe("SSE resume", () => {
  it("the eventsource client's own reconnect (Last-Event-ID) loses and repeats nothing under concurrent publishes", async () => {
    const channel = uniqueChannel("resume-sse-auto");
    const total = 120;
    const sub = await openSse(relay.url, channel, { retryMs: 100 });
    clients.push(sub);
    const publisher = publishInBackground(relay.url, channel, total);
    const windows: Array<{ sentBefore: number; sentAfter: number }> = [];

    for (let cycle = 1; cycle <= 4; cycle++) {
      const before = sub.messages().length;
      await sub.waitFor((events) => events.length >= before + 5 || publisher.sent() >= total, 10_000, "some events");
      // End the response as a server or proxy would; the client must reconnect by itself.
      const sentBefore = publisher.sent();
      sub.cut();
      await sub.waitForOpens(cycle + 1, 10_000);
      windows.push({ sentBefore, sentAfter: publisher.sent() });
    }

    await publisher.done;
    await sub.waitForId(String(total), 15_000);
    await sleep(200);
    expect(idsOf(sub.messages())).toEqual(idRange(1, total));
    expect(sub.messages().map((e) => e.data)).toEqual(idRange(1, total).map((i) => `m${i}`));
    // Every reconnect carried the last id the client had seen.
    const resumed = sub.requests.slice(1);
    expect(resumed.length).toBeGreaterThanOrEqual(4);
    for (const req of resumed) expect(req.lastEventId).toMatch(/^[1-9][0-9]*$/);
    expect(
      windows.every((w) => w.sentBefore < total),
      JSON.stringify(windows),
    ).toBe(true);
    expect(
      windows.some((w) => w.sentAfter > w.sentBefore),
      JSON.stringify(windows),
    ).toBe(true);
  }, 60_000);

  for (const how of ["Last-Event-ID", "since"] as const) {
    it(`a new stream opened with ${how} continues exactly where the old one stopped, under concurrent publishes`, async () => {
      const channel = uniqueChannel(`resume-sse-${how === "since" ? "since" : "leid"}`);
      const total = 120;
      let sub = await openSse(relay.url, channel);
      clients.push(sub);
      const publisher = publishInBackground(relay.url, channel, total);

      const segments: SseEvent[][] = [];
      const windows: ReconnectWindow[] = [];
      for (let cycle = 1; cycle <= 4; cycle++) {
        const current = sub;
        await current.waitFor((events) => events.length >= 8 || publisher.sent() >= total, 10_000, "some events");
        const seen = [...current.messages()];
        current.close();
        segments.push(seen);
        const lastId = segments.flat().at(-1)?.id ?? "0";
        await waitUntil(() => publisher.sent() >= Number(lastId) + 2, 10_000, "publishes while disconnected");
        const sentBefore = publisher.sent();
        sub = await openSse(relay.url, channel, how === "since" ? { since: lastId } : { lastEventId: lastId });
        clients.push(sub);
        windows.push({ lastSeen: Number(lastId), sentBefore, sentAfter: publisher.sent() });
        expect(sub.requests[0]?.lastEventId ?? null).toBe(how === "since" ? null : lastId);
      }

      await publisher.done;
      await sub.waitForId(String(total), 15_000);
      await sleep(200);
      segments.push([...sub.messages()]);
      const all = segments.flat();
      expect(idsOf(all)).toEqual(idRange(1, total));
      expect(all.map((e) => e.data)).toEqual(idRange(1, total).map((i) => `m${i}`));
      expectRacedThePublisher(windows, total);
    }, 60_000);
  }

  it("Last-Event-ID wins over since (a browser reconnects with its original URL)", async () => {
    const channel = uniqueChannel("resume-sse-both");
    for (let i = 1; i <= 6; i++) await publishOk(relay.url, channel, `m${i}`);
    const sub = await openSse(relay.url, channel, { since: "1", lastEventId: "4" });
    clients.push(sub);
    await sub.waitForId("6");
    await sleep(200);
    expect(idsOf(sub.messages())).toEqual(["5", "6"]);
  });
});

describe("gap notice when the missed messages are no longer retained (HISTORY_LIMIT 5)", () => {
  let channel: string;

  beforeAll(async () => {
    channel = uniqueChannel("gap");
    for (let i = 1; i <= 20; i++) await publishOk(smallRelay.url, channel, `g${i}`);
  });

  it("WS since=2: gap {after:2, oldest:16}, then 16..20, then live", async () => {
    const sub = await openWs(smallRelay.url, channel, { since: "2" });
    clients.push(sub);
    await sub.waitForId("20");
    await sleep(200);
    const frames = sub.frames.items;
    expect(frames[0]).toMatchObject({ type: "subscribed", channel, lastId: "20" });
    expect(frames[1]).toMatchObject({ type: "gap", channel, after: "2", oldest: "16" });
    const rest = frames.slice(2);
    expect(rest.every((f: Frame) => f.type === "message")).toBe(true);
    expect(idsOf(sub.messages())).toEqual(idRange(16, 20));
    expect(sub.messages().map((m) => m.data)).toEqual(idRange(16, 20).map((i) => `g${i}`));
  });

  it("SSE since=2: event relay.gap, then 16..20", async () => {
    const sub = await openSse(smallRelay.url, channel, { since: "2" });
    clients.push(sub);
    await sub.waitForId("20");
    await sleep(200);
    const [gap, ...rest] = sub.events.items;
    expect(gap?.event).toBe("relay.gap");
    expect(JSON.parse(gap?.data ?? "null")).toMatchObject({ channel, after: "2", oldest: "16" });
    expect(rest.map((e) => [e.event, e.id, e.data])).toEqual(idRange(16, 20).map((i) => ["message", i, `g${i}`]));
  });

  it("SSE Last-Event-ID: 2 gets the same gap notice", async () => {
    const sub = await openSse(smallRelay.url, channel, { lastEventId: "2" });
    clients.push(sub);
    await sub.waitForId("20");
    const [gap, ...rest] = sub.events.items;
    expect(gap?.event).toBe("relay.gap");
    expect(JSON.parse(gap?.data ?? "null")).toMatchObject({ channel, after: "2", oldest: "16" });
    expect(idsOf(rest)).toEqual(idRange(16, 20));
  });

  it("since=0 on a pruned channel is a gap too; since=15 (nothing missing) is not", async () => {
    const [fromZero, fromFifteen] = await Promise.all([openWs(smallRelay.url, channel, { since: "0" }), openWs(smallRelay.url, channel, { since: "15" })]);
    clients.push(fromZero, fromFifteen);
    await Promise.all([fromZero.waitForId("20"), fromFifteen.waitForId("20")]);
    expect(fromZero.frames.items[1]).toMatchObject({ type: "gap", channel, after: "0", oldest: "16" });
    expect(fromFifteen.frames.items.some((f) => f.type === "gap")).toBe(false);
    expect(idsOf(fromFifteen.messages())).toEqual(idRange(16, 20));
  });

  it("after the gap the subscription continues live", async () => {
    const [ws, sse] = await Promise.all([openWs(smallRelay.url, channel, { since: "2" }), openSse(smallRelay.url, channel, { since: "2" })]);
    clients.push(ws, sse);
    await Promise.all([ws.waitForId("20"), sse.waitForId("20")]);
    const id = await publishOk(smallRelay.url, channel, "live");
    await Promise.all([ws.waitForId(id), sse.waitForId(id)]);
    expect(ws.messages().at(-1)).toMatchObject({ data: "live" });
    expect(sse.messages().at(-1)).toMatchObject({ data: "live" });
    // The channel was filled in beforeAll; later tests here may only add after it.
    expect(Number(id)).toBeGreaterThan(20);
  });
});
