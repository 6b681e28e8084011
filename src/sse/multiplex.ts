import type { RelayConfig } from "../config";
import { type Cursor, formatCursor } from "../protocol/cursor";
import type { ServerFrame } from "../protocol/frames";
import { RelayEvent } from "../protocol/names";
import { closeQuietly } from "../room/sockets";
import { openRoomSocket } from "../room/stub";
import { encodeSSE } from "./encode";
import { SSEStream } from "./stream";

export interface MultiplexSSERequest {
  channels: string[];
  /** Where to resume each channel; channels it leaves out start live. */
  resume: Cursor;
  /** Channels the cursor leaves out start with their last this many retained messages. */
  rewind?: number;
  clientId: string;
  /** The token's `sub`, when it has one. */
  subject?: string;
  presence: boolean;
  /** When the token expires (seconds since the epoch); the rooms end the stream then. */
  expiresAt?: number;
  /** Called once when the stream ends. */
  onEnd(): void;
}

/**
 * One SSE stream over several channels. Each event's data is the JSON envelope and its id is the
 * cursor over every channel of the stream, so `Last-Event-ID` resumes them all at once.
 */
export async function multiplexSSE(
  env: Env,
  config: RelayConfig,
  { channels, resume, rewind = 0, clientId, subject, presence, expiresAt, onEnd }: MultiplexSSERequest,
): Promise<Response> {
  const rooms: WebSocket[] = [];
  /** Position per channel, in the stream's channel order; filled in by each room's greeting. */
  const position: Cursor = new Map();
  const greeted = new Set<string>();
  const stream = new SSEStream({
    keepaliveSeconds: config.keepaliveSeconds,
    bufferBytes: config.sseBufferBytes,
    onEnd: () => {
      for (const room of rooms) closeQuietly(room, 1000, "subscriber left");
      onEnd();
    },
  });

  /** Frames that came before every room greeted, when not every position is known yet. */
  let early: Array<[ServerFrame, string]> | undefined = [];

  const onFrame = (text: string): void => {
    const frame = JSON.parse(text) as ServerFrame;
    if (frame.type !== "batch") return onRoomFrame(frame, text);
    // Each event's data is one envelope's JSON, as a room sends it to a subscriber without batches.
    for (const envelope of frame.messages) onRoomFrame(envelope, JSON.stringify(envelope));
  };

  const onRoomFrame = (frame: ServerFrame, text: string): void => {
    if (frame.type === "subscribed") {
      // A rewound channel starts that far back; its replayed messages then move the position on.
      if (!resume.has(frame.channel)) position.set(frame.channel, Math.max(0, Number(frame.lastId) - rewind));
      greeted.add(frame.channel);
      if (greeted.size < channels.length || !early) return;
      // The first event id names every channel, so even a client that drops at once resumes losslessly.
      stream.write(encodeSSE({ id: formatCursor(position) }));
      const queued = early;
      early = undefined;
      for (const [queuedFrame, queuedText] of queued) deliver(queuedFrame, queuedText);
      return;
    }
    if (early) early.push([frame, text]);
    else deliver(frame, text);
  };

  const deliver = (frame: ServerFrame, text: string): void => {
    switch (frame.type) {
      case "message":
        position.set(frame.channel, Number(frame.id));
        return stream.write(encodeSSE({ id: formatCursor(position), event: frame.event, data: text }));
      case "gap":
        position.set(frame.channel, Number(frame.oldest) - 1);
        return stream.write(
          encodeSSE({
            id: formatCursor(position),
            event: RelayEvent.Gap,
            data: JSON.stringify({ channel: frame.channel, after: frame.after, oldest: frame.oldest }),
          }),
        );
      case "join":
      case "leave":
        return stream.write(encodeSSE({ event: frame.type === "join" ? RelayEvent.Join : RelayEvent.Leave, data: text }));
    }
  };

  // Positions start where each channel resumes; a live-only channel's comes with its greeting.
  for (const channel of channels) position.set(channel, resume.get(channel) ?? 0);
  try {
    const opened = channels.map(async (channel) => {
      const since = resume.get(channel);
      const room = await openRoomSocket(
        env,
        config,
        {
          channel,
          delivery: "socket",
          transport: "sse",
          clientId,
          subject,
          since,
          rewind: since === undefined ? rewind : undefined,
          presence,
          expiresAt,
          batch: true,
        },
        { message: onFrame, close: () => stream.end() },
      );
      rooms.push(room);
      if (!stream.isOpen) closeQuietly(room, 1000, "subscriber left");
    });
    await Promise.all(opened);
  } catch (error) {
    stream.end();
    throw error;
  }
  return stream.response;
}
