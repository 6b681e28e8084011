import { describe, expect, it } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";
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
    const waiting = poll(channel, "since=1&timeout=30");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await publishOk(channel, "new");
    const answer = await waiting;
    expect(answer.messages.map((m) => [m.id, m.data])).toEqual([["2", "new"]]);
    expect(answer.lastId).toBe("2");
  });

  it("without since waits for the next new message", async () => {
    const channel = randomChannel();
    await publishOk(channel, "before");
    const waiting = poll(channel, "timeout=30");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await publishOk(channel, "after");
    expect((await waiting).messages.map((m) => m.data)).toEqual(["after"]);
  });

  it("wakes every waiting poller with one publish", async () => {
    const channel = randomChannel();
    const pollers = Array.from({ length: 25 }, () => poll(channel, "since=0&timeout=30"));
    const count = async () => ((await (await relay(`/v1/channels/${channel}`)).json()) as { subscribers: { poll: number } }).subscribers.poll;
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

  it("caps a huge timeout at 60 s rather than refusing it", async () => {
    const channel = randomChannel();
    const waiting = poll(channel, "since=0&timeout=99999999999999999999");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await publishOk(channel, "x");
    expect((await waiting).messages).toHaveLength(1);
  });
});
