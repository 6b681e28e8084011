import type { MessageLog, StoredMessage } from "../room/message-log";

export interface WindowLimits {
  /** The most messages kept (HISTORY_LIMIT: the room keeps no more either). */
  maxMessages: number;
  /** The most characters of message data kept: a bound on the shard's memory. */
  maxChars: number;
}

/**
 * The recent messages a shard keeps in memory to replay to its subscribers, in id order: it holds
 * every message the room still serves after `floor`, up to `lastSeq` (the last one the shard
 * delivered). A resume from `floor` on is served from here; from before it, the shard first reads
 * the room's history back to there (`reachBack`). Nothing here is written to storage: a shard's
 * messages cost no row per message, and a shard that restarts starts with an empty window.
 *
 * @example
 * const window = new MessageWindow(17, { maxMessages: 1000, maxChars: 8 << 20 });
 * window.append([m18, m19]);    // delivered live
 * window.covers(17);            // true: 18 and 19 are here
 * window.reachBack(10, [m11, …, m17]); // read from the room for a resume from 10
 */
export class MessageWindow implements MessageLog {
  readonly #limits: WindowLimits;
  /** Oldest first, ids increasing (a gap the room's retention caused may lie between two). */
  #messages: StoredMessage[] = [];
  #chars = 0;
  #lastSeq: number;
  #floor: number;

  constructor(lastSeq: number, limits: WindowLimits) {
    this.#limits = limits;
    this.#lastSeq = lastSeq;
    this.#floor = lastSeq;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Every message the room serves after this id is here. */
  get floor(): number {
    return this.#floor;
  }

  /** Whether a subscriber resuming after `since` can be replayed from here alone. */
  covers(since: number): boolean {
    return since >= this.#floor;
  }

  /** Takes newly delivered messages (ids above `lastSeq`, in order); drops the oldest past the limits unless `keepOld` (a replay is being read from them). */
  append(messages: readonly StoredMessage[], keepOld = false): void {
    for (const message of messages) {
      if (message.seq <= this.#lastSeq) continue;
      this.#messages.push(message);
      this.#chars += message.data.length;
      this.#lastSeq = message.seq;
    }
    if (!keepOld) this.#trim();
  }

  /** Takes what the room served after `since`, older than anything here, for a resume from there: the window then covers `since`. */
  reachBack(since: number, messages: readonly StoredMessage[]): void {
    if (since >= this.#floor) return;
    const older = messages.filter((message) => message.seq > since && message.seq <= this.#floor);
    for (const message of older) this.#chars += message.data.length;
    this.#messages = [...older, ...this.#messages.filter((message) => message.seq > this.#floor)];
    this.#floor = since;
  }

  /** The room's retention took everything up to `seq` (a gap): nothing before it is replayed from here any more. */
  skipThrough(seq: number): void {
    this.#drop((message) => message.seq <= seq);
    this.#lastSeq = Math.max(this.#lastSeq, seq);
    this.#floor = Math.max(this.#floor, seq);
  }

  oldestSeq(notBefore: number): number | null {
    return this.#messages.find((message) => message.ts >= notBefore)?.seq ?? null;
  }

  oldestTs(): number | null {
    return this.#messages[0]?.ts ?? null;
  }

  *after(seq: number, limit: number, notBefore: number): Iterable<StoredMessage> {
    let yielded = 0;
    for (let i = this.#firstAfter(seq); i < this.#messages.length && yielded < limit; i++) {
      const message = this.#messages[i]!;
      if (message.ts < notBefore) continue;
      yield message;
      yielded += 1;
    }
  }

  pruneOlderThan(notBefore: number): void {
    this.#drop((message) => message.ts < notBefore);
  }

  #trim(): void {
    let drop = 0;
    let chars = this.#chars;
    const { maxMessages, maxChars } = this.#limits;
    // At least the newest message stays, however large.
    while (drop < this.#messages.length - 1 && (this.#messages.length - drop > maxMessages || chars > maxChars)) {
      chars -= this.#messages[drop]!.data.length;
      drop += 1;
    }
    if (drop === 0) return;
    this.#floor = Math.max(this.#floor, this.#messages[drop - 1]!.seq);
    this.#messages = this.#messages.slice(drop);
    this.#chars = chars;
  }

  #drop(gone: (message: StoredMessage) => boolean): void {
    const kept = this.#messages.filter((message) => !gone(message));
    if (kept.length === this.#messages.length) return;
    this.#messages = kept;
    this.#chars = kept.reduce((sum, message) => sum + message.data.length, 0);
  }

  /** The index of the first message with an id above `seq` (binary search: a reconnect storm replays from here often). */
  #firstAfter(seq: number): number {
    let low = 0;
    let high = this.#messages.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#messages[middle]!.seq <= seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
