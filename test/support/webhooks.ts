import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { WebhookEvent } from "../../src/webhooks/events";

/** One POST the receiver took or refused. */
export interface ReceivedPost {
  body: string;
  signature: string | null;
  answered: number;
}

/** A real HTTP server on 127.0.0.1 that takes the relay's webhook POSTs. */
export interface WebhookReceiver {
  /** What to set WEBHOOK_URL to. */
  url: string;
  posts: ReceivedPost[];
  /** Every event of the POSTs it took, once per id (delivery is at least once); of one channel if named. */
  events(channel?: string): WebhookEvent[];
  /** A channel's events as "type" or "type member", in the order they happened (by `ts`, then as received). */
  described(channel: string): string[];
  /** Answers the next `count` POSTs with 500. */
  refuseNext(count: number): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const posts: ReceivedPost[] = [];
  let refusing = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const answered = refusing > 0 ? 500 : 200;
      if (refusing > 0) refusing -= 1;
      posts.push({ body, signature: (req.headers["relay-signature"] as string | undefined) ?? null, answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  const events = (channel?: string): WebhookEvent[] => {
    const byId = new Map<string, WebhookEvent>();
    for (const post of posts) {
      if (post.answered !== 200) continue;
      for (const event of JSON.parse(post.body).events as WebhookEvent[]) byId.set(event.id, event);
    }
    return [...byId.values()].filter((event) => channel === undefined || event.channel === channel);
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/relay`,
    posts,
    events,
    described: (channel) =>
      events(channel)
        .map((event, order) => ({ event, order }))
        .sort((a, b) => a.event.ts - b.event.ts || a.order - b.order)
        .map(({ event }) => (event.member ? `${event.type} ${event.member}` : event.type)),
    refuseNext: (count) => {
      refusing = count;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Whether occupied and vacated alternate, starting with occupied (what a receiver counting occupancy relies on). */
export function occupancyAlternates(described: string[]): boolean {
  const occupancy = described.filter((event) => event.startsWith("channel."));
  return occupancy.every((event, i) => event === (i % 2 === 0 ? "channel.occupied" : "channel.vacated"));
}
