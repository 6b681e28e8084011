import type { Envelope } from "./envelope";
import type { ErrorBody, ErrorCode } from "./errors";
import type { MessageId } from "./ids";
import { parseSeq } from "./ids";
import { CHANNEL_NAME_RULE, EVENT_NAME_RULE, IDEMPOTENCY_KEY_RULE, isChannelName, isEventName, isIdempotencyKey } from "./names";
import { REWIND } from "./validate";

/** Frames the relay sends on a WebSocket, one JSON object per text frame. */
export const ServerFrameType = {
  Subscribed: "subscribed",
  Message: "message",
  /** Several messages in one frame, for subscribers that asked for `?frames=batch`. */
  Batch: "batch",
  Gap: "gap",
  Ack: "ack",
  Error: "error",
  Unsubscribed: "unsubscribed",
  Join: "join",
  Leave: "leave",
  Pong: "pong",
} as const;

export interface SubscribedFrame {
  type: typeof ServerFrameType.Subscribed;
  channel: string;
  lastId: MessageId;
}

/** Several envelopes of one channel in one frame, in id order. */
export interface BatchFrame {
  type: typeof ServerFrameType.Batch;
  messages: Envelope[];
}

/** Messages after `after` are no longer retained; delivery resumes at `oldest`. */
export interface GapFrame {
  type: typeof ServerFrameType.Gap;
  channel: string;
  after: MessageId;
  oldest: MessageId;
}

export interface AckFrame {
  type: typeof ServerFrameType.Ack;
  ref?: string;
  id: MessageId;
}

export interface ErrorFrame {
  type: typeof ServerFrameType.Error;
  ref?: string;
  error: ErrorBody;
}

export interface UnsubscribedFrame {
  type: typeof ServerFrameType.Unsubscribed;
  channel: string;
}

/** A presence member: who, over which transport, connected since when (ms since the epoch). */
export interface PresenceMember {
  id: string;
  transport: "ws" | "sse";
  since: number;
}

/** Someone joined or left a channel; sent to subscribers that asked for presence. */
export interface PresenceFrame {
  type: typeof ServerFrameType.Join | typeof ServerFrameType.Leave;
  channel: string;
  subscriber: PresenceMember;
}

export type ServerFrame = SubscribedFrame | UnsubscribedFrame | Envelope | BatchFrame | GapFrame | AckFrame | ErrorFrame | PresenceFrame;

/** Frames a client sends. */
export const ClientFrameType = {
  Publish: "publish",
  Subscribe: "subscribe",
  Unsubscribe: "unsubscribe",
} as const;

export interface PublishFrame {
  type: typeof ClientFrameType.Publish;
  /** Required on a multi-channel socket; a channel's own socket publishes to its channel. */
  channel?: string;
  data: string;
  event?: string;
  /** A repeat while the first message with this key is retained is acknowledged with its id and stores nothing. */
  idempotencyKey?: string;
  ref?: string;
}

/** Multi-channel sockets only. */
export interface SubscribeFrame {
  type: typeof ClientFrameType.Subscribe;
  channel: string;
  /** Resume after this id. */
  since?: number;
  /** Without `since`: start with the last this many retained messages (at most 100). */
  rewind?: number;
  /** Also receive join and leave frames. */
  presence?: boolean;
  ref?: string;
}

export interface UnsubscribeFrame {
  type: typeof ClientFrameType.Unsubscribe;
  channel: string;
  ref?: string;
}

export type ClientFrame = PublishFrame | SubscribeFrame | UnsubscribeFrame;

/** The exact texts of the keep-alive exchange, answered even while a room hibernates. */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

export type ParseResult = { ok: true; frame: ClientFrame } | { ok: false; error: ErrorFrame };

export interface ParseOptions {
  /** Largest `data` accepted, in UTF-8 bytes. */
  maxDataBytes: number;
  /** Largest frame accepted, in bytes; checked before the frame is parsed. */
  maxFrameBytes?: number;
}

const MAX_REF_LENGTH = 128;
const encoder = new TextEncoder();

/**
 * Reads one client frame. Never throws: anything malformed comes back as the error frame to send,
 * carrying the frame's `ref` when it had a usable one.
 *
 * @example parseClientFrame('{"type":"publish","data":"hi","idempotencyKey":"k1","ref":"c1"}', { maxDataBytes: 65536 })
 * // { ok: true, frame: { type: "publish", data: "hi", idempotencyKey: "k1", ref: "c1" } }
 */
