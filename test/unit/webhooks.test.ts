import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deliverWebhooks, postWebhook, retryDelaySeconds, type WebhookBatch } from "../../src/webhooks/delivery";
import { OccupancyLedger, type ShardOccupants, type WebhookEvent } from "../../src/webhooks/events";
import { OccupancyReporter } from "../../src/webhooks/occupancy-reporter";
import { signatureHeader, verifySignature } from "../../src/webhooks/signature";

const TARGET = { url: "https://app.example/hooks/relay", secret: "whsec_test" };

describe("Relay-Signature", () => {
  it("is t=<seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>, as any HMAC library computes it", async () => {
    const body = '{"events":[{"id":"e1"}]}';
    const header = await signatureHeader("whsec_test", body, 1763761234);
    const expected = createHmac("sha256", "whsec_test").update(`1763761234.${body}`).digest("hex");
    expect(header).toBe(`t=1763761234,v1=${expected}`);
  });

  it("verifies only the right secret, body and a recent time", async () => {
    const body = '{"events":[]}';
    const header = await signatureHeader("whsec_test", body, 1000);
    expect(await verifySignature("whsec_test", body, header, 1100)).toBe(true);
    expect(await verifySignature("other", body, header, 1100)).toBe(false);
    expect(await verifySignature("whsec_test", `${body} `, header, 1100)).toBe(false);
    expect(await verifySignature("whsec_test", body, header, 1000 + 301)).toBe(false);
    expect(await verifySignature("whsec_test", body, null, 1000)).toBe(false);
  });
});

describe("OccupancyLedger", () => {
  const types = (events: WebhookEvent[]) => events.map((e) => (e.member ? `${e.type} ${e.member}` : e.type));

  it("occupied on the first subscriber in, vacated on the last one out, whatever their names", () => {
    const ledger = new OccupancyLedger("news");
    expect(types(ledger.join({}, 1))).toEqual(["channel.occupied"]);
    expect(types(ledger.join({}, 2))).toEqual([]);
    expect(types(ledger.leave({}, 3))).toEqual([]);
    expect(types(ledger.leave({}, 4))).toEqual(["channel.vacated"]);
    expect(types(ledger.leave({}, 5))).toEqual([]);
  });

  it("a member is added once and removed once however many connections it holds", () => {
    const ledger = new OccupancyLedger("news");
    expect(types(ledger.join({ subject: "alice" }, 1))).toEqual(["channel.occupied", "member.added alice"]);
    expect(types(ledger.join({ subject: "alice" }, 2))).toEqual([]);
    expect(types(ledger.join({ subject: "bob" }, 3))).toEqual(["member.added bob"]);
    expect(types(ledger.leave({ subject: "alice" }, 4))).toEqual([]);
    expect(types(ledger.leave({ subject: "alice" }, 5))).toEqual(["member.removed alice"]);
    expect(types(ledger.leave({ subject: "bob" }, 6))).toEqual(["member.removed bob", "channel.vacated"]);
  });

  it("events carry an id, the channel and the time; a ledger rebuilt after hibernation announces nothing anew", () => {
    let n = 0;
    const ledger = OccupancyLedger.of("news", [{ subject: "alice" }, {}], () => `id-${++n}`);
    expect(ledger.total).toBe(2);
    expect(ledger.join({ subject: "alice" }, 7)).toEqual([]);
    expect(ledger.leave({ subject: "alice" }, 8)).toEqual([]);
    expect(ledger.leave({ subject: "alice" }, 9)).toEqual([
      { id: expect.stringMatching(/^id-/), type: "member.removed", channel: "news", member: "alice", ts: 9 },
    ]);
  });
});

