#!/usr/bin/env node
// Runs the relay locally under workerd without wrangler's DevTools inspector, which records
// every streamed chunk (SSE slows ~6× and memory grows). `npm run dev:inspect` keeps it on.
//
//   node scripts/dev.mjs [--port 8787] [--ip 127.0.0.1] [--persist-to .wrangler/state] [--var NAME:VALUE]…
import { parseArgs } from "node:util";
import { unstable_startWorker as startWorker } from "wrangler";

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

const worker = await startWorker({
  config: "wrangler.toml",
  bindings: Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, { type: "plain_text", value }])),
  dev: {
    inspector: false,
    persist: values["persist-to"],
    server: { hostname: values.ip, port: Number(values.port) },
    logLevel: "warn",
  },
});
await worker.ready;
console.log(`Edge Relay is listening on ${await worker.url} (state in ${values["persist-to"]})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await worker.dispose();
    process.exit(0);
  });
}
