import type { Envelope } from "../protocol/envelope";
import type { GapFrame, PresenceFrame, SubscribedFrame } from "../protocol/frames";
import { RelayEvent } from "../protocol/names";
import { encodeSSE } from "../sse/encode";

/**
 * What a room sends to one kind of subscriber. The room encodes each broadcast once per format,
 * not once per subscriber, and never asks which transport a subscriber uses beyond this.
 */
export interface SubscriberFormat {
  /** The greeting; `position` is where delivery starts (the resume id, else the last id). */
  subscribed(frame: SubscribedFrame, position: number): string | undefined;
  message(envelope: Envelope): string;
  gap(frame: GapFrame): string;
  presence(frame: PresenceFrame): string;
}

/** API.md's JSON frames: a client's own WebSocket, and the Worker's multi-channel and long-poll sockets. */
const json: SubscriberFormat = {
  subscribed: (frame) => JSON.stringify(frame),
  message: (envelope) => JSON.stringify(envelope),
  gap: (frame) => JSON.stringify(frame),
  presence: (frame) => JSON.stringify(frame),
};

/** A single-channel SSE stream, which the room holds and writes to itself. */
const sse: SubscriberFormat = {
  // An id with no data sets the browser's Last-Event-ID without firing an event, so a client that
  // drops before its first message still resumes from where it started.
  subscribed: (_frame, position) => encodeSSE({ id: String(position) }),
  message: ({ id, event, data }) => encodeSSE({ id, event, data }),
  gap: ({ channel, after, oldest }) => encodeSSE({ event: RelayEvent.Gap, data: JSON.stringify({ channel, after, oldest }) }),
  presence: ({ type, channel, subscriber }) =>
    encodeSSE({ event: type === "join" ? RelayEvent.Join : RelayEvent.Leave, data: JSON.stringify({ channel, subscriber }) }),
};

export const subscriberFormats = { json, sse } as const;
