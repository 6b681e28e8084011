import { defineConfig } from "vitest/config";

// `npm run test:browser`: Chromium against a real relay (scripts/dev.mjs). Kept out of `npm test`,
// so the main suite never needs a browser.
export default defineConfig({
  test: {
    name: "browser",
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/browser/**/*.test.ts"],
    globalSetup: ["test/support/build-client.ts"],
    environment: "node",
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Each file starts a relay and a browser; one at a time is what two cores carry.
    fileParallelism: false,
  },
});
