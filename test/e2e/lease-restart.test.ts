import { afterAll, describe, expect, it } from "vitest";
import { closeAll, openWs, uniqueChannel, type WsSubscriber } from "../support/clients";
import { type Relay, removeState, sleep, startRelay } from "../support/relay";

/**
 * A restart must not lock an address out: the connection slots of subscribers that died with the
 * relay (kill -9, a deploy) end within a bounded time, though no close handler ran for them.
 */
const MAX = 5;
/** The documented bound for a room's subscriber (10 s hand-over grace, rooms asked every 5 s), with slack for 2 busy cores. */
const BOUND_MS = 30_000;

let first: Relay | undefined;
let second: Relay | undefined;
const sockets: WsSubscriber[] = [];

afterAll(async () => {
  await closeAll(sockets);
  await first?.stop();
  await second?.stop();
  if (first) await removeState(first.persistTo);
});

describe(`MAX_CONNECTIONS_PER_IP=${MAX}, kill -9 with every slot taken, restart`, () => {
  it("the address connects again within the bound, and is still limited to 5", async () => {
    first = await startRelay({ vars: { MAX_CONNECTIONS_PER_IP: String(MAX) } });
    const channels = Array.from({ length: MAX }, (_, i) => uniqueChannel(`lease-${i}`));
    for (const channel of channels) sockets.push(await openWs(first.url, channel));
    await expect(openWs(first.url, uniqueChannel("lease-extra"))).rejects.toThrow(/429/);

    await first.kill9();
    second = await startRelay({ port: first.port, persistTo: first.persistTo, vars: { MAX_CONNECTIONS_PER_IP: String(MAX) } });
    const url = second.url;

    const deadline = Date.now() + BOUND_MS;
    let reconnected: WsSubscriber | undefined;
    let last = "";
    while (!reconnected) {
      try {
        reconnected = await openWs(url, channels[0]!);
      } catch (error) {
        last = String(error);
        if (Date.now() > deadline) throw new Error(`still refused ${BOUND_MS} ms after the restart: ${last}`);
        await sleep(500);
      }
    }
    sockets.push(reconnected);
    for (let i = 1; i < MAX; i++) sockets.push(await openWs(url, channels[i]!));
    await expect(openWs(url, uniqueChannel("lease-extra"))).rejects.toThrow(/429/);
  }, 120_000);
});
