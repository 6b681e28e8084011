import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { channelUrl, request, uniqueChannel } from "../support/clients";
import { directUrl, type Relay, sleep, startRelay } from "../support/relay";

/**
 * SSE clients that reset their connection before or right around the response head: the runtime
 * never reads nor cancels such a stream, and the relay used to count it forever (subscribers,
 * presence, a connection slot of the address). A departed client must stop counting within
 * KEEPALIVE_SECONDS (API.md); these go straight to the Worker's listener (directUrl), because
 * wrangler's dev proxy in front of it keeps reading such a stream itself.
 */
const KEEPALIVE_SECONDS = 2;
const MAX_CONNECTIONS_PER_IP = 4;
/** Requests reset per route and per moment; more than the address's slots. */
const RESETS = 24;
/** A generous bound for the counts to come back to 0; the test asserts that they do, not how fast. */
const SETTLE_MS = 30_000;

let relay: Relay;
let url: string;

beforeAll(async () => {
  relay = await startRelay({ vars: { KEEPALIVE_SECONDS: String(KEEPALIVE_SECONDS), MAX_CONNECTIONS_PER_IP: String(MAX_CONNECTIONS_PER_IP) } });
  url = await directUrl(relay);
});

afterAll(async () => {
  await relay?.stop();
});

type Moment = "after the request" | "at the response head";

/**
 * Sends `GET path` on a raw connection and resets it (RST, no FIN) right after writing the request,
 * or as soon as the first bytes of the answer arrive. Resolves once the socket is closed.
 */
function resetRequest(path: string, moment: Moment): Promise<void> {
  return new Promise((done) => {
    const socket = connect(Number(new URL(url).port), "127.0.0.1", () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
      if (moment === "after the request") socket.resetAndDestroy();
    });
    socket.once("data", () => socket.resetAndDestroy());
    socket.on("error", () => {}).on("close", () => done());
  });
}

/**
 * What the channel still counts and lists of its SSE subscribers (its own streams and `/v1/events`
 * ones), polled until both are empty or SETTLE_MS passed. Starts after one KEEPALIVE_SECONDS, by
 * when the relay has long taken every reset request (none of them answers the client).
 */
async function sseLeft(channel: string): Promise<{ counted: number; listed: number }> {
  await sleep(KEEPALIVE_SECONDS * 1000);
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const counted = ((await request(channelUrl(url, channel))).body.subscribers as { sse: number }).sse;
    const listed = ((await request(channelUrl(url, channel, "presence"))).body.subscribers as unknown[]).length;
    if ((counted === 0 && listed === 0) || Date.now() > deadline) return { counted, listed };
    await sleep(250);
  }
}

/** Opens an SSE stream with fetch; resolves with its status once the head (and, when 200, the first chunk) arrived. */
async function openStream(path: string): Promise<{ status: number; close(): void }> {
  const controller = new AbortController();
  const response = await fetch(`${url}${path}`, { headers: { Accept: "text/event-stream" }, signal: controller.signal });
  if (response.status === 200) await response.body?.getReader().read();
  else await response.body?.cancel();
  return { status: response.status, close: () => controller.abort() };
}

/** Every slot of the address is free: MAX_CONNECTIONS_PER_IP streams open, one more is refused. Bounded retries while slots are given back. */
async function expectEverySlotFree(path: string): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const streams = [];
    for (let i = 0; i < MAX_CONNECTIONS_PER_IP; i++) streams.push(await openStream(path));
    const extra = await openStream(path);
    const statuses = streams.map((s) => s.status);
    for (const stream of [...streams, extra]) stream.close();
    if (statuses.every((status) => status === 200) || Date.now() > deadline) {
      expect(statuses).toEqual(Array(MAX_CONNECTIONS_PER_IP).fill(200));
      expect(extra.status).toBe(429);
      return;
    }
    await sleep(500);
  }
}

const routes: Array<[string, (channel: string) => string]> = [
  ["/v1/channels/{c}/events", (channel) => `/v1/channels/${channel}/events?presence=1`],
  ["/v1/events", (channel) => `/v1/events?channel=${channel}&channel=${channel}-other&presence=1`],
];

describe(`SSE clients that reset the connection (KEEPALIVE_SECONDS=${KEEPALIVE_SECONDS}, MAX_CONNECTIONS_PER_IP=${MAX_CONNECTIONS_PER_IP})`, () => {
  for (const [route, pathFor] of routes) {
    for (const moment of ["after the request", "at the response head"] as const) {
      it(`${route}, reset ${moment}: stops counting, leaves presence and gives back its connection slot`, async () => {
        const channel = uniqueChannel("departures");
        const path = pathFor(channel);
        // In waves of the address's slot count, so some are answered 200 (a stream) and not all 429.
        for (let wave = 0; wave < RESETS / MAX_CONNECTIONS_PER_IP; wave++) {
          await Promise.all(Array.from({ length: MAX_CONNECTIONS_PER_IP }, () => resetRequest(path, moment)));
        }
        expect(await sseLeft(channel)).toEqual({ counted: 0, listed: 0 });
        await expectEverySlotFree(path);
        expect(await sseLeft(channel)).toEqual({ counted: 0, listed: 0 });
      });
    }
  }
});
