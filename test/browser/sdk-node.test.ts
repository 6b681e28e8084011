// The SDK as a package user gets it (`edge-relay/client`, the built bundle), run from Node against
// a real relay over each transport: the frames, cursors and streams it assumes are the relay's.

import { type GapEvent, RelayClient, type RelayMessage, type TransportName, type WebSocketConstructor } from "edge-relay/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { publishOk } from "../support/clients";
import { type Relay, removeState, startRelay, waitUntil } from "../support/relay";

let relay: Relay;
beforeAll(async () => {
  // A short history, so a gap is quick to make.
  relay = await startRelay({ vars: { HISTORY_LIMIT: "5" } });
});
afterAll(async () => {
  await relay?.stop();
  if (relay) await removeState(relay.persistTo);
});

const waitFor = (predicate: () => boolean, what: string, timeoutMs = 15_000) => waitUntil(predicate, what, timeoutMs);

async function publish(channel: string, data: string, event?: string): Promise<string> {
  return publishOk(relay.url, channel, data, { event });
}

describe("edge-relay/client against a real relay", () => {
  for (const transport of ["ws", "sse", "poll"] as TransportName[]) {
    it(`subscribes, resumes and publishes over ${transport}`, async () => {
      const run = `${transport}-${Date.now().toString(36)}`;
      const [a, b] = [`node.a.${run}`, `node.b.${run}`];
      await publish(a, "history 1");
      await publish(a, "history 2", "update");
      const client = new RelayClient({ url: relay.url, transport, WebSocket: WebSocket as unknown as WebSocketConstructor, pollTimeout: 5000 });
      const got: RelayMessage[] = [];
      const fromStart = client.subscribe(a, (m) => got.push(m), { since: 0 });
      const live = client.subscribe(b, (m) => got.push(m));
      await waitFor(() => client.state === "open" && live.lastId !== undefined, "open and positioned");
      expect(client.transport).toBe(transport);
      expect(live.lastId).toBe("0");
      await publish(b, "b live", "custom.name");
      const receipt = await client.publish(a, "from the sdk", { event: "sdk" });
      expect(receipt).toEqual({ channel: a, id: "3" });
      await waitFor(() => got.length === 4, "four messages");
      const seen = (channel: string) => got.filter((m) => m.channel === channel).map((m) => [m.id, m.event, m.data]);
      expect(seen(a)).toEqual([
        ["1", "message", "history 1"],
        ["2", "update", "history 2"],
        ["3", "sdk", "from the sdk"],
      ]);
      // Any event name arrives, on every transport (an EventSource would need to know it in advance).
      expect(seen(b)).toEqual([["1", "custom.name", "b live"]]);
      expect(fromStart.lastId).toBe("3");
      client.close();
    });
  }

  for (const transport of ["ws", "sse", "poll"] as TransportName[]) {
    it(`reports a gap once and goes on from the oldest retained message (${transport})`, async () => {
      const channel = `node.gap.${transport}.${Date.now().toString(36)}`;
      for (let i = 1; i <= 8; i++) await publish(channel, `m${i}`);
      const client = new RelayClient({ url: relay.url, transport, WebSocket: WebSocket as unknown as WebSocketConstructor, pollTimeout: 5000 });
      const gaps: GapEvent[] = [];
      client.on("gap", (gap) => gaps.push(gap));
      const ids: string[] = [];
      client.subscribe(channel, (m) => ids.push(m.id), { since: 1 });
      await waitFor(() => ids.length === 5, "the retained messages");
      expect(ids).toEqual(["4", "5", "6", "7", "8"]);
      expect(gaps).toEqual([{ channel, after: "1", oldest: "4" }]);
      client.close();
    });
  }
});
