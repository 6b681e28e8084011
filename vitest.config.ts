import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // Small limits so retention and size rules can be exercised quickly.
              bindings: { ALLOW_ANONYMOUS: "true", HISTORY_LIMIT: "50", MAX_MESSAGE_BYTES: "1024", KEEPALIVE_SECONDS: "1", SSE_BUFFER_BYTES: "16384" },
              // A second Worker of the same account, publishing through a service binding (RPC).
              serviceBindings: { PUBLISHER: "publisher" },
              workers: [
                {
                  name: "publisher",
                  modules: true,
                  compatibilityDate: "2026-04-20",
                  // The plugin renames the Worker under test to its runner, "vitest-plugin-runner-<project>".
                  serviceBindings: { RELAY: "vitest-plugin-runner-worker" },
                  script: `export default {
                    async fetch(request, env) {
                      const { channel, data, event } = await request.json();
                      try {
                        return Response.json({ id: await env.RELAY.publish(channel, data, { event }) });
                      } catch (error) {
                        return Response.json({ error: String(error.message) }, { status: 400 });
                      }
                    },
                  };`,
                },
              ],
            },
          }),
        ],
        test: { name: "worker", include: ["test/worker/**/*.test.ts"] },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Each file starts its own `wrangler dev`; two at once is what two cores carry.
          maxWorkers: 2,
        },
      },
    ],
  },
});
