#!/usr/bin/env node
// Runs the PartyServer baseline the way Edge Relay's `npm run dev` runs the relay: wrangler's
// unstable_startWorker with the DevTools inspector off.
//
//   node bench/baselines/partyserver/start.mjs --port 8791 --persist-to /tmp/ps-state
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startLocalWorker } from "../../../scripts/start-local-worker.mjs";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8791" },
    ip: { type: "string", default: "127.0.0.1" },
    "persist-to": { type: "string", default: ".wrangler/state" },
  },
});

// A benchmark measures one build: no restarts on file changes.
const url = await startLocalWorker({
  config: join(import.meta.dirname, "wrangler.toml"),
  ip: values.ip,
  port: Number(values.port),
  persistTo: values["persist-to"],
  watch: false,
});
console.log(`PartyServer baseline is listening on ${url} (state in ${values["persist-to"]})`);
