/**
 * One socket's publishes, answered in the order they were sent even though each may wait (for the
 * rate limiter) before it is stored: a task runs once every task queued before it is done. A
 * socket that must go (a publish flood, an expired token) leaves only after the publishes it
 * already accepted are stored and acknowledged, so a client is never left to resend what was stored.
 *
 * @example
 * const admitted = admitPublish(…); // starts at once, beside earlier frames' checks
 * await queue.run(async () => ack(store(await admitted)));
 */
export class PublishQueue {
  #tail: Promise<void> = Promise.resolve();
  #leaving = false;

  /** Set once `leave()` was called: the socket's further frames are ignored. */
  get leaving(): boolean {
    return this.#leaving;
  }

  /** Runs `task` after every task queued before it; resolves when it is done. A task's failure is its own: it must answer it. */
  run(task: () => Promise<void> | void): Promise<void> {
    const done = this.#tail.then(task).catch((error: unknown) => console.error("publish task failed", error));
    this.#tail = done;
    return done;
  }

  /** Takes no more tasks; `then` runs once the tasks already queued are done, and the promise resolves after it. */
  async leave(then: () => void): Promise<void> {
    if (this.#leaving) return;
    this.#leaving = true;
    await this.#tail;
    then();
  }
}
