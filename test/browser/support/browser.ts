import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { type Relay, startRelay } from "../../support/relay";

/** Debian's Chromium (`apt-get install chromium`); `CHROMIUM_PATH` overrides. */
const EXECUTABLE = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium with a fresh profile, removed again by `close()`. */
export async function launchBrowser(): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), "edge-relay-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    viewport: { width: 1200, height: 820 },
    timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A page that records console errors and uncaught exceptions. */
export async function openPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console.error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  return { page, problems };
}

/**
 * A relay and Chromium, started side by side. When one fails to start, the other is stopped before
 * the error is thrown: a relay left running would outlive the test run.
 */
export async function startRelayAndBrowser(): Promise<[Relay, Browser]> {
  const [relay, browser] = await Promise.allSettled([startRelay(), launchBrowser()]);
  if (relay.status === "fulfilled" && browser.status === "fulfilled") return [relay.value, browser.value];
  if (relay.status === "fulfilled") await relay.value.stop();
  if (browser.status === "fulfilled") await browser.value.close();
  throw relay.status === "rejected" ? relay.reason : (browser as PromiseRejectedResult).reason;
}
