/**
 * A token bucket: `burst` tokens, refilled at `ratePerSecond`. Pure, with time passed in, so the
 * room and the multi-channel socket can meter a client's publishes the same way.
 *
 * @example
 * const bucket = new TokenBucket(50, 100);
 * if (!bucket.take(Date.now())) reject();
 */
export class TokenBucket {
  #tokens: number;
  #updatedAt: number | undefined;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
  }

  /** Takes one token if there is one. */
  take(nowMs: number): boolean {
    if (this.#updatedAt !== undefined) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((nowMs - this.#updatedAt) / 1000) * this.ratePerSecond);
    }
    this.#updatedAt = nowMs;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Seconds until the next token, rounded up: what `Retry-After` says. */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.ratePerSecond));
  }
}

/**
 * Meters one client's publishes: over the rate they are refused; a client that keeps sending
 * after `burst` refusals in a row is flooding and should be disconnected.
 */
export class PublishMeter {
  readonly #bucket: TokenBucket;
  #refusedInARow = 0;

  constructor(ratePerSecond: number, burst: number) {
    this.#bucket = new TokenBucket(ratePerSecond, burst);
  }

  check(nowMs: number): "ok" | "refuse" | "disconnect" {
    if (this.#bucket.take(nowMs)) {
      this.#refusedInARow = 0;
      return "ok";
    }
    this.#refusedInARow += 1;
    return this.#refusedInARow > this.#bucket.burst ? "disconnect" : "refuse";
  }
}
