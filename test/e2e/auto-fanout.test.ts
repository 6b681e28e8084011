import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { channelUrl, closeAll, idRange, openSse, openWs, publishOk, request, type SseSubscriber, uniqueChannel, type WsSubscriber } from "../support/clients";
import { type Relay, sleep, startRelay } from "../support/relay";

/** A channel not in HOT_CHANNELS fans out by itself past FANOUT_AFTER subscribers, and back when they leave. */
const FANOUT_AFTER = 4;

let relay: Relay;
const clients: Array<WsSubscriber | SseSubscriber> = [];

beforeAll(async () => {
  // A departed SSE client stops counting within KEEPALIVE_SECONDS: short here.
  relay = await startRelay({ vars: { FANOUT_AFTER: String(FANOUT_AFTER), MAX_CONNECTIONS_PER_IP: "0", KEEPALIVE_SECONDS: "1" } });
});

afterAll(async () => {
  await closeAll(clients);
  await relay?.stop();
});

interface Info {
  subscribers: { ws: number; sse: number; poll: number };
  fanout?: { shards: number; following: number; pushes: number };
}

async function info(channel: string): Promise<Info> {
  const { status, body } = await request(channelUrl(relay.url, channel));
  expect(status).toBe(200);
  return body as Info;
}

describe("FANOUT_AFTER: a channel grows its own fan-out", () => {
  it("sends newcomers past the threshold to shards, delivers to all in order, and shrinks back when they leave", async () => {
    const channel = uniqueChannel("auto");
    const inRoom = await Promise.all(Array.from({ length: FANOUT_AFTER }, () => openWs(relay.url, channel)));
    clients.push(...inRoom);
    expect((await info(channel)).fanout).toBeUndefined();

    // Past the threshold: the room sends newcomers on to shards (and the Worker remembers that).
    const onShards = [
      ...(await Promise.all(Array.from({ length: 8 }, () => openWs(relay.url, channel)))),
      ...(await Promise.all(Array.from({ length: 4 }, () => openSse(relay.url, channel)))),
    ];
    clients.push(...onShards);
    const spread = await info(channel);
    expect(spread.subscribers).toEqual({ ws: 12, sse: 4, poll: 0 });
    expect(spread.fanout?.shards).toBeGreaterThan(1);
    expect(spread.fanout?.following).toBeGreaterThan(0);

    const acked = await Promise.all(Array.from({ length: 20 }, (_, i) => publishOk(relay.url, channel, `m${i}`)));
    expect(acked.sort((a, b) => Number(a) - Number(b))).toEqual(idRange(1, 20));
    for (const client of [...inRoom, ...onShards]) {
      await client.waitForId("20");
      expect(client.messages().map((m) => m.id)).toEqual(idRange(1, 20));
    }

    // Everyone on shards leaves; a push finds them empty and the room lets them go.
    await closeAll(onShards);
    await closeAll(inRoom.slice(1));
    let after = await info(channel);
    for (let tries = 0; after.fanout !== undefined && tries < 40; tries++) {
      await publishOk(relay.url, channel, "tick");
      await sleep(250);
      after = await info(channel);
    }
    expect(after).toMatchObject({ subscribers: { ws: 1, sse: 0, poll: 0 } });
    expect(after.fanout).toBeUndefined();
  });
});
