import { defineConfig } from "vitest/config";

// `npm run test:faults`: the fault suite (kill -9 restarts, a connection-cutting proxy) against a
// real relay (scripts/dev.mjs). Kept out of `npm test`: it takes minutes and wants the machine.
export default defineConfig({
  test: {
    name: "faults",
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/faults/**/*.test.ts"],
    // The SDK publishes and subscribes as a package user gets it: the built public/client.js.
    globalSetup: ["test/support/build-client.ts"],
    environment: "node",
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // Each scenario file starts its own relay and many clients; two at once would starve two cores.
    maxWorkers: 1,
    fileParallelism: false,
  },
});
