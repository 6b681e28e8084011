import { afterEach } from "vitest";
import { RelayClient } from "../../src/client/client";
import type { RelayClientError } from "../../src/client/errors";
import type { RelayClientOptions, RelayMessage, StateChange } from "../../src/client/types";
import { FakeRelay, FakeTarget } from "./fake-relay";

export { mulberry32 } from "../support/prng";

/** Waits until `predicate` holds, checking every few ms; fails with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Tiny delays everywhere, so reconnect cycles take milliseconds. */
export const FAST: RelayClientOptions = {
  backoff: { initialDelay: 2, maxDelay: 10, factor: 2 },
  connectTimeout: 300,
  pingInterval: 0,
  publishTimeout: 1000,
  streamIdleTimeout: 2000,
  pollTimeout: 1000,
};

export interface Harness {
  relay: FakeRelay;
  client: RelayClient;
  window: FakeTarget;
  document: FakeTarget;
  states: StateChange[];
  errors: RelayClientError[];
}

/** A client wired to a fake relay, recording its state changes and errors. */
export function connect(options: RelayClientOptions = {}, relay = new FakeRelay()): Harness {
  const window = new FakeTarget();
  const document = new FakeTarget();
  const client = new RelayClient({ url: "http://relay.test", WebSocket: relay.WebSocket, fetch: relay.fetch, window, document, ...FAST, ...options });
  const states: StateChange[] = [];
  const errors: RelayClientError[] = [];
  client.on("state", (change) => states.push(change));
  client.on("error", (error) => errors.push(error));
  return { relay, client, window, document, states, errors };
}

/** A handler that records what it receives. */
export function recorder(): { received: RelayMessage[]; ids: () => number[]; handler: (message: RelayMessage) => void } {
  const received: RelayMessage[] = [];
  return { received, ids: () => received.map((m) => Number(m.id)), handler: (message) => received.push(message) };
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** A `start()` for a test file: connects a harness, and closes its client after each test. */
export function harnessPerTest(): (...args: Parameters<typeof connect>) => Harness {
  let open: RelayClient[] = [];
  afterEach(() => {
    for (const client of open) client.close();
    open = [];
  });
  return (...args) => {
    const harness = connect(...args);
    open.push(harness.client);
    return harness;
  };
}
