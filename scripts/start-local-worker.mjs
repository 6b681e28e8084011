// Starts a Worker under workerd the way `npm run dev` does, and stops it on SIGINT or SIGTERM.
// Shared by scripts/dev.mjs and the PartyServer baseline of the benchmark, so both run alike.
import { unstable_startWorker as startWorker } from "wrangler";

/**
 * wrangler's `unstable_startWorker` with the DevTools inspector off: it records every streamed
 * chunk, which slows SSE about six-fold and grows memory. Resolves with the URL it listens on.
 *
 * @param {{ config: string, ip: string, port: number, persistTo: string, vars?: Record<string, string>, watch?: boolean }} options
 *   `vars` become plain-text bindings; `watch: false` keeps one build (no restarts on file changes).
 */
export async function startLocalWorker({ config, ip, port, persistTo, vars = {}, watch }) {
  const worker = await startWorker({
    config,
    bindings: Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, { type: "plain_text", value }])),
    dev: {
      inspector: false,
      ...(watch === undefined ? {} : { watch }),
      persist: persistTo,
      server: { hostname: ip, port },
      logLevel: "warn",
    },
  });
  await worker.ready;

  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, async () => {
      if (stopping) return;
      stopping = true;
      await worker.dispose();
      process.exit(0);
    });
  }
  return worker.url;
}
