/**
 * SSE clients that reset their connection early: starts a relay (KEEPALIVE_SECONDS=2), sends
 * `--count` requests at once to one SSE route, each reset (RST) `--after` ms after connecting
 * (`0`: right after writing the request; `spread:N`: the i-th at N·i/count ms), then prints how many
 * the channel still counts 4, 8, 16 and 32 s later. `--direct` connects to the Worker's own
 * listener instead of wrangler's dev proxy in front of it (directUrl in test/support/relay.ts).
 *
 *   npx tsx test/faults/sse-resets.ts [--route channel|multi] [--count 60] [--after 0|spread:300] [--direct]
 *
 * Everything runs on 127.0.0.1; the relay is stopped at the end.
 */
import { connect } from "node:net";
import { parseArgs } from "node:util";
import { channelUrl, request, uniqueChannel } from "../support/clients";
import { directUrl, sleep, startRelay } from "../support/relay";

const { values } = parseArgs({
  options: {
    route: { type: "string", default: "channel" },
    count: { type: "string", default: "60" },
    after: { type: "string", default: "0" },
    direct: { type: "boolean", default: false },
  },
});
const count = Number(values.count);
const spreadMs = values.after.startsWith("spread:") ? Number(values.after.slice("spread:".length)) : undefined;

const relay = await startRelay({ vars: { KEEPALIVE_SECONDS: "2" } });
try {
  const url = values.direct ? await directUrl(relay) : relay.url;
  const channel = uniqueChannel("sse-resets");
  const path = values.route === "multi" ? `/v1/events?channel=${channel}` : `/v1/channels/${channel}/events`;
  await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<void>((done) => {
          const socket = connect(Number(new URL(url).port), "127.0.0.1", () => {
            socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
            if (spreadMs === undefined) socket.resetAndDestroy();
            else setTimeout(() => socket.resetAndDestroy(), (spreadMs * i) / count);
          });
          socket.on("error", () => {}).on("close", () => done());
        }),
    ),
  );
  let waited = 0;
  for (const at of [4, 8, 16, 32]) {
    await sleep((at - waited) * 1000);
    waited = at;
    const { sse } = (await request(channelUrl(url, channel))).body.subscribers as { sse: number };
    console.log(`${values.route} ${values.direct ? "direct" : "via wrangler's proxy"}, ${count} reset after ${values.after}: ${sse} counted after ${at} s`);
  }
} finally {
  await relay.stop();
}