describe("OccupancyLedger over a hot channel's shards", () => {
  const types = (events: WebhookEvent[]) => events.map((e) => (e.member ? `${e.type} ${e.member}` : e.type));

  it("counts the room's subscribers and every shard's as one channel", () => {
    const ledger = new OccupancyLedger("stadium");
    expect(types(ledger.setShard(0, [["alice", 1]], 1))).toEqual(["channel.occupied", "member.added alice"]);
    // Alice's second tab on another shard, Bob on the room, two anonymous subscribers on shard 1.
    expect(types(ledger.setShard(1, [["alice", 1]], 2))).toEqual([]);
    expect(types(ledger.join({ subject: "bob" }, 3))).toEqual(["member.added bob"]);
    expect(types(ledger.setShard(1, [["", 2]], 4))).toEqual([]);
    expect(ledger.total).toBe(5);
    expect(types(ledger.setShard(0, [["alice", 0]], 5))).toEqual([]);
    expect(types(ledger.setShard(1, [["alice", 0]], 6))).toEqual(["member.removed alice"]);
    expect(types(ledger.leave({ subject: "bob" }, 7))).toEqual(["member.removed bob"]);
    expect(types(ledger.setShard(1, [["", 0]], 8))).toEqual(["channel.vacated"]);
  });

  it("takes counts, not changes: a report that comes twice says nothing new", () => {
    const ledger = new OccupancyLedger("stadium");
    expect(
      types(
        ledger.setShard(
          2,
          [
            ["alice", 3],
            ["bob", 1],
          ],
          1,
        ),
      ),
    ).toEqual(["channel.occupied", "member.added alice", "member.added bob"]);
    expect(
      types(
        ledger.setShard(
          2,
          [
            ["alice", 3],
            ["bob", 1],
          ],
          2,
        ),
      ),
    ).toEqual([]);
    expect(ledger.total).toBe(4);
    expect(types(ledger.setShard(2, [["bob", 0]], 3))).toEqual(["member.removed bob"]);
    expect(ledger.connectionsOf("alice")).toBe(3);
  });

  it("a shard that is let go or started afresh takes its subscribers with it, in one report's order", () => {
    const ledger = new OccupancyLedger("stadium");
    ledger.join({ subject: "carol" }, 1);
    ledger.setShard(
      4,
      [
        ["alice", 2],
        ["", 1],
      ],
      2,
    );
    expect(types(ledger.dropShard(4, 3))).toEqual(["member.removed alice"]);
    expect(ledger.total).toBe(1);
    expect(types(ledger.dropShard(4, 4))).toEqual([]);
    ledger.setShard(5, [["dave", 1]], 5);
    ledger.leave({ subject: "carol" }, 6);
    expect(types(ledger.dropShard(5, 7))).toEqual(["member.removed dave", "channel.vacated"]);
  });

  it("a leave nobody joined for changes nothing (a room woken without the sockets it had)", () => {
    const ledger = new OccupancyLedger("stadium");
    ledger.setShard(0, [["alice", 1]], 1);
    expect(ledger.leave({ subject: "bob" }, 2)).toEqual([]);
    expect(ledger.total).toBe(1);
  });
});

describe("OccupancyReporter", () => {
  function reporterWith(held: Map<string, number>, answers: Array<"ok" | "fail"> = []) {
    const sent: ShardOccupants[] = [];
    const timers: Array<() => void> = [];
    let settle: (() => void) | undefined;
    const reporter = new OccupancyReporter({
      send: (occupants) => {
        sent.push(occupants);
        return answers.shift() === "fail" ? Promise.reject(new Error("room unreachable")) : new Promise<void>((resolve) => (settle = resolve));
      },
      connectionsOf: (subject) => held.get(subject) ?? 0,
      setTimer: (fn) => timers.push(fn),
    });
    return { reporter, sent, timers, answer: () => settle?.() };
  }
  const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

  it("sends one report at a time; changes meanwhile go in the next, counted as they are when it goes", async () => {
    const held = new Map([["alice", 1]]);
    const { reporter, sent, answer } = reporterWith(held);
    reporter.changed("alice");
    held.set("alice", 2);
    held.set("bob", 1);
    reporter.changed("alice");
    reporter.changed("bob");
    held.delete("bob");
    reporter.changed("bob");
    expect(sent).toEqual([[["alice", 1]]]);
    answer();
    await turn();
    expect(sent).toEqual([
      [["alice", 1]],
      [
        ["alice", 2],
        ["bob", 0],
      ],
    ]);
    answer();
    await turn();
    expect(reporter.idle).toBe(true);
  });

  it("sends a failed report again, later, as things are by then", async () => {
    const held = new Map([["alice", 1]]);
    const { reporter, sent, timers, answer } = reporterWith(held, ["fail"]);
    reporter.changed("alice");
    await turn();
    expect(reporter.idle).toBe(false);
    held.set("alice", 0);
    timers.shift()!();
    expect(sent).toEqual([[["alice", 1]], [["alice", 0]]]);
    answer();
    await turn();
    expect(reporter.idle).toBe(true);
  });
});

