import type { RelayConfig } from "../config";
import type { Envelope } from "../protocol/envelope";
import type { GapFrame, ServerFrame } from "../protocol/frames";
import type { MessageId } from "../protocol/ids";
import { ANSWER_MAX_CHARS } from "../room/replay";
import { closeQuietly } from "../room/sockets";
import { openRoomSocket } from "../room/stub";

export interface LongPollRequest {
  channel: string;
  /** Answer with what came after this id; without it, wait for the next new message. */
  since?: number;
  /** Without `since`: answer with the last this many retained messages (none: wait for the next). */
  rewind?: number;
  timeoutMs: number;
  clientId: string;
}

export interface LongPollAnswer {
  messages: Envelope[];
  lastId: MessageId;
  /** Present when messages after `since` are no longer retained. */
  gap?: { after: MessageId; oldest: MessageId };
}

/**
 * Long-poll as a short-lived subscriber: the same room socket as every other subscriber, so a
 * publish wakes all waiting pollers at once. The room greets with its last id and replays what is
 * after `since`; once that replay is in (or ANSWER_MAX_CHARS of it), or the first live message
 * arrives, the answer goes out.
 */
export function longPoll(env: Env, config: RelayConfig, { channel, since, rewind, timeoutMs, clientId }: LongPollRequest): Promise<LongPollAnswer> {
  return new Promise<LongPollAnswer>((resolve, reject) => {
    const messages: Envelope[] = [];
    let chars = 0;
    let lastId: MessageId = "0";
    let gap: LongPollAnswer["gap"];
    /** The id that completes the replay; undefined until the greeting says, null when waiting for live. */
    let replayUntil: number | null | undefined;
    let socket: WebSocket | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    let timedOut = false;

    const answer = (): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      if (socket) closeQuietly(socket, 1000, "poll answered");
      resolve({ messages, lastId: messages.at(-1)?.id ?? lastId, ...(gap ? { gap } : {}) });
    };
    const caughtUp = (id: number): boolean => replayUntil === null || (replayUntil !== undefined && id >= replayUntil);

    /** Adds a message to the answer; whether the answer went out. */
    const take = (message: Envelope, size: number): boolean => {
      // An answer holds at most ANSWER_MAX_CHARS of messages (at least one); the client polls on from its lastId.
      if (messages.length > 0 && chars + size > ANSWER_MAX_CHARS) {
        answer();
        return true;
      }
      messages.push(message);
      chars += size;
      if (caughtUp(Number(message.id))) answer();
      return settled;
    };

    const onFrame = (frame: ServerFrame, size: number): void => {
      // Frames still queued on the socket after the answer went out belong to the next poll.
      if (settled) return;
      switch (frame.type) {
        case "subscribed":
          lastId = frame.lastId;
          // A replay (after `since`, or a rewind) runs up to the last id the greeting names.
          replayUntil = (since !== undefined ? since < Number(frame.lastId) : (rewind ?? 0) > 0 && Number(frame.lastId) > 0) ? Number(frame.lastId) : null;
          if (timedOut && replayUntil === null) answer();
          break;
        case "gap":
          gap = { after: (frame as GapFrame).after, oldest: frame.oldest };
          // Everything after `since` is gone: nothing more will be replayed.
          if (caughtUp(Number(frame.oldest) - 1)) answer();
          break;
        case "message":
          take(frame, size);
          break;
        case "batch":
          for (const message of frame.messages) if (take(message, JSON.stringify(message).length)) break;
          break;
      }
    };

    openRoomSocket(
      env,
      config,
      { channel, delivery: "socket", transport: "poll", clientId, since, rewind: since === undefined ? rewind : undefined, batch: true },
      { message: (text) => onFrame(JSON.parse(text) as ServerFrame, text.length), close: answer },
    ).then((opened) => {
      socket = opened;
      if (settled) closeQuietly(opened, 1000, "poll answered");
      // A timeout never cuts a replay short: what is already stored is always answered.
      else
        timer = setTimeout(() => {
          timedOut = true;
          if (replayUntil === null) answer();
        }, timeoutMs);
    }, reject);
  });
}
