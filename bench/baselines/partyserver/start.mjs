#!/usr/bin/env node
// Runs the PartyServer baseline the way Edge Relay's `npm run dev` runs the relay: wrangler's
// unstable_startWorker with the DevTools inspector off.
//
//   node bench/baselines/partyserver/start.mjs --port 8791 --persist-to /tmp/ps-state
import { join } from "node:path";
import { parseArgs } from "node:util";
import { unstable_startWorker as startWorker } from "wrangler";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8791" },
    ip: { type: "string", default: "127.0.0.1" },
    "persist-to": { type: "string", default: ".wrangler/state" },
  },
});

const worker = await startWorker({
  config: join(import.meta.dirname, "wrangler.toml"),
  dev: {
    inspector: false,
    // A benchmark measures one build: no restarts on file changes.
    watch: false,
    persist: values["persist-to"],
    server: { hostname: values.ip, port: Number(values.port) },
    logLevel: "warn",
  },
});
await worker.ready;
console.log(`PartyServer baseline is listening on ${await worker.url} (state in ${values["persist-to"]})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await worker.dispose();
    process.exit(0);
  });
}
