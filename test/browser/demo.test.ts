// The demo page in Chromium against a real relay: it loads cleanly, every transport shows what is
// published, and it fits a phone.
import { access, copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishOk } from "../support/clients";
import { type Relay, ROOT, removeState } from "../support/relay";
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

const MODES = ["sdk-auto", "sdk-ws", "sdk-sse", "sdk-poll", "ws", "sse", "poll"] as const;
const TRANSPORT_LABEL: Record<(typeof MODES)[number], RegExp> = {
  "sdk-auto": /^SDK · ws$/,
  "sdk-ws": /^SDK · ws$/,
  "sdk-sse": /^SDK · sse$/,
  "sdk-poll": /^SDK · poll$/,
  ws: /^WebSocket$/,
  sse: /^EventSource$/,
  poll: /^long-poll$/,
};

async function publishFromOutside(channel: string, data: string, event?: string): Promise<string> {
  return publishOk(relay.url, channel, data, { event });
}

async function publishFromPage(page: Page, data: string, event = ""): Promise<void> {
  await page.fill("#message", data);
  await page.fill("#event", event);
  await page.click("#publish");
  await page.waitForFunction(() => /^published #\d+$|^not published/.test(document.querySelector("#publish-result")?.textContent ?? ""));
  expect(await page.textContent("#publish-result")).toMatch(/^published #\d+$/);
}

/** The log's message rows, oldest first: [id, event, latency, data]. */
async function logRows(page: Page): Promise<string[][]> {
  const rows = await page.$$eval("#log li.message", (items) =>
    items.map((li) => ["id", "event", "latency", "data"].map((name) => li.querySelector(`.${name}`)?.textContent ?? "")),
  );
  return rows.reverse();
}

describe("demo page", () => {
  it("loads with no console errors, served by the relay", async () => {
    const { page, problems } = await openPage(browser);
    const response = await page.goto(`${relay.url}/`);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toBe("Edge Relay · live demo");
    expect(await page.textContent("#state")).toBe("closed");
    // The SDK bundle is served next to it, as an ES module.
    const bundle = await fetch(`${relay.url}/client.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toMatch(/javascript/);
    expect(await bundle.text()).toMatch(/export \{[^}]*RelayClient/);
    await page.waitForTimeout(300);
    expect(problems).toEqual([]);
    await page.close();
  });

  for (const mode of MODES) {
    it(`shows published messages with ids, event names and latency: ${mode}`, async () => {
      const { page, problems } = await openPage(browser);
      const channel = `demo.${mode}.${Date.now().toString(36)}`;
      await page.goto(`${relay.url}/?channel=${channel}&mode=${mode}&connect=1`);
      await page.waitForFunction(() => document.querySelector("#state")?.textContent === "open");
      expect(await page.textContent("#transport")).toMatch(TRANSPORT_LABEL[mode]);
      // A long-poll or stream is in place once the page is open; publish from the page and from outside.
      await publishFromPage(page, "hello from the page", mode === "sse" ? "greeting" : "");
      await publishFromOutside(channel, "hello from curl");
      await page.waitForFunction(() => document.querySelectorAll("#log li.message").length === 2);
      const rows = await logRows(page);
      expect(rows.map(([id, event, , data]) => [id, event, data])).toEqual([
        ["#1", mode === "sse" ? "greeting" : "message", "hello from the page"],
        ["#2", "message", "hello from curl"],
      ]);
      // Own publishes: measured publish→receive latency.
      expect(rows[0]![2]).toMatch(/^\d+ ms$/);
      expect(
        await page.evaluate(() => (window as unknown as { edgeRelayDemo: { received: Array<{ id: string }> } }).edgeRelayDemo.received.map((m) => m.id)),
      ).toEqual(["1", "2"]);
      await page.click("#disconnect");
      expect(await page.textContent("#state")).toBe("closed");
      await page.waitForTimeout(200);
      expect(problems).toEqual([]);
      await page.close();
    });
  }

  it("replays history first when asked, and fits a phone-sized screen", async () => {
    const channel = `demo.phone.${Date.now().toString(36)}`;
    await publishFromOutside(channel, "stored before the page opened", "note");
    const page = await browser.context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
    page.on("pageerror", (e) => problems.push(e.message));
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${relay.url}/?channel=${channel}&mode=sdk-auto&history=1&connect=1`);
    await page.waitForFunction(() => document.querySelectorAll("#log li.message").length === 1);
    await publishFromPage(page, "typed on a phone", "chat");
    await publishFromOutside(channel, JSON.stringify({ from: "curl", n: 3 }), "update");
    await page.waitForFunction(() => document.querySelectorAll("#log li.message").length === 3);
    expect((await logRows(page)).map(([id, event]) => `${id} ${event}`)).toEqual(["#1 note", "#2 chat", "#3 update"]);
    // Nothing wider than the screen: no sideways scrolling.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const boxes = await page.$$eval("button, input, select, textarea", (items) => items.map((el) => el.getBoundingClientRect().right));
    for (const right of boxes) expect(right).toBeLessThanOrEqual(390);
    await mkdir(join(ROOT, "test-results"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "test-results/demo-phone.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("renders the screenshot kept with the test run (and the README's, docs/demo.png, when missing)", async () => {
    const channel = "news";
    await publishFromOutside(channel, "Edge Relay is live in 300+ cities", "announcement");
    const { page, problems } = await openPage(browser);
    await page.setViewportSize({ width: 1100, height: 720 });
    await page.goto(`${relay.url}/?channel=${channel}&mode=sdk-auto&history=1&connect=1`);
    await page.waitForFunction(() => document.querySelectorAll("#log li.message").length === 1);
    await publishFromPage(page, "Hello from the browser", "chat");
    await publishFromOutside(channel, JSON.stringify({ order: 42, status: "shipped" }), "update");
    await publishFromPage(page, "Multi-line messages\nkeep their line breaks");
    await page.waitForFunction(() => document.querySelectorAll("#log li.message").length === 4);
    await page.fill("#message", "");
    await page.fill("#event", "");
    await page.locator("#event").blur();
    await mkdir(join(ROOT, "test-results"), { recursive: true });
    const shot = join(ROOT, "test-results/demo.png");
    await page.screenshot({ path: shot });
    // The README's copy changes only on request: UPDATE_SCREENSHOT=1 npm run test:browser.
    const readme = join(ROOT, "docs/demo.png");
    const missing = await access(readme).then(
      () => false,
      () => true,
    );
    if (missing || process.env.UPDATE_SCREENSHOT === "1") await copyFile(shot, readme);
    expect(problems).toEqual([]);
    await page.close();
  });
});
