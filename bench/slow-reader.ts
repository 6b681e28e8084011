#!/usr/bin/env -S npx tsx
// What a WebSocket subscriber that never reads costs the relay: the platform gives no
// bufferedAmount, so a room's sends to it pile up somewhere. One subscriber pauses its socket,
// N messages are published, and the relay's process tree RSS is read from /proc before, after,
// and once the subscriber reads again (did it get every message?).
//
//   npx tsx bench/slow-reader.ts [--messages 10000] [--bytes 1024]
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { channelUrl, request, uniqueChannel, withTimeout } from "../test/support/clients";
import { sleep, startRelay } from "../test/support/relay";
import { processInfo, processTree, RssSampler } from "./lib/proc";

const { values } = parseArgs({ options: { messages: { type: "string", default: "10000" }, bytes: { type: "string", default: "1024" } } });
const MESSAGES = Number(values.messages);
const BYTES = Number(values.bytes);
const MB = 2 ** 20;

const relay = await startRelay({ vars: { HISTORY_LIMIT: "1000" } });
try {
  const channel = uniqueChannel("slow-reader");
  const sampler = new RssSampler(relay.pid, 100);
  let received = 0;
  const ws = new WebSocket(`${channelUrl(relay.url.replace(/^http/, "ws"), channel, "ws")}`);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  ws.on("message", (raw) => {
    if ((JSON.parse(raw.toString()) as { type: string }).type === "message") received++;
  });
  await sleep(500);
  // Stops reading from the TCP socket: the kernel buffers fill, then the relay holds the rest.
  ws.pause();
  await sleep(1000);
  const before = sampler.sample();
  const beforeByProcess = byProcess(relay.pid);

  const data = "x".repeat(BYTES);
  for (let first = 0; first < MESSAGES; first += 100) {
    const messages = Array.from({ length: Math.min(100, MESSAGES - first) }, () => ({ channel, data }));
    const result = await request(
      `${relay.url}/v1/publish`,
      // A new address per batch: the publish rate limit is not what is measured.
      {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": `192.0.2.${(first / 100) % 250}` },
        body: JSON.stringify({ messages }),
      },
      60_000,
    );
    if (result.status !== 200) throw new Error(`batch publish answered ${result.status}`);
  }
  await sleep(2000);
  const after = sampler.sample();
  const afterByProcess = byProcess(relay.pid);
  const health = await request(`${relay.url}/healthz`, {}, 10_000);

  ws.resume();
  await withTimeout(
    (async () => {
      while (received < MESSAGES) await sleep(50);
    })(),
    120_000,
    `the paused reader to get all ${MESSAGES} messages once it reads`,
  );
  await sleep(1000);
  const drained = sampler.sample();
  sampler.stop();
  ws.close();

  const payload = (MESSAGES * BYTES) / MB;
  console.log(`slow WebSocket reader, ${MESSAGES} messages × ${BYTES} B (${payload.toFixed(1)} MB of data) published while it read nothing:`);
  console.log(
    `  relay process tree RSS: ${(before / MB).toFixed(0)} MB before, ${(after / MB).toFixed(0)} MB after (+${((after - before) / MB).toFixed(0)} MB), peak ${(sampler.peakTreeBytes / MB).toFixed(0)} MB`,
  );
  for (const [pid, { comm, bytes }] of afterByProcess) {
    const grew = bytes - (beforeByProcess.get(pid)?.bytes ?? 0);
    if (Math.abs(grew) >= MB) console.log(`    ${comm} (${pid}): +${(grew / MB).toFixed(0)} MB`);
  }
  console.log(`  /healthz meanwhile: ${health.status}; once it read again it got ${received} of ${MESSAGES}; RSS then ${(drained / MB).toFixed(0)} MB`);
} finally {
  await relay.stop();
}

/** Resident bytes of each process of the relay's tree now. */
function byProcess(root: number): Map<number, { comm: string; bytes: number }> {
  const out = new Map<number, { comm: string; bytes: number }>();
  for (const pid of processTree(root)) {
    const info = processInfo(pid);
    if (info) out.set(pid, { comm: info.comm, bytes: info.rssBytes });
  }
  return out;
}
