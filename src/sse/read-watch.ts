/**
 * Tells a departed SSE client from a slow one, from what its stream can see: the bytes it handed to
 * the runtime and the bytes still queued. The runtime cancels a stream whose client left only while
 * it is sending the body; a client that reset its connection before or around the response head is
 * never read from and never cancelled, and keep-alives pile up in the queue without failing. So a
 * client that has read nothing of what waited for it for `limitMs` counts as gone. A client reading
 * slowly still reads something (the runtime takes a chunk as soon as it has sent the one before), so
 * its clock starts again each time it does.
 *
 * Pure: the stream calls `observe` at each keep-alive with the time and its byte counts.
 *
 * @example
 * const watch = new ReadWatch(7_500);
 * watch.observe(0, 0, 13); // "reading": bytes wait since now
 * watch.observe(5_000, 0, 28); // "reading": 5 s without a read
 * watch.observe(10_000, 0, 43); // "gone": 10 s without a read
 */
export class ReadWatch {
  readonly #limitMs: number;
  /** What the client had read at the last observation. */
  #readBytes = 0;
  /** Since when bytes have waited without the client reading any; undefined while nothing waits. */
  #waitingSince: number | undefined;

  constructor(limitMs: number) {
    this.#limitMs = limitMs;
  }

  /**
   * `readBytes`: everything the stream handed over minus `queuedBytes`, what still waits in its
   * queue. Returns "gone" once bytes have waited `limitMs` with nothing read.
   */
  observe(nowMs: number, readBytes: number, queuedBytes: number): "reading" | "gone" {
    const progressed = readBytes !== this.#readBytes;
    this.#readBytes = readBytes;
    if (queuedBytes === 0) {
      this.#waitingSince = undefined;
      return "reading";
    }
    if (progressed || this.#waitingSince === undefined) {
      this.#waitingSince = nowMs;
      return "reading";
    }
    return nowMs - this.#waitingSince >= this.#limitMs ? "gone" : "reading";
  }
}

/**
 * How long bytes may wait unread before the client counts as gone: half of KEEPALIVE_SECONDS.
 * Observed at every keep-alive (a third of it), a client that left is ended by the second
 * keep-alive after the first one it did not read, so within KEEPALIVE_SECONDS; the half period
 * leaves room for late timers.
 */
export function unreadLimitMs(keepaliveSeconds: number): number {
  return (keepaliveSeconds * 1000) / 2;
}
