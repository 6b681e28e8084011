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
  /** How many recent messages the shard keeps, to resume subscribers without asking the room. */
  windowSize: number;
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
 * restart). The feed delivers each id once, in order: a message it has is skipped, a hole is
 * filled from the room's history before anything after it goes out, and only a gap the history
 * reports is passed on — the shard never invents one. One fill runs at a time; what is pushed
 * meanwhile waits and goes out right after it.
 *
 * @example
 * const feed = new ShardFeed({ position: 0, windowSize: 1000, deliver, deliverGap, fetchHistory });
 * feed.push([{ seq: 1 }, { seq: 2 }]); // delivered at once
 * feed.push([{ seq: 5 }]);             // 3 and 4 are fetched first, then 3, 4, 5 go out
 */
export class ShardFeed<M extends FedMessage> {
  readonly #options: ShardFeedOptions<M>;
  #position: number;
  /** The most recent delivered messages, oldest first, at most `windowSize`. */
  #window: M[] = [];
  /** Pushed while a fill runs, or after a hole: by id. */
  readonly #waiting = new Map<number, M>();
  #filling: Promise<void> | undefined;

  constructor(options: ShardFeedOptions<M>) {
    this.#options = options;
    this.#position = options.position;
  }

  /** The last id delivered. */
  get position(): number {
    return this.#position;
  }

  /** Resolves once no fill is running (for tests and for an orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#filling) await this.#filling;
  }

  /** Takes a push from the room: a batch of messages in id order. */
  push(messages: readonly M[]): void {
    for (const message of messages) if (message.seq > this.#position) this.#waiting.set(message.seq, message);
    this.#drain();
  }

  /**
   * What a subscriber resuming after `since` missed, from the window: `undefined` when the window
   * does not reach back that far (the caller then reads the room's history, once for everyone who
   * resumes from there).
   */
  replayFrom(since: number): M[] | undefined {
    if (since >= this.#position) return [];
    const oldest = this.#window[0]?.seq;
    if (oldest === undefined || since < oldest - 1) return undefined;
    return this.#window.filter((message) => message.seq > since);
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
        if (this.#position === after && this.#waiting.size > 0) return; // nothing moved: wait for a push to retry
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
    this.#window.push(message);
    if (this.#window.length > this.#options.windowSize) this.#window.splice(0, this.#window.length - this.#options.windowSize);
  }
}
