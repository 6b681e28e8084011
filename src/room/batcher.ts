import { BATCH_OVERHEAD, packFrames, utf8Length } from "../protocol/batch";

/** How long and how large a batch may grow (BATCH_MAX_DELAY_MS, BATCH_MAX_BYTES). */
export interface BatchLimits {
  /** Longest a message waits for others to share its frame, in ms. */
  maxDelayMs: number;
  /** Largest batch frame, in UTF-8 bytes; a message larger than this goes out alone. */
  maxBytes: number;
}

export interface BatcherOptions extends BatchLimits {
  /** Sends one frame (an envelope, or a batch frame) to every subscriber that takes batches. */
  send(frame: string): void;
  /** Calls `fn` once, `ms` from now: `setTimeout` in a room, a fake clock in tests. */
  setTimer(fn: () => void, ms: number): void;
}

/**
 * When a room's messages go out to the subscribers that take batch frames, and in which frames.
 *
 * A message on a quiet channel goes out at once, as its envelope. Every send opens a window of
 * `maxDelayMs`: messages published while it is open wait, and go out together when it ends (which
 * opens the next window, as work is going out again); a window that ends with nothing waiting
 * leaves the channel quiet. So only a message that follows another closely waits, never longer
 * than `maxDelayMs` (a busy room's timer can only fire later than that when the room is busy
 * sending). A frame's worth of waiting messages (`maxBytes`) goes out at once. `flush()` sends what
 * waits now, for anything that must come after it: a presence frame, a newcomer's replay.
 *
 * @example
 * const batcher = new MessageBatcher({ maxDelayMs: 5, maxBytes: 65536, send, setTimer: setTimeout });
 * batcher.add(m1); // sent now
 * batcher.add(m2); batcher.add(m3); // sent 5 ms later, as one batch frame
 */
export class MessageBatcher {
  readonly #options: BatcherOptions;
  #held: string[] = [];
  /** The held envelopes' bytes, with one comma each: a batch frame of them is BATCH_OVERHEAD - 1 more. */
  #heldBytes = 0;
  #windowOpen = false;
  /** What must happen once the waiting messages are sent (acks to a publisher), in order. */
  #afterFlush: Array<() => void> = [];

  constructor(options: BatcherOptions) {
    this.#options = options;
  }

  /** Messages waiting for the window to end. */
  get waiting(): number {
    return this.#held.length;
  }

  /** Takes one message's envelope, as JSON text, in id order. */
  add(envelope: string): void {
    if (!this.#windowOpen) {
      this.#options.send(envelope);
      this.#openWindow();
      return;
    }
    const bytes = utf8Length(envelope);
    // A frame that would grow past the maximum goes out now, and this message starts the next.
    if (this.#held.length > 0 && BATCH_OVERHEAD + this.#heldBytes + bytes > this.#options.maxBytes) this.flush();
    this.#held.push(envelope);
    this.#heldBytes += bytes + 1;
    if (BATCH_OVERHEAD + this.#heldBytes - 1 >= this.#options.maxBytes) this.flush();
  }

  /** Sends the waiting messages now (the window stays open). */
  flush(): void {
    if (this.#held.length === 0) return;
    const held = this.#held;
    const after = this.#afterFlush;
    this.#held = [];
    this.#heldBytes = 0;
    this.#afterFlush = [];
    for (const frame of packFrames(held, this.#options.maxBytes)) this.#options.send(frame);
    for (const fn of after) fn();
  }

  /** Runs `fn` once the messages waiting now are sent: at once when none waits. */
  afterFlush(fn: () => void): void {
    if (this.#held.length === 0) fn();
    else this.#afterFlush.push(fn);
  }

  #openWindow(): void {
    this.#windowOpen = true;
    this.#options.setTimer(() => this.#endWindow(), this.#options.maxDelayMs);
  }

  #endWindow(): void {
    this.#windowOpen = false;
    if (this.#held.length === 0) return;
    this.flush();
    this.#openWindow();
  }
}