/** A queue batch as the runtime hands it to the consumer, recording what the consumer decided. */
function batchOf(events: WebhookEvent[], attempts = 1) {
  const decided: string[] = [];
  const messages = events.map((body, i) => ({
    id: `m${i}`,
    timestamp: new Date(),
    body,
    attempts,
    ack: () => decided.push(`ack ${body.id}`),
    retry: (options?: { delaySeconds?: number }) => decided.push(`retry ${body.id} after ${options?.delaySeconds}s`),
  }));
  const batch = {
    messages,
    ackAll: () => decided.push("ackAll"),
  } satisfies WebhookBatch;
  return { batch, decided };
}

const event = (id: string): WebhookEvent => ({ id, type: "channel.occupied", channel: "news", ts: 1 });

describe("webhook delivery", () => {
  it("POSTs the batch as one signed {events} body and acknowledges it on a 2xx", async () => {
    const seen: Array<{ body: string; signature: string | null; type: string | null }> = [];
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      const headers = new Headers(init.headers);
      seen.push({ body: String(init.body), signature: headers.get("Relay-Signature"), type: headers.get("Content-Type") });
      return new Response(null, { status: 204 });
    }) as typeof fetch;
    const { batch, decided } = batchOf([event("e1"), event("e2")]);
    await deliverWebhooks(batch, TARGET, fetchImpl);
    expect(decided).toEqual(["ackAll"]);
    expect(JSON.parse(seen[0]!.body)).toEqual({ events: [event("e1"), event("e2")] });
    expect(seen[0]!.type).toBe("application/json");
    const t = Number(/^t=(\d+),/.exec(seen[0]!.signature ?? "")?.[1]);
    expect(await verifySignature(TARGET.secret, seen[0]!.body, seen[0]!.signature, t)).toBe(true);
  });

  it("retries every event with backoff on a non-2xx answer or a network failure", async () => {
    for (const fetchImpl of [async () => new Response("busy", { status: 503 }), async () => Promise.reject(new Error("ECONNREFUSED"))]) {
      const { batch, decided } = batchOf([event("e1"), event("e2")], 3);
      await deliverWebhooks(batch, TARGET, fetchImpl as unknown as typeof fetch);
      expect(decided).toEqual(["retry e1 after 8s", "retry e2 after 8s"]);
    }
  });

  it("a timeout is a failure, not a hang", async () => {
    const hang = ((_url: string, init: RequestInit) =>
      new Promise((_resolve, reject) =>
        init.signal?.addEventListener("abort", () => reject(Object.assign(new Error("timeout"), { name: "TimeoutError" }))),
      )) as typeof fetch;
    // The short timeout starts when the POST does, as the real one: one made before signing could
    // fire before the fake fetch listens, which then waits forever.
    const outcome = await postWebhook(TARGET, [event("e1")], (url, init) => hang(url, { ...init, signal: AbortSignal.timeout(10) }));
    expect(outcome).toEqual({ delivered: false, why: "timed out" });
  });

  it("backs off 2, 4, 8 … seconds, at most 5 minutes", () => {
    expect([1, 2, 3, 4, 8, 9, 20].map(retryDelaySeconds)).toEqual([2, 4, 8, 16, 256, 300, 300]);
  });
});
