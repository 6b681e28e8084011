/** A message as the room stores it; `seq` is its id as a number. */
export interface StoredMessage {
  seq: number;
  event: string;
  data: string;
  encoding: "base64" | null;
  ts: number;
}

/**
 * The messages a subscriber is replayed from: the channel's log in its room (MessageStore), the
 * recent window a shard keeps in memory (src/fanout/window.ts). Synchronous, so a caller that does
 * not `await` in between sees them and joins the live stream atomically.
 */
export interface MessageLog {
  /** The last id there is; no message after it exists yet. */
  readonly lastSeq: number;
  /** The oldest id held that is not older than `notBefore`, or null when none is. */
  oldestSeq(notBefore: number): number | null;
  /** The time of the oldest message held, or null when there is none. */
  oldestTs(): number | null;
  /** Messages after `seq`, oldest first, not older than `notBefore`. Iterate before the next `await`. */
  after(seq: number, limit: number, notBefore: number): Iterable<StoredMessage>;
  /** Drops the messages older than `notBefore`. */
  pruneOlderThan(notBefore: number): void;
}
