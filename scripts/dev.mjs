#!/usr/bin/env node
// Runs the relay locally under workerd without wrangler's DevTools inspector, which records
// every streamed chunk (SSE slows ~6× and memory grows). `npm run dev:inspect` keeps it on.
//
//   node scripts/dev.mjs [--port 8787] [--ip 127.0.0.1] [--persist-to .wrangler/state] [--var NAME:VALUE]…
import { parseArgs } from "node:util";
import { startLocalWorker } from "./start-local-worker.mjs";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    ip: { type: "string", default: "127.0.0.1" },
    "persist-to": { type: "string", default: ".wrangler/state" },
    var: { type: "string", multiple: true, default: [] },
  },
});

/** `--var NAME:VALUE` as wrangler takes it; local development allows anonymous publishing. */
const vars = { ALLOW_ANONYMOUS: "true" };
for (const pair of values.var) {
  const at = pair.indexOf(":");
  if (at < 1) throw new Error(`--var takes NAME:VALUE, got ${pair}`);
  vars[pair.slice(0, at)] = pair.slice(at + 1);
}

const url = await startLocalWorker({ config: "wrangler.toml", ip: values.ip, port: Number(values.port), persistTo: values["persist-to"], vars });
console.log(`Edge Relay is listening on ${url} (state in ${values["persist-to"]})`);
