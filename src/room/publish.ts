import type { Identity } from "../auth/identity";
import { authorize } from "../auth/policy";
import type { RelayConfig } from "../config";
import { unavailableError } from "../errors";
import { checkPublishRate } from "../limits/publish-rate";
import { Metric, Metrics } from "../observability/metrics";
import { encodeData } from "../protocol/envelope";
import { RelayError } from "../protocol/errors";
import type { MessageId } from "../protocol/ids";
import { DEFAULT_EVENT } from "../protocol/names";
import { optionalEvent, optionalIdempotencyKey, requireChannel } from "../protocol/validate";
import type { OwnSocket } from "./connect-request";
import type { PublishInput, PublishResult } from "./room";
import { roomOf } from "./stub";

// The one publish path: every way to publish (HTTP, batch, a channel's own socket, /v1/ws, RPC)
// goes validate → authorize → rate-limit → size → store through this module, so the rules cannot
// drift apart. Only what differs is passed in: who is asking (a Publisher) and how the request
// arrived (a PublishRequest).

/** Who is publishing, as the publish path needs to know it. */
export interface Publisher {
  /** Throws `unauthorized` or `forbidden` unless this publisher may publish to `channel`. */
  authorize(channel: string): void;
  /**
   * Whose publishes count together against PUBLISH_RATE_LIMITER (a token's `sub`, else the client's
   * address); `undefined` for a publisher that is not counted (a service binding, see SERVICE_PUBLISHER).
   */
  rateKey: string | undefined;
}

/** A client of the Worker (HTTP, batch, `/v1/ws`): authorized by its token, counted by `rateKey`. */
export function clientPublisher(config: RelayConfig, identity: Identity, rateKey: string): Publisher {
  return { authorize: (channel) => void authorize(config, identity, channel, "publish"), rateKey };
}

/** A client's own channel socket: its right was decided when it connected, and travels with it. */
export function socketPublisher(own: OwnSocket): Publisher {
  return {
    authorize: () => {
      if (own.canPublish) return;
      if (own.publishRefusal === "unauthorized") throw new RelayError("unauthorized", "Publishing needs a token with a publish right for this channel.");
      throw new RelayError("forbidden", "This token may not publish to the channel.");
    },
    rateKey: own.publisherKey,
  };
}

/**
 * Another Worker of the same account, calling through a service binding (RPC). Bindings are made by
 * the operator, so no token is asked; and they are not counted against PUBLISH_RATE_LIMITER, which
 * guards against clients on the internet: a backend publishes for many users at once, and all of
 * them would share one key, so the operator's own publisher would be the first refused. A Worker
 * that relays its users' publishes should rate-limit them itself.
 */
export const SERVICE_PUBLISHER: Publisher = { authorize: () => {}, rateKey: undefined };

/** Reads an HTTP body of at most `maxBytes`, throwing `message_too_large` past it. */
export type BodyReader = (maxBytes: number, tooLarge: () => RelayError) => Promise<Uint8Array>;

/** A publish as it arrived, nothing validated yet. */
export interface PublishRequest {
  channel: unknown;
  /**
   * The message: text (a JSON batch entry, a frame, RPC), bytes (RPC), or a BodyReader for an HTTP
   * body, which is read only once the publisher is authorized and counted. Anything else is
   * `invalid_request`.
   */
  data: unknown;
  event?: unknown;
  idempotencyKey?: unknown;
  /** Store only if the channel's last id is this one (HTTP `If-Match`, already parsed). */
  ifMatch?: number;
}

/** A publish that passed every check and only waits to be stored. */
export interface AdmittedPublish {
  channel: string;
  input: PublishInput;
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
 * Runs a publish through every check, in order: the names (channel, data's type, event, key),
 * the publisher's right, the rate limit, the size. Throws the RelayError API.md names for the first
 * that fails; a publish refused for its size has been counted.
 *
 * @example
 * const admitted = await admitPublish(env, config, SERVICE_PUBLISHER, { channel: "news", data: "hi" });
 */
export async function admitPublish(env: Env, config: RelayConfig, publisher: Publisher, request: PublishRequest): Promise<AdmittedPublish> {
  const channel = requireChannel(request.channel);
  const { data } = request;
  if (typeof data !== "string" && !(data instanceof Uint8Array) && typeof data !== "function") {
    throw new RelayError("invalid_request", '"data" must be a string.');
  }
  const event = optionalEvent(request.event) ?? DEFAULT_EVENT;
  const idempotencyKey = optionalIdempotencyKey(request.idempotencyKey);

  publisher.authorize(channel);
  if (publisher.rateKey !== undefined) await checkPublishRate(env, publisher.rateKey);

  const tooLarge = () => messageTooLarge(config);
  const body = typeof data === "function" ? await (data as BodyReader)(config.maxMessageBytes, tooLarge) : data;
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  if (bytes.byteLength > config.maxMessageBytes) throw tooLarge();
  const encoded = typeof body === "string" ? { data: body } : encodeData(bytes);
  return { channel, input: { ...encoded, event, idempotencyKey, ifMatch: request.ifMatch } };
}

/**
 * The whole path for one message: admitted, then stored in its channel's room; resolves with the
 * receipt once the message is durable (or with the first message's, for a repeated key).
 */
export async function publish(env: Env, config: RelayConfig, publisher: Publisher, request: PublishRequest): Promise<PublishReceipt> {
  return store(env, await admitPublish(env, config, publisher, request));
}

/** Stores an admitted publish in its channel's room; a room the platform cannot reach is `unavailable`. */
export async function store(env: Env, { channel, input }: AdmittedPublish): Promise<PublishReceipt> {
  const startedAt = Date.now();
  const result = await roomOf(env, channel)
    .publish(channel, input)
    .catch((error: unknown) => {
      throw unavailableError(error) ?? error;
    });
  // Publish-to-store time as the publisher sees it: the room's own clock does not move while it works.
  if (result.status === "stored") new Metrics(env.METRICS).count(Metric.Publish, channel, "", 1, Date.now() - startedAt);
  return receiptOf(channel, result);
}

/** A room's answer as the publisher's receipt; an If-Match that did not hold is `412`. */
export function receiptOf(channel: string, result: PublishResult): PublishReceipt {
  if (result.status === "conflict") {
    throw new RelayError("precondition_failed", `The channel's last id is ${result.lastId}, not the one in If-Match.`, {
      details: { lastId: result.lastId },
    });
  }
  const { id, event, ts } = result.message;
  return { id, channel, event, ts };
}

export function messageTooLarge(config: RelayConfig): RelayError {
  return new RelayError("message_too_large", `The message is larger than ${config.maxMessageBytes} bytes (MAX_MESSAGE_BYTES).`);
}
