import { describe, expect, it } from "vitest";
import type { RelayMessage, Subscription } from "../../src/client/types";
import { FakeRelay } from "./fake-relay";
import { connect, mulberry32, range, sleep, waitFor } from "./support";

interface Tracked {
  channel: string;
  /** The id delivery must start after; `undefined` for a live subscription (starts where it was positioned). */
  since: number | undefined;
  subscription: Subscription;
  ids: number[];
}

const SEED = Number(process.env.RELAY_TEST_SEED ?? 20_260_101);
const DISCONNECTS = 1000;
const CHANNELS = ["alpha", "beta", "gamma"] as const;
const CLOSE_CODES = [1006, 1006, 1011, 1013, 1001, 1000, 1012];

describe("exactly-once, in-order delivery across forced disconnects", () => {
  it(`holds over ${DISCONNECTS}+ disconnects at random points, with transport switches (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const random = mulberry32(SEED);
    const relay = new FakeRelay(mulberry32(SEED + 1));
    const h = connect(
      {
        random: mulberry32(SEED + 2),
        backoff: { initialDelay: 1, maxDelay: 4, factor: 2 },
        connectTimeout: 40,
        fallbackAfter: 1,
        maxQueuedPublishes: 100_000,
      },
      relay,
    );
    const { client } = h;
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const tracked: Tracked[] = [];
    const track = (channel: string, since: number | undefined): void => {
      const entry: Tracked = { channel, since, ids: [], subscription: undefined as unknown as Subscription };
      entry.subscription = client.subscribe(channel, (message: RelayMessage) => entry.ids.push(Number(message.id)), since === undefined ? {} : { since });
      tracked.push(entry);
    };
    for (const channel of CHANNELS) track(channel, 0);
    track("alpha", undefined);

    const publishes: Array<Promise<unknown>> = [];
    const transports = new Set<string>();
    let disconnects = 0;
    let iterations = 0;
    while (disconnects < DISCONNECTS) {
      iterations++;
      if (client.transport) transports.add(client.transport);
      const roll = random();
      if (roll < 0.35) {
        const count = 1 + Math.floor(random() * 4);
        for (let i = 0; i < count; i++) relay.publish(pick(CHANNELS), `server ${iterations}.${i}`, pick(["message", "update"]));
      } else if (roll < 0.42) {
        publishes.push(client.publish(pick(CHANNELS), `client ${iterations}`));
      } else if (roll < 0.8) {
        if (relay.dropAll(pick(CLOSE_CODES)) > 0) disconnects++;
      } else if (roll < 0.84) {
        relay.wsBlocked = pick([false, false, "throw", "refuse"] as const);
      } else if (roll < 0.86) {
        relay.sseBuffered = !relay.sseBuffered && random() < 0.5;
      } else if (roll < 0.89) {
        relay.down = true;
        if (relay.dropAll(1006) > 0) disconnects++;
        await sleep(Math.floor(random() * 4));
        relay.down = false;
      } else if (roll < 0.93) {
        if (random() < 0.5) h.window.fire("online");
        else h.document.fire("visibilitychange");
      } else if (roll < 0.96) {
        // A subscription joining late, from a random point of a channel's history, or from now.
        const channel = pick(CHANNELS);
        const last = relay.channel(channel).lastSeq;
        track(channel, random() < 0.7 ? Math.floor(random() * (last + 1)) : undefined);
      } else if (roll < 0.97 && tracked.length > 6) {
        const gone = tracked.splice(4 + Math.floor(random() * (tracked.length - 4)), 1)[0]!;
        gone.subscription.unsubscribe();
      }
      await sleep(random() < 0.5 ? 0 : Math.floor(random() * 3));
      expect(iterations).toBeLessThan(50_000);
    }

    // Calm: everything reachable again; every subscription must catch up to every channel's end.
    relay.wsBlocked = false;
    relay.sseBuffered = false;
    relay.down = false;
    h.window.fire("online");
    for (const channel of CHANNELS) relay.publish(channel, "final");
    await Promise.all(publishes);
    await waitFor(() => tracked.every((t) => t.ids.at(-1) === relay.channel(t.channel).lastSeq), "every subscription to reach its channel's last id", 30_000);
    await sleep(50);

    for (const t of tracked) {
      const last = relay.channel(t.channel).lastSeq;
      if (t.since !== undefined) expect(t.ids, `${t.channel} since ${t.since}`).toEqual(range(t.since + 1, last));
      else expect(t.ids, `${t.channel} live`).toEqual(range(t.ids[0] ?? last + 1, last));
    }
    expect(disconnects).toBeGreaterThanOrEqual(DISCONNECTS);
    expect([...transports].sort()).toEqual(["poll", "sse", "ws"]);
    expect(h.errors).toEqual([]);
    client.close();
  });
});
