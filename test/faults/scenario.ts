import { expect } from "vitest";
import { channelUrl, type Envelope, history, request } from "../support/clients";
import { sleep } from "../support/relay";
import { type DeliveryChecker, type ScenarioReport, sample, storedTwice } from "./checker";
import type { FaultClient, FaultPublisher } from "./fleet";

/**
 * Waits, polling every 250 ms, until every publisher is done with nothing outstanding and every
 * subscriber has every acknowledged message; false (not a throw) after `timeoutMs`, so the
 * scenario still reports what it found.
 */
export async function converge(checker: DeliveryChecker, publishers: readonly FaultPublisher[], timeoutMs: number): Promise<boolean> {
  let publishing = true;
  void Promise.all(publishers.map((publisher) => publisher.done)).then(() => (publishing = false));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!publishing && checker.missing() === 0) return true;
    await sleep(250);
  }
  return false;
}

/** A channel's whole retained history, page by page (`?since=…&limit=1000`); bounded by `maxPages`. */
export async function fullHistory(url: string, channel: string, maxPages = 100): Promise<Envelope[]> {
  const messages: Envelope[] = [];
  let since = 0;
  for (let page = 0; page < maxPages; page++) {
    const { messages: batch, lastId } = await history(url, channel, since, 1000);
    messages.push(...batch);
    if (batch.length === 0 || batch.at(-1)!.id === lastId) return messages;
    since = Number(batch.at(-1)!.id);
  }
  throw new Error(`history of ${channel} has more than ${maxPages} pages`);
}

/** What the stored history says about a scenario's publishes. */
export interface HistoryCheck {
  /** Payloads stored under more than one id (one publish stored twice), over all channels. */
  storedTwice: Array<{ channel: string; payload: string; ids: string[] }>;
  /** Acknowledged messages history does not hold under their id with their payload. */
  notStored: Array<{ channel: string; id: number; payload: string; stored: string | undefined }>;
  /** Every stored payload, with the ids it is stored under. */
  payloads: Map<string, string[]>;
}

/** Reads each channel's history and compares it with what the checker saw acknowledged. */
export async function checkHistory(url: string, channels: readonly string[], checker: DeliveryChecker): Promise<HistoryCheck> {
  const result: HistoryCheck = { storedTwice: [], notStored: [], payloads: new Map() };
  const stored = new Map<string, Map<number, string>>();
  for (const channel of channels) {
    const messages = await fullHistory(url, channel);
    stored.set(channel, new Map(messages.map((message) => [Number(message.id), message.data])));
    for (const twice of storedTwice(messages)) result.storedTwice.push({ channel, ...twice });
    for (const { id, data } of messages) result.payloads.set(data, [...(result.payloads.get(data) ?? []), id]);
  }
  for (const { channel, id, payload } of checker.acknowledged()) {
    const data = stored.get(channel)?.get(id);
    if (data !== payload) result.notStored.push({ channel, id, payload, stored: data });
  }
  return result;
}

/** Whether `payload` is one of `publisher`'s (`<name>:<seq>`; "sdk-pub:ws:3" is not sdk-pub's). */
function isPayloadOf(payload: string, publisher: string): boolean {
  return payload.startsWith(`${publisher}:`) && /^\d+$/.test(payload.slice(publisher.length + 1));
}

/** The payloads `publisher` names among those stored twice. */
export function storedTwiceBy(check: HistoryCheck, publisher: string): HistoryCheck["storedTwice"] {
  return check.storedTwice.filter(({ payload }) => isPayloadOf(payload, publisher));
}

/** Soft assertions of a clean run, so one failing counter does not hide the others. */
export function expectClean(report: ScenarioReport): void {
  expect.soft(report.lost.length, `lost: ${sample(report.lost)}`).toBe(0);
  expect.soft(report.duplicated.length, `duplicated: ${sample(report.duplicated)}`).toBe(0);
  expect.soft(report.outOfOrder.length, `out of order: ${sample(report.outOfOrder)}`).toBe(0);
  expect.soft(report.mismatched.length, `payload differs from the acked one: ${sample(report.mismatched)}`).toBe(0);
  expect.soft(report.ackConflicts, "two payloads acknowledged under one id").toEqual([]);
  expect.soft(report.gaps.length, `announced gaps: ${sample(report.gaps)}`).toBe(0);
}

