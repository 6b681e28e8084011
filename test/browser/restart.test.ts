// The SDK in the demo page keeps exactly-once, in-order delivery while the relay under it is
// killed (SIGKILL to its process group) and started again on the same port and state, twice.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishSurely } from "../support/clients";
import { type Relay, ROOT, removeState, sleep, startRelay, waitUntil } from "../support/relay";
import { type Browser, openPage, startRelayAndBrowser } from "./support/browser";

let relay: Relay;
let browser: Browser;
beforeAll(async () => {
  [relay, browser] = await startRelayAndBrowser();
});
afterAll(async () => {
  await browser?.close();
  await relay?.stop();
  if (relay) await removeState(relay.persistTo);
});

interface DemoWindow {
  edgeRelayDemo: { received: Array<{ id: string; data: string }>; state: string; transport: string };
}

const TOTAL = 150;
const CRASH_AT = [50, 100];

const until = (predicate: () => boolean, what: string, timeoutMs = 90_000) => waitUntil(predicate, what, timeoutMs);

describe("relay crashes under the demo page", () => {
  it(`the SDK sees ${TOTAL} messages exactly once, in order, across two kill -9 and restarts`, async () => {
    const channel = `restart.${Date.now().toString(36)}`;
    // Console errors are expected here (connections refused while the relay is down): not checked.
    const { page } = await openPage(browser);
    await page.goto(`${relay.url}/?channel=${channel}&mode=sdk-auto&history=1&connect=1`);
    await page.waitForFunction(() => document.querySelector("#state")?.textContent === "open");

    // One publisher, sequential, retrying through outages with one Idempotency-Key per message, so
    // message i is stored once, as id i.
    let published = 0;
    const publisher = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        await publishSurely(relay.url, channel, `m${i}`, `restart-${channel}-${i}`);
        published = i;
        await sleep(10);
      }
    })();

    const { port, persistTo } = relay;
    for (const at of CRASH_AT) {
      await until(() => published >= at, `${at} published`);
      await relay.kill9();
      await page.waitForFunction(() => (window as unknown as DemoWindow).edgeRelayDemo.state !== "open", undefined, { timeout: 30_000 });
      // Down for a moment while the publisher keeps trying.
      await sleep(1000);
      relay = await startRelay({ port, persistTo });
      // Back on a live connection before the next crash, so each crash cuts one.
      await page.waitForFunction(() => (window as unknown as DemoWindow).edgeRelayDemo.state === "open", undefined, { timeout: 60_000 });
    }
    await publisher;

    await page.waitForFunction((n) => (window as unknown as DemoWindow).edgeRelayDemo.received.length >= n, TOTAL, { timeout: 90_000, polling: 100 });
    // Anything late (a duplicate) would show up now.
    await sleep(1000);
    const demo = await page.evaluate(() => (window as unknown as DemoWindow).edgeRelayDemo);
    const expected = Array.from({ length: TOTAL }, (_, i) => i + 1);
    expect(demo.received.map((m) => Number(m.id))).toEqual(expected);
    expect(demo.received.map((m) => m.data)).toEqual(expected.map((i) => `m${i}`));
    expect(demo.state).toBe("open");
    // The page saw both outages (and said so in its log).
    const notes = (await page.$$eval("#log li.system .data", (items) => items.map((item) => item.textContent ?? ""))).reverse();
    expect(notes.filter((note) => note.startsWith("connection lost")).length, notes.join("\n")).toBeGreaterThanOrEqual(CRASH_AT.length);

    await mkdir(join(ROOT, "test-results"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "test-results/demo-after-restarts.png") });
    await page.close();
  });
});
