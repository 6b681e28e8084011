import type { Envelope } from "../protocol/envelope";
import { type GapFrame, ServerFrameType, type SubscribedFrame } from "../protocol/frames";
import { encodeSSE } from "../protocol/sse";

/** How the relay's own SSE events are named; `relay.` is reserved for them. */
export const RelayEvent = { Gap: "relay.gap" } as const;

/**
 * What a room sends to one kind of subscriber socket. The room encodes each broadcast once per
 * format, not once per subscriber, and never asks which transport a socket serves beyond this.
 */
export interface SubscriberFormat {
  subscribed(frame: SubscribedFrame): string | undefined;
  message(envelope: Envelope): string;
  gap(frame: GapFrame): string;
}

/** A client's own WebSocket: API.md's JSON frames. */
const json: SubscriberFormat = {
  subscribed: (frame) => JSON.stringify(frame),
  message: (envelope) => JSON.stringify(envelope),
  gap: (frame) => JSON.stringify(frame),
};

/**
 * The internal socket behind a single-channel SSE response: finished SSE text the Worker
 * writes through as it is.
 */
const sse: SubscriberFormat = {
  subscribed: () => undefined,
  message: ({ id, event, data }) => encodeSSE({ id, event, data }),
  gap: ({ channel, after, oldest }) => encodeSSE({ event: RelayEvent.Gap, data: JSON.stringify({ channel, after, oldest }) }),
};

export const subscriberFormats = { ws: json, sse } as const;

/** The kinds of subscriber sockets a room holds, used as hibernation tags. */
export type SubscriberKind = keyof typeof subscriberFormats;

export const SUBSCRIBER_KINDS = Object.keys(subscriberFormats) as SubscriberKind[];

export function isSubscriberKind(value: string | null): value is SubscriberKind {
  return value !== null && Object.hasOwn(subscriberFormats, value);
}

export function gapFrame(channel: string, after: string, oldest: string): GapFrame {
  return { type: ServerFrameType.Gap, channel, after, oldest };
}
