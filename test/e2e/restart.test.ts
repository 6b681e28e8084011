import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAll, history, idRange, openSse, publish, publishOk, request, type SseSubscriber, uniqueChannel } from "../support/clients";
import { type Relay, sleep, startRelay, waitForPortFree } from "../support/relay";

/**
 * One story in steps that share state: messages are published, the relay is killed with
 * SIGKILL (no graceful shutdown), and a new relay starts on the same port and state directory.
 */
let first: Relay;
let second: Relay | undefined;
let sse: SseSubscriber | undefined;

const channel = uniqueChannel("restart");
const idemChannel = uniqueChannel("restart-idem");
const N = 30;
/** Every publish the first relay acknowledged, by id. */
const acked = new Map<string, string>();
let idemFirst: { id: string; ts: number };
let lastSeenBeforeKill = "0";

beforeAll(async () => {
  first = await startRelay();
});

afterAll(async () => {
  await closeAll([sse]);
  await Promise.all([first?.stop(), second?.stop()]);
});

describe("kill -9 and restart on the same state", () => {
  it("publishes, is subscribed, then dies with publishes in flight", async () => {
    // retry rewritten to 200 ms (the relay says 3000) so the reconnect loop is quick.
    sse = await openSse(first.url, channel, { retryMs: 200 });
    for (let i = 1; i <= N; i++) acked.set(await publishOk(first.url, channel, `r${i}`), `r${i}`);
    expect([...acked.keys()]).toEqual(idRange(1, N));

    const idem = await publish(first.url, idemChannel, "only once", { headers: { "Idempotency-Key": "key-before-crash" } });
    expect(idem.status).toBe(201);
    idemFirst = idem.body;

    await sse.waitForId(String(N), 15_000);

    // Keep publishing while the process group is killed: whatever was acknowledged must survive.
    let stop = false;
    const inFlight = (async () => {
      for (let i = N + 1; !stop; i++) {
        try {
          const result = await publish(first.url, channel, `r${i}`, { timeoutMs: 5_000 });
          if (result.status === 201) acked.set(result.body.id, `r${i}`);
        } catch {
          return; // Connection refused or reset: the relay is gone.
        }
      }
    })();
    await waitUntil(() => acked.size >= N + 10, 10_000, "10 more acknowledged publishes");
    await first.kill9();
    stop = true;
    await inFlight;
    lastSeenBeforeKill = sse.messages().at(-1)?.id ?? "0";
    expect(Number(lastSeenBeforeKill)).toBeGreaterThanOrEqual(N);
  });

  it("a new relay on the same port and --persist-to still holds every acknowledged message", async () => {
    await waitForPortFree(first.port);
    second = await startRelay({ port: first.port, persistTo: first.persistTo });
    const page = await history(second.url, channel);
    const ids = page.messages.map((m) => m.id);
    const maxAcked = Math.max(...[...acked.keys()].map(Number));
    // Consecutive from 1; at least up to the last acknowledged id (an unacknowledged one may also have landed).
    expect(ids).toEqual(idRange(1, ids.length));
    expect(ids.length).toBeGreaterThanOrEqual(maxAcked);
    const stored = new Map(page.messages.map((m) => [m.id, m.data]));
    for (const [id, data] of acked) expect(stored.get(id), `acknowledged message ${id}`).toBe(data);
    expect(page.lastId).toBe(String(ids.length));
  });

  it("the next publish gets the next id, never a reused one", async () => {
    const relay = second!;
    const before = await history(relay.url, channel);
    const next = await publishOk(relay.url, channel, "after restart");
    expect(next).toBe(String(Number(before.lastId) + 1));
    const info = await request(`${relay.url}/v1/channels/${channel}`);
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ channel, lastId: next });
  });

  it("the SSE client connected before the kill resumes by itself: nothing lost, nothing doubled", async () => {
    const relay = second!;
    const client = sse!;
    for (let i = 1; i <= 5; i++) await publishOk(relay.url, channel, `after restart ${i}`);
    const page = await history(relay.url, channel);
    await client.waitForId(page.lastId, 30_000);
    await sleep(300);

    const got = client.messages();
    expect(got.map((e) => e.id)).toEqual(idRange(1, Number(page.lastId)));
    // What the client saw under each id is what the relay kept under it (no id was reused).
    expect(got.map((e) => e.data)).toEqual(page.messages.map((m) => m.data));
    // It reconnected on its own, resuming from the last id it had.
    const resumed = client.requests.filter((r) => r.status === 200).slice(1);
    expect(resumed[0]?.lastEventId).toBe(lastSeenBeforeKill);
  });

  it("an idempotency key from before the crash is still honoured", async () => {
    const relay = second!;
    const again = await publish(relay.url, idemChannel, "only once", { headers: { "Idempotency-Key": "key-before-crash" } });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ id: idemFirst.id, ts: idemFirst.ts });
    const page = await history(relay.url, idemChannel);
    expect(page.messages.map((m) => m.data)).toEqual(["only once"]);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
