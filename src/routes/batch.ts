import { type Context, Hono } from "hono";
import type { AppEnv } from "../app-env";
import { grantFor } from "../auth/grant";
import type { RelayConfig } from "../config";
import { checkPublishRate, publisherKey } from "../limits/publish-rate";
import type { ErrorBody } from "../protocol/errors";
import { RelayError } from "../protocol/errors";
import { optionalEvent, optionalIdempotencyKey, requireChannel } from "../protocol/validate";
import { type PublishReceipt, publishMessage } from "../room/publish";
import { readBody } from "./params";
import { resource } from "./resource";

type BatchResult = { channel: unknown; id: string } | { channel: unknown; error: ErrorBody };

/** `POST /v1/publish`: up to MAX_BATCH_MESSAGES messages over any channels, one result each, in order. */
export const batch = new Hono<AppEnv>();

resource(batch, "/publish", {
  POST: async (c) => {
    const config = c.get("config");
    const contentType = c.req.header("Content-Type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      throw new RelayError("unsupported_media_type", "A batch is sent as Content-Type: application/json.");
    }
    const entries = parseBatch(await readBatchBody(c.req.raw, config), config);

    // Each channel's entries are published in order; different channels go in parallel.
    const results: BatchResult[] = new Array(entries.length);
    const byChannel = new Map<string, number[]>();
    entries.forEach((entry, index) => {
      const key = typeof entry.channel === "string" ? entry.channel : "";
      byChannel.set(key, [...(byChannel.get(key) ?? []), index]);
    });
    await Promise.all(
      Array.from(byChannel.values(), async (indexes) => {
        for (const index of indexes) results[index] = await publishEntry(c, entries[index]!);
      }),
    );
    return c.json({ results });
  },
});

interface BatchEntry {
  channel?: unknown;
  data?: unknown;
  event?: unknown;
  idempotencyKey?: unknown;
}

async function publishEntry(c: Context<AppEnv>, entry: BatchEntry): Promise<BatchResult> {
  try {
    const channel = requireChannel(entry.channel);
    grantFor(c, channel, "publish");
    await checkPublishRate(c.env, publisherKey(c.get("identity"), c.req.raw));
    if (typeof entry.data !== "string") throw new RelayError("invalid_request", '"data" must be a string.');
    const receipt: PublishReceipt = await publishMessage(c.env, c.get("config"), {
      channel,
      body: entry.data,
      event: optionalEvent(entry.event),
      idempotencyKey: optionalIdempotencyKey(entry.idempotencyKey),
    });
    return { channel: receipt.channel, id: receipt.id };
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    return { channel: entry.channel, error: { code: error.code, message: error.message } };
  }
}

function readBatchBody(request: Request, config: RelayConfig): Promise<Uint8Array> {
  // Room for every message at its largest, JSON-escaped, plus the envelope around it.
  const maxBytes = config.maxBatchMessages * (config.maxMessageBytes * 6 + 1024);
  return readBody(request, maxBytes, () => new RelayError("message_too_large", `A batch body is at most ${maxBytes} bytes.`));
}

function parseBatch(body: Uint8Array, config: RelayConfig): BatchEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new RelayError("invalid_request", 'The body must be JSON: {"messages":[{"channel":"…","data":"…"}]}.');
  }
  const messages = (value as { messages?: unknown } | null)?.messages;
  if (typeof value !== "object" || value === null || !Array.isArray(messages)) {
    throw new RelayError("invalid_request", 'The body must hold a "messages" array.');
  }
  if (messages.length > config.maxBatchMessages) {
    throw new RelayError("invalid_request", `A batch holds at most ${config.maxBatchMessages} messages (MAX_BATCH_MESSAGES); this one has ${messages.length}.`);
  }
  return messages.map((entry) => (typeof entry === "object" && entry !== null && !Array.isArray(entry) ? (entry as BatchEntry) : {}));
}
