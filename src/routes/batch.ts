import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { authorizeSomePublishing } from "../auth/policy";
import type { RelayConfig } from "../config";
import { asRelayError } from "../errors";
import { Metric, Metrics } from "../observability/metrics";
import type { ErrorBody } from "../protocol/errors";
import { RelayError } from "../protocol/errors";
import { type AdmittedPublish, admitPublish, receiptOf } from "../room/publish";
import { roomOf } from "../room/stub";
import { readBody } from "./params";
import { writePublisher } from "./publisher";
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
    // A caller who may publish nowhere is refused before a byte of the body is read.
    const publisher = writePublisher(c);
    authorizeSomePublishing(config, c.get("identity"));
    const entries = parseBatch(await readBatchBody(c.req.raw, config), config);

    // Each entry through the publish path's checks, in order (so the rate limit refuses the last
    // ones); then each channel's admitted entries stored in one room call, channels in parallel.
    const results: BatchResult[] = new Array(entries.length);
    const byChannel = new Map<string, Array<{ index: number; admitted: AdmittedPublish }>>();
    for (const [index, entry] of entries.entries()) {
      try {
        const { channel, data, event, idempotencyKey } = entry;
        const admitted = await admitPublish(c.env, config, publisher, { channel, data, event, idempotencyKey });
        const admittedHere = byChannel.get(admitted.channel) ?? [];
        admittedHere.push({ index, admitted });
        byChannel.set(admitted.channel, admittedHere);
      } catch (error) {
        results[index] = failed(entry.channel, asRelayError(error));
      }
    }
    await Promise.all(
      Array.from(byChannel, async ([channel, admitted]) => {
        const stored = await storeAll(
          c.env,
          channel,
          admitted.map((a) => a.admitted),
        );
        admitted.forEach(({ index }, i) => {
          results[index] = stored[i]!;
        });
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

/** One channel's entries, stored in one room call in order; a room that fails fails only them. */
async function storeAll(env: Env, channel: string, admitted: AdmittedPublish[]): Promise<BatchResult[]> {
  try {
    const startedAt = Date.now();
    const outcomes = await roomOf(env, channel).publishAll(
      channel,
      admitted.map((a) => a.input),
    );
    const stored = outcomes.filter((outcome) => outcome.status === "stored").length;
    new Metrics(env.METRICS).count(Metric.Publish, channel, "", stored, Date.now() - startedAt);
    return outcomes.map((outcome) => {
      try {
        return { channel, id: receiptOf(channel, outcome).id };
      } catch (error) {
        return failed(channel, asRelayError(error));
      }
    });
  } catch (error) {
    const refusal = asRelayError(error);
    return admitted.map(() => failed(channel, refusal));
  }
}

function failed(channel: unknown, { code, message }: RelayError): BatchResult {
  return { channel, error: { code, message } };
}

/**
 * The largest batch body read: room for every message at its largest as JSON.stringify, and every
 * common encoder, writes it. A string's characters are written as they are, except `"`, `\` and
 * control characters, escaped in 2 bytes (`\"`, `\n`): 2 × MAX_MESSAGE_BYTES per message. 1 KiB
 * more per entry holds the rest (a channel of at most 128 characters, an event of 64, a key of 128,
 * the field names). Only C0 controls other than \b \t \n \f \r take 6 bytes (`\u0001`): a full
 * batch of full-size messages made of those must be split. Defaults: 100 × (2 × 65536 + 1024) =
 * 13,209,600 bytes, where 6 bytes per byte of data would make 39 MB.
 */
function maxBatchBodyBytes(config: RelayConfig): number {
  return config.maxBatchMessages * (config.maxMessageBytes * 2 + 1024);
}

function readBatchBody(request: Request, config: RelayConfig): Promise<Uint8Array> {
  const maxBytes = maxBatchBodyBytes(config);
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