/** Soft assertions that every publisher finished: nothing unacknowledged, nothing refused. */
export function expectPublishersDone(publishers: readonly FaultPublisher[]): void {
  for (const publisher of publishers) {
    expect.soft(publisher.outstanding(), `${publisher.name}: publishes never acknowledged`).toBe(0);
    expect.soft(publisher.errors, `${publisher.name}: refused publishes`).toEqual([]);
  }
}

/**
 * Soft assertions that history holds every acknowledged publish under its id, and each publish
 * once: first for each publisher in `separately` (so its own failure is named), then for all.
 */
export function expectStoredOnce(check: HistoryCheck, separately: readonly string[] = []): void {
  const show = (entries: readonly object[]): string => JSON.stringify(entries.slice(0, 3));
  expect.soft(check.notStored.length, `acknowledged but not in history under its id, e.g. ${show(check.notStored)}`).toBe(0);
  for (const publisher of separately) {
    const twice = storedTwiceBy(check, publisher);
    expect.soft(twice.length, `${publisher}'s publishes stored more than once, e.g. ${show(twice)}`).toBe(0);
  }
  expect.soft(check.storedTwice.length, `publishes stored more than once, e.g. ${show(check.storedTwice)}`).toBe(0);
}

/**
 * Per publisher, how many of its publishes were stored more than once, and how many it was told
 * had failed although history holds them: one line each, for the scenario's log.
 */
export function describeStorage(check: HistoryCheck, publishers: readonly FaultPublisher[]): string {
  return publishers
    .map((publisher) => {
      const twice = storedTwiceBy(check, publisher.name);
      const failedButStored = publisher.failed.filter((payload) => check.payloads.has(payload));
      return `  ${publisher.name}: issued=${publisher.issued()} storedTwice=${twice.length} failed=${publisher.failed.length} failedButStored=${failedButStored.length}${
        twice.length ? ` e.g. ${JSON.stringify(twice.slice(0, 2))}` : ""
      }`;
    })
    .join("\n");
}

/** One line per client: how often it (re)connected, and its first errors. */
export function describeClients(clients: readonly FaultClient[]): string {
  return clients
    .map(
      (client) =>
        `  ${client.name}: connects=${client.connects()} errors=${client.errors.length}${client.errors.length ? ` (${client.errors.slice(0, 2).join("; ")})` : ""}`,
    )
    .join("\n");
}

/** A room's subscriber counts (`GET /v1/channels/{c}`): `{ ws, sse, poll }`. */
export type SubscriberCounts = Record<"ws" | "sse" | "poll", number>;

/**
 * Once every client has left: polls each channel's info until no WebSocket or SSE subscriber is
 * counted, or `timeoutMs` passes (API.md: a departed SSE client is forgotten within
 * KEEPALIVE_SECONDS); resolves with the last counts seen, by channel. Long-polls are left out: one
 * a client gave up on is still held until its own timeout (the SDK asks for 25 s).
 */
export async function countsAfterLeaving(url: string, channels: readonly string[], timeoutMs: number): Promise<Record<string, SubscriberCounts>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts: Record<string, SubscriberCounts> = {};
    for (const channel of channels) counts[channel] = (await request(channelUrl(url, channel))).body.subscribers as SubscriberCounts;
    const remaining = Object.values(counts).reduce((sum, { ws, sse }) => sum + ws + sse, 0);
    if (remaining === 0 || Date.now() > deadline) return counts;
    await sleep(500);
  }
}

/** Soft assertions that no channel still counts a WebSocket or SSE subscriber. */
export function expectNobodyLeft(counts: Record<string, SubscriberCounts>): void {
  for (const [channel, { ws, sse }] of Object.entries(counts)) {
    expect.soft({ ws, sse }, `subscribers still counted on ${channel} after every client left`).toEqual({ ws: 0, sse: 0 });
  }
}

/** Stops every client, bounded; a client that hangs is left behind rather than hanging the suite. */
export async function stopAll(clients: readonly FaultClient[]): Promise<void> {
  await Promise.race([Promise.allSettled(clients.map((client) => client.stop())), sleep(15_000)]);
}
