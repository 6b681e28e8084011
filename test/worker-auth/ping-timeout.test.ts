import { describe, expect, it } from "vitest";
import { CloseCode } from "../../src/protocol/close-codes";
import { eventually, mint, randomChannel, send, Ws } from "./auth-helpers";

/** The worker-auth project's PING_TIMEOUT_SECONDS. */
const PING_TIMEOUT_MS = 2000;
const PING = '{"type":"ping"}';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function presentIds(channel: string, token: string): Promise<string[]> {
  const res = await send(`/v1/channels/${channel}/presence`, token);
  return ((await res.json()) as { subscribers: Array<{ id: string }> }).subscribers.map((s) => s.id).sort();
}

/** A client that pinged once and then vanished without a close is closed, and leaves presence. */
describe("a WebSocket client that pinged and fell silent (PING_TIMEOUT_SECONDS=2)", () => {
  it("channel socket: closed with 1001 and announced as left; a socket that never pings and one that keeps pinging stay", async () => {
    const channel = randomChannel("ping");
    const token = (sub: string) => mint({ subscribe: [channel] }, { sub });
    const watcher = await Ws.connect(channel, await token("watcher"), { query: "presence=1" });
    const silent = await Ws.connect(channel, await token("silent"));
    const pinging = await Ws.connect(channel, await token("pinging"));
    const gone = await Ws.connect(channel, await token("gone"));
    gone.send(PING);
    await eventually(() => gone.frames.some((f) => f.type === "pong"), "the pong");

    // The pinging socket pings four times per period until the vanished one is closed.
    let pings = 0;
    while (gone.closed === undefined) {
      pinging.send(PING);
      pings++;
      if (pings > 4 * 3) throw new Error("the silent socket was not closed within 3 periods");
      await sleep(PING_TIMEOUT_MS / 4);
    }
    expect(gone.closed).toEqual({ code: CloseCode.GoingAway, reason: "no ping for 2 s" });
    await watcher.waitFor((f) => f.type === "leave" && (f.subscriber as { id: string }).id === "gone", "gone's leave");
    expect(await presentIds(channel, await token("reader"))).toEqual(["pinging", "silent", "watcher"]);
    expect([silent.closed, pinging.closed, watcher.closed]).toEqual([undefined, undefined, undefined]);
    for (const ws of [watcher, silent, pinging]) ws.close();
  }, 20_000);

  it("/v1/ws: the session is closed with 1001 and its subscriptions leave presence", async () => {
    const channel = randomChannel("ping-mux");
    const watcher = await Ws.connect(channel, await mint({ subscribe: [channel] }, { sub: "watcher" }), { query: "presence=1" });
    const gone = await Ws.open("/v1/ws", await mint({ subscribe: [channel] }, { sub: "gone" }));
    await gone.request({ type: "subscribe", channel }, (f) => f.type === "subscribed", "subscribed");
    const quiet = await Ws.open("/v1/ws", await mint({ subscribe: [channel] }, { sub: "quiet" }));
    await quiet.request({ type: "subscribe", channel }, (f) => f.type === "subscribed", "subscribed");
    await gone.request(PING, (f) => f.type === "pong", "the pong");

    expect(await gone.waitClosed("the silent session's close")).toEqual({ code: CloseCode.GoingAway, reason: "no ping for 2 s" });
    await watcher.waitFor((f) => f.type === "leave" && (f.subscriber as { id: string }).id === "gone", "gone's leave");
    expect(await presentIds(channel, await mint({ subscribe: [channel] }))).toEqual(["quiet", "watcher"]);
    expect(quiet.closed).toBeUndefined();
    quiet.close();
    watcher.close();
  }, 20_000);
});
