import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** The Worker imports public/demo.css as text; Vitest would otherwise hand it an empty string. */
const WORKER_CSS = { include: [/\.css/] };

export default defineConfig({
  test: {
    globalSetup: ["test/support/build-client.ts"],
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" },
      },
      {
        // The browser SDK against a protocol-level fake relay (Chromium tests: test/browser).
        test: { name: "client", include: ["test/client/**/*.test.ts"], environment: "node" },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // Small limits so retention and size rules can be exercised quickly.
              // MAX_CONNECTIONS_PER_IP is off here (the worker-auth project tests it): sockets a test
              // leaves open would otherwise release their leases while the runtime is torn down.
              bindings: {
                ALLOW_ANONYMOUS: "true",
                HISTORY_LIMIT: "50",
                MAX_MESSAGE_BYTES: "1024",
                KEEPALIVE_SECONDS: "1",
                SSE_BUFFER_BYTES: "16384",
                MAX_CONNECTIONS_PER_IP: "0",
                // Channels named hot-… are served through 4 shards (test/worker/hot-channels.test.ts).
                HOT_CHANNELS: "hot-*:4",
              },
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
        test: { name: "worker", include: ["test/worker/**/*.test.ts"], css: WORKER_CSS },
      },
      {
        // The relay as deployed: a secret (and the previous one, mid-rotation), public channels, one
        // allowed origin and small limits, so auth, CORS and every limit can be exercised quickly.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                RELAY_JWT_SECRET: "test-secret",
                RELAY_JWT_SECRET_PREVIOUS: "old-secret",
                PUBLIC_CHANNELS: "public.*,lobby",
                CORS_ORIGINS: "https://app.example",
                MAX_SUBSCRIBERS_PER_CHANNEL: "5",
                // Channels named capshard-… fan out over 2 shards, which share the 5.
                HOT_CHANNELS: "capshard-*:2",
                WS_PUBLISH_RATE: "5",
                WS_PUBLISH_BURST: "5",
                ALLOW_ANONYMOUS: "false",
                MAX_CONNECTIONS_PER_IP: "50",
                PING_TIMEOUT_SECONDS: "2",
              },
              // 5 publishes per 10 s per key (token subject or client IP) instead of wrangler.toml's 1000.
              ratelimits: { PUBLISH_RATE_LIMITER: { namespace_id: "1001", simple: { limit: 5, period: 10 } } },
            },
          }),
        ],
        test: { name: "worker-auth", include: ["test/worker-auth/**/*.test.ts"], css: WORKER_CSS },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Each file starts its own relay process; two at once is what two cores carry. After the
          // in-process projects (a project with its own maxWorkers needs its own group).
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
