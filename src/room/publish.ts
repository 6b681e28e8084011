import type { RelayConfig } from "../config";
import { unavailableError } from "../errors";
import { Metric, Metrics } from "../observability/metrics";
import { encodeData } from "../protocol/envelope";
import { RelayError } from "../protocol/errors";
import type { MessageId } from "../protocol/ids";
import { DEFAULT_EVENT } from "../protocol/names";
import { roomOf } from "./stub";

/** A publish whose channel, event and key are already validated. */
export interface PublishRequest {
  channel: string;
  /** The message: raw bytes (HTTP bodies) or text (JSON and RPC callers). */
  body: Uint8Array | string;
  event?: string;
  idempotencyKey?: string;
  ifMatch?: number;
}

/** What a publisher is told: API.md's `201` body. */
export interface PublishReceipt {
  id: MessageId;
  channel: string;
  event: string;
  ts: number;
}

const encoder = new TextEncoder();

/**
 * Stores one message in its channel's room and returns its receipt once it is durable.
 * Shared by every way to publish (HTTP, batch, multi-channel WebSocket, RPC), so the size rule and
 * the 412 are the same everywhere.
 */
export async function publishMessage(env: Env, config: RelayConfig, request: PublishRequest): Promise<PublishReceipt> {
  const bytes = typeof request.body === "string" ? encoder.encode(request.body) : request.body;
  if (bytes.byteLength > config.maxMessageBytes) throw messageTooLarge(config);
  const data = typeof request.body === "string" ? { data: request.body } : encodeData(bytes);
  const { channel } = request;
  const startedAt = Date.now();
  const result = await roomOf(env, channel)
    .publish(channel, { ...data, event: request.event ?? DEFAULT_EVENT, idempotencyKey: request.idempotencyKey, ifMatch: request.ifMatch })
    .catch((error: unknown) => {
      throw unavailableError(error) ?? error;
    });
  if (result.status === "conflict") {
    throw new RelayError("precondition_failed", `The channel's last id is ${result.lastId}, not the one in If-Match.`, {
      details: { lastId: result.lastId },
    });
  }
  // Publish-to-store time as the publisher sees it: the room's own clock does not move while it works.
  if (result.status === "stored") new Metrics(env.METRICS).count(Metric.Publish, channel, "", 1, Date.now() - startedAt);
  const { id, event, ts } = result.message;
  return { id, channel, event, ts };
}

export function messageTooLarge(config: RelayConfig): RelayError {
  return new RelayError("message_too_large", `The message is larger than ${config.maxMessageBytes} bytes (MAX_MESSAGE_BYTES).`);
}
