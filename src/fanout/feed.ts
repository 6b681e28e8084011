/** A message as a shard relays it: its id as a number and what subscribers are sent. */
export interface FedMessage {
  seq: number;
}

/** What the room's history answers a shard that asks for a hole: the messages, and a gap when retention took some. */
export interface HistoryFill<M extends FedMessage> {
  messages: M[];
  /** Set when messages after `after` are no longer retained; delivery resumes at `oldest`. */
  gap?: { after: number; oldest: number };
}

export interface ShardFeedOptions<M extends FedMessage> {
  /** The last id every subscriber of the shard has already been given (where the shard starts). */
  position: number;
  /** Hands messages, in id order and each once, to the shard's subscribers. */
  deliver(messages: M[]): void;
  /** A gap the room's retention caused, before the messages after it. */
  deliverGap(gap: { after: number; oldest: number }): void;
  /** Asks the room's history for what comes after `after`, up to `through`. */
  fetchHistory(after: number, through: number): Promise<HistoryFill<M>>;
}

/**
 * The ordering core of a fan-out shard. The room pushes batches of messages; pushes can be lost
 * (a failed call), repeated (a retry) or start ahead of the shard (its own eviction, a room
 * restart), or not come at all for a while (a room restarted between storing and pushing: its next
 * push says how far it has stored). The feed delivers each id once, in order: a message it has is skipped, a hole is
 * filled from the room's history before anything after it goes out, and only a gap the history
 * reports is passed on — the shard never invents one. One fill runs at a time; what is pushed
 * meanwhile waits and goes out right after it.
 *
 * @example
 * const feed = new ShardFeed({ position: 0, deliver, deliverGap, fetchHistory });
 * feed.push([{ seq: 1 }, { seq: 2 }]); // delivered at once
 * feed.push([{ seq: 5 }]);             // 3 and 4 are fetched first, then 3, 4, 5 go out
 * feed.push([], 7);                    // the room has stored up to 7: 6 and 7 are fetched
 */
export class ShardFeed<M extends FedMessage> {
  readonly #options: ShardFeedOptions<M>;
  #position: number;
  /** The highest id the room said it has stored. */
  #stored: number;
  /** Pushed while a fill runs, or after a hole: by id. */
  readonly #waiting = new Map<number, M>();
  #filling: Promise<void> | undefined;

  constructor(options: ShardFeedOptions<M>) {
    this.#options = options;
    this.#position = options.position;
    this.#stored = options.position;
  }

  /** The last id delivered. */
  get position(): number {
    return this.#position;
  }

  /** Resolves once no fill is running (for tests and for an orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#filling) await this.#filling;
  }

  /** Takes a push from the room: a batch of messages in id order, and how far the room has stored (when it says). */
  push(messages: readonly M[], stored = 0): void {
    for (const message of messages) {
      if (message.seq > this.#position) this.#waiting.set(message.seq, message);
      stored = Math.max(stored, message.seq);
    }
    this.#stored = Math.max(this.#stored, stored);
    this.#drain();
  }

  #drain(): void {
    if (this.#filling) return;
    const ready: M[] = [];
    for (let next = this.#waiting.get(this.#position + 1); next; next = this.#waiting.get(this.#position + 1)) {
      this.#waiting.delete(next.seq);
      this.#advance(next);
      ready.push(next);
    }
    if (ready.length > 0) this.#options.deliver(ready);
    if (this.#waiting.size > 0) this.#fill(Math.min(...this.#waiting.keys()) - 1);
    else if (this.#stored > this.#position) this.#fill(this.#stored);
  }

  /** Fetches the hole from the position up to `through`, delivers it, then what waited. */
  #fill(through: number): void {
    const after = this.#position;
    this.#filling = this.#options
      .fetchHistory(after, through)
      .then(
        (fill) => this.#take(after, fill),
        () => {
          // The history could not be read: try again with the next push (or the next fill below).
        },
      )
      .finally(() => {
        this.#filling = undefined;
        if (this.#position === after) return; // nothing moved: wait for the next push to try again
        this.#drain();
      });
  }

  #take(after: number, { messages, gap }: HistoryFill<M>): void {
    if (this.#position !== after) return;
    if (gap && gap.after >= this.#position && gap.oldest > this.#position + 1) {
      this.#options.deliverGap({ after: this.#position, oldest: gap.oldest });
      this.#position = gap.oldest - 1;
      for (const seq of this.#waiting.keys()) if (seq <= this.#position) this.#waiting.delete(seq);
    }
    const ready: M[] = [];
    for (const message of messages) {
      if (message.seq !== this.#position + 1) continue;
      this.#waiting.delete(message.seq);
      this.#advance(message);
      ready.push(message);
    }
    if (ready.length > 0) this.#options.deliver(ready);
  }

  #advance(message: M): void {
    this.#position = message.seq;
  }
}
