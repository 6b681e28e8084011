import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Vitest global setup: builds public/client.js, which the Worker bundles (the demo page's SDK)
 * and the e2e relays serve, so a fresh clone's `npm test` needs no build step first.
 */
export default function buildClient(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  execFileSync(process.execPath, ["scripts/build-client.mjs"], { cwd: root, stdio: "inherit" });
}
