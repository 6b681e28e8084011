import { describe, expect, it } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";
import { optionalCount, POLL_TIMEOUT_SECONDS } from "../../src/protocol/validate";
import { eventually, expectError, publishOk, randomChannel, range, relay } from "./helpers";

interface PollAnswer {
  messages: Envelope[];
  lastId: string;
  gap?: { after: string; oldest: string };
}

async function poll(channel: string, query: string): Promise<PollAnswer> {
  const res = await relay(`/v1/channels/${channel}/poll?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as PollAnswer;
}

async function waitingPollers(channel: string): Promise<number> {
  const info = (await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: { poll: number } };
  return info.subscribers.poll;
}

/** Starts a poll and resolves once the room holds it, with whether it has answered yet. */
async function heldPoll(channel: string, query: string): Promise<{ answer: Promise<PollAnswer>; answered: () => boolean }> {
  let settled = false;
  const answer = poll(channel, query).finally(() => {
    settled = true;
  });
  await eventually(async () => (await waitingPollers(channel)) === 1, "the poll to wait in the room");
  return { answer, answered: () => settled };
}

describe("long-poll", () => {
  it("answers at once with what came after since", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 5; i++) await publishOk(channel, `m${i}`);
    const answer = await poll(channel, "since=2&timeout=30");
    expect(answer.messages.map((m) => m.id)).toEqual(["3", "4", "5"]);
    expect(answer.messages[0]).toMatchObject({ type: "message", channel, data: "m3" });
    expect(answer.lastId).toBe("5");
  });

  it("holds the request until the next publish", async () => {
    const channel = randomChannel();
    await publishOk(channel, "old");
    const waiting = await heldPoll(channel, "since=1&timeout=30");
    expect(waiting.answered()).toBe(false);
    await publishOk(channel, "new");
    const answer = await waiting.answer;
    expect(answer.messages.map((m) => [m.id, m.data])).toEqual([["2", "new"]]);
    expect(answer.lastId).toBe("2");
  });

  it("without since waits for the next new message", async () => {
    const channel = randomChannel();
    await publishOk(channel, "before");
    const waiting = await heldPoll(channel, "timeout=30");
    expect(waiting.answered()).toBe(false);
    await publishOk(channel, "after");
    expect((await waiting.answer).messages.map((m) => m.data)).toEqual(["after"]);
  });

  it("wakes every waiting poller with one publish", async () => {
    const channel = randomChannel();
    const pollers = Array.from({ length: 25 }, () => poll(channel, "since=0&timeout=30"));
    const count = () => waitingPollers(channel);
    await eventually(async () => (await count()) === 25, "25 waiting pollers");
    await publishOk(channel, "wake");
    const answers = await Promise.all(pollers);
    expect(answers.every((a) => a.messages.length === 1 && a.messages[0]!.data === "wake")).toBe(true);
    await eventually(async () => (await count()) === 0, "pollers to leave");
  });

  it("answers empty on timeout, and timeout=0 answers at once", async () => {
    const channel = randomChannel();
    await publishOk(channel, "x");
    expect(await poll(channel, "since=1&timeout=1")).toEqual({ messages: [], lastId: "1" });
    expect(await poll(channel, "since=1&timeout=0")).toEqual({ messages: [], lastId: "1" });
    expect((await poll(channel, "since=0&timeout=0")).messages.map((m) => m.id)).toEqual(["1"]);
  });

  it("reports a gap when the missed messages are past retention", async () => {
    const channel = randomChannel();
    for (let i = 1; i <= 55; i++) await publishOk(channel, `m${i}`);
    const answer = await poll(channel, "since=2&timeout=5");
    expect(answer.gap).toEqual({ after: "2", oldest: "6" });
    expect(answer.messages.map((m) => m.id)).toEqual(range(6, 55));
  });

  it("refuses malformed since and timeout", async () => {
    const channel = randomChannel();
    for (const query of ["since=x", "since=-1", "timeout=-1", "timeout=abc", "timeout=1.5"]) {
      await expectError(await relay(`/v1/channels/${channel}/poll?${query}`), 400, "invalid_request");
    }
  });

  it("takes a huge timeout as the 60 s cap rather than refusing it, and holds the request", async () => {
    // The cap itself is optionalCount's (test/unit/validate.test.ts): 60 s cannot be waited for here.
    expect(optionalCount("timeout", "99999999999999999999", POLL_TIMEOUT_SECONDS)).toBe(60);
    const channel = randomChannel();
    const waiting = await heldPoll(channel, "since=0&timeout=99999999999999999999");
    expect(waiting.answered()).toBe(false);
    await publishOk(channel, "x");
    expect((await waiting.answer).messages).toHaveLength(1);
  });
});
