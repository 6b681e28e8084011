#!/usr/bin/env node
// Mints a relay token for development, signed with the relay's secret.
//
//   npm run token -- --publish 'news' --subscribe '*' [--sub alice] [--ttl 1h]
//
// The secret comes from RELAY_JWT_SECRET in the environment, else from .dev.vars (what
// `wrangler dev` reads), so the token matches the relay you run locally.
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { sign } from "hono/jwt";

const { values } = parseArgs({
  options: {
    publish: { type: "string", multiple: true, default: [] },
    subscribe: { type: "string", multiple: true, default: [] },
    sub: { type: "string" },
    ttl: { type: "string", default: "1h" },
  },
});

function secretFromDevVars() {
  if (!existsSync(".dev.vars")) return undefined;
  const line = readFileSync(".dev.vars", "utf8")
    .split("\n")
    .find((l) => l.startsWith("RELAY_JWT_SECRET="));
  return line
    ?.slice("RELAY_JWT_SECRET=".length)
    .trim()
    .replace(/^"(.*)"$/, "$1");
}

/** "90s", "15m", "1h", "7d" or a number of seconds. */
function seconds(ttl) {
  const match = /^(\d+)([smhd]?)$/.exec(ttl);
  if (!match) throw new Error(`--ttl takes a duration like 90s, 15m, 1h or 7d, got ${ttl}`);
  return Number(match[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
}

/** Patterns may be given as repeated flags or comma-separated. */
const patterns = (list) =>
  list
    .flatMap((item) => item.split(","))
    .map((p) => p.trim())
    .filter(Boolean);

const secret = process.env.RELAY_JWT_SECRET || secretFromDevVars();
if (!secret) {
  console.error("No secret: set RELAY_JWT_SECRET, or put RELAY_JWT_SECRET=… in .dev.vars (as the relay reads it).");
  process.exit(1);
}
const now = Math.floor(Date.now() / 1000);
const payload = {
  ...(values.sub ? { sub: values.sub } : {}),
  iat: now,
  exp: now + seconds(values.ttl),
  relay: { publish: patterns(values.publish), subscribe: patterns(values.subscribe) },
};
console.log(await sign(payload, secret, "HS256"));
