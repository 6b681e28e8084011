import { packFrames } from "../protocol/batch";
import { CloseCode } from "../protocol/close-codes";
import type { Envelope } from "../protocol/envelope";
import { type GapFrame, ServerFrameType } from "../protocol/frames";
import { formatId } from "../protocol/ids";
import type { MessageLog, StoredMessage } from "./message-log";
import { closeQuietly } from "./sockets";
import type { SubscriberFormat } from "./subscriber-formats";

/**
 * How much of a replay the room reads and sends at once (characters of encoded frames, at least one
 * message): a replay of a full channel (1,000 × 64 KB) is sent a page per task, never built whole.
 */
export const REPLAY_PAGE_CHARS = 256 * 1024;

/** The most characters of messages one history page or long-poll answer carries (at least one message). */
export const ANSWER_MAX_CHARS = 1024 * 1024;

/** One page of a replay: its frames, and the id they reach. */
export interface ReplayPage {
  frames: string[];
  /** It starts with a gap notice. */
  gap: boolean;
  /** The last id this page covers (a gap's end or the last message's id); `since` when it is empty. */
  until: number;
  chars: number;
}

export interface ReplayReader {
  log: MessageLog;
  channel: string;
  /** Messages older than this (ms since the epoch) are no longer served. */
  notBefore: number;
  /** The most messages a page may hold. */
  maxMessages: number;
  envelope(stored: StoredMessage): Envelope;
}

/**
 * Reads the page of a replay that follows `since`: a gap notice first when messages after it are
 * gone (also when they were pruned while an earlier page was sent), then messages up to
 * `maxChars` characters of frames.
 */
export function readReplayPage(
  reader: ReplayReader,
  format: SubscriberFormat,
  since: number,
  { maxChars = REPLAY_PAGE_CHARS, batchMaxBytes }: { maxChars?: number; batchMaxBytes?: number } = {},
): ReplayPage {
  const { log } = reader;
  const frames: string[] = [];
  const messages: string[] = [];
  let until = since;
  let chars = 0;
  const oldest = log.oldestSeq(reader.notBefore);
  if (oldest === null || oldest > since + 1) {
    const gap: GapFrame = { type: ServerFrameType.Gap, channel: reader.channel, after: formatId(since), oldest: formatId(oldest ?? log.lastSeq + 1) };
    frames.push(format.gap(gap));
    until = (oldest ?? log.lastSeq + 1) - 1;
  }
  const gapped = frames.length > 0;
  for (const stored of log.after(until, reader.maxMessages, reader.notBefore)) {
    const frame = format.message(reader.envelope(stored));
    messages.push(frame);
    chars += frame.length;
    until = stored.seq;
    if (chars >= maxChars) break;
  }
  // A socket that takes batch frames gets its replay's messages packed too (src/protocol/batch.ts).
  frames.push(...(batchMaxBytes === undefined ? messages : packFrames(messages, batchMaxBytes)));
  return { frames, gap: gapped, until, chars };
}

export interface CatchUpOptions {
  /** The page after `since` for this socket. */
  page(since: number, ws: WebSocket): ReplayPage;
  lastSeq(): number;
  /** A socket started catching up; `first` when no other one was. */
  started(ws: WebSocket, first: boolean): void;
  /** A socket is done (caught up, or gone); `idle` when no other one is catching up. */
  done(ws: WebSocket, idle: boolean): void;
}

/**
 * The sockets still being sent their replay, one page per task. Until a socket has caught up,
 * live messages skip it (`has`): its next page reads them from the store in order, and the page
 * that reaches the channel's last id lets it join the live stream with no gap and no duplicate,
 * both happening in one synchronous step of the room.
 */
export class CatchUp {
  readonly #sockets = new Set<WebSocket>();
  readonly #options: CatchUpOptions;

  constructor(options: CatchUpOptions) {
    this.#options = options;
  }

  /** Some socket is being sent its replay. */
  get active(): boolean {
    return this.#sockets.size > 0;
  }

  has(ws: WebSocket): boolean {
    return this.#sockets.size > 0 && this.#sockets.has(ws);
  }

  /** Sends the rest of a replay after `from`, a page per task, then lets live messages through. */
  start(ws: WebSocket, from: number): void {
    this.#options.started(ws, this.#sockets.size === 0);
    this.#sockets.add(ws);
    let position = from;
    const step = (): void => {
      if (ws.readyState !== WebSocket.OPEN) return this.#finish(ws);
      const page = this.#options.page(position, ws);
      try {
        for (const frame of page.frames) ws.send(frame);
      } catch {
        closeQuietly(ws, CloseCode.InternalError, "send failed");
        return this.#finish(ws);
      }
      position = page.until;
      if (position >= this.#options.lastSeq()) return this.#finish(ws);
      // The next page in another task: the runtime sends this one meanwhile, and other work gets a turn.
      setTimeout(step, 0);
    };
    setTimeout(step, 0);
  }

  #finish(ws: WebSocket): void {
    if (!this.#sockets.delete(ws)) return;
    this.#options.done(ws, this.#sockets.size === 0);
  }
}