export function parseClientFrame(raw: string | ArrayBuffer, options: ParseOptions): ParseResult {
  if (options.maxFrameBytes !== undefined && isFrameLargerThan(raw, options.maxFrameBytes)) {
    return invalid("message_too_large", `Frames are at most ${options.maxFrameBytes} bytes (MAX_FRAME_BYTES).`);
  }
  if (typeof raw !== "string") return invalid("invalid_frame", "Binary frames are not supported; send JSON text frames.");

  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return invalid("invalid_frame", "A frame must be one JSON object.");
  }
  if (!isRecord(value)) return invalid("invalid_frame", "A frame must be one JSON object.");

  const ref = value.ref;
  if (ref !== undefined && (typeof ref !== "string" || ref.length > MAX_REF_LENGTH)) {
    return invalid("invalid_frame", `"ref" must be a string of at most ${MAX_REF_LENGTH} characters.`);
  }

  switch (value.type) {
    case ClientFrameType.Publish:
      return parsePublish(value, ref, options);
    case ClientFrameType.Subscribe:
      return parseSubscribe(value, ref);
    case ClientFrameType.Unsubscribe:
      return parseUnsubscribe(value, ref);
    default:
      return invalid("invalid_frame", `Unknown frame type; expected one of: ${Object.values(ClientFrameType).join(", ")}.`, ref);
  }
}

function parsePublish(value: Record<string, unknown>, ref: string | undefined, { maxDataBytes }: ParseOptions): ParseResult {
  const { data, event, channel, idempotencyKey } = value;
  if (channel !== undefined && (typeof channel !== "string" || !isChannelName(channel))) return invalid("invalid_channel", CHANNEL_NAME_RULE, ref);
  if (typeof data !== "string") return invalid("invalid_frame", 'A publish frame needs "data" as a string.', ref);
  if (event !== undefined && (typeof event !== "string" || !isEventName(event))) {
    return invalid("invalid_event", EVENT_NAME_RULE, ref);
  }
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== "string" || !isIdempotencyKey(idempotencyKey))) {
    return invalid("invalid_idempotency_key", IDEMPOTENCY_KEY_RULE, ref);
  }
  // Cheap bound first: a UTF-8 encoding is at most 3 bytes per UTF-16 unit.
  if (data.length * 3 > maxDataBytes && encoder.encode(data).byteLength > maxDataBytes) {
    return invalid("message_too_large", `"data" is larger than ${maxDataBytes} bytes.`, ref);
  }
  const frame: PublishFrame = { type: ClientFrameType.Publish, data };
  if (channel !== undefined) frame.channel = channel;
  if (event !== undefined) frame.event = event;
  if (idempotencyKey !== undefined) frame.idempotencyKey = idempotencyKey;
  if (ref !== undefined) frame.ref = ref;
  return { ok: true, frame };
}

function parseSubscribe(value: Record<string, unknown>, ref: string | undefined): ParseResult {
  const { channel, since, presence, rewind } = value;
  if (typeof channel !== "string" || !isChannelName(channel)) return invalid("invalid_channel", CHANNEL_NAME_RULE, ref);
  const seq = typeof since === "string" ? parseSeq(since) : undefined;
  if (since !== undefined && seq === undefined) return invalid("invalid_request", '"since" must be a message id as a string, like "5".', ref);
  if (presence !== undefined && typeof presence !== "boolean") return invalid("invalid_request", '"presence" must be true or false.', ref);
  if (rewind !== undefined && (typeof rewind !== "number" || !Number.isSafeInteger(rewind) || rewind < 0)) {
    return invalid("invalid_request", `"rewind" must be a whole number of messages (above ${REWIND.max} counts as ${REWIND.max}).`, ref);
  }
  const frame: SubscribeFrame = { type: ClientFrameType.Subscribe, channel };
  if (seq !== undefined) frame.since = seq;
  else if (typeof rewind === "number" && rewind > 0) frame.rewind = Math.min(rewind, REWIND.max);
  if (presence === true) frame.presence = true;
  if (ref !== undefined) frame.ref = ref;
  return { ok: true, frame };
}

function parseUnsubscribe(value: Record<string, unknown>, ref: string | undefined): ParseResult {
  const { channel } = value;
  if (typeof channel !== "string" || !isChannelName(channel)) return invalid("invalid_channel", CHANNEL_NAME_RULE, ref);
  const frame: UnsubscribeFrame = { type: ClientFrameType.Unsubscribe, channel };
  if (ref !== undefined) frame.ref = ref;
  return { ok: true, frame };
}

function invalid(code: ErrorCode, message: string, ref?: string): ParseResult {
  const error: ErrorFrame = { type: ServerFrameType.Error, error: { code, message } };
  if (ref !== undefined) error.ref = ref;
  return { ok: false, error };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Whether a frame is larger than `max` bytes, counting UTF-8 exactly only when it could matter.
 */
function isFrameLargerThan(raw: string | ArrayBuffer, max: number): boolean {
  if (typeof raw !== "string") return raw.byteLength > max;
  // A UTF-16 unit is 1 to 3 UTF-8 bytes.
  if (raw.length * 3 <= max) return false;
  return raw.length > max || encoder.encode(raw).byteLength > max;
}
