/**
 * The room's side of fan-out: pushes what the room stores to each shard that follows it, in
 * order, with at most one call in flight per shard. What is stored while a call runs waits and goes
 * in the next call together — the flow control: a slow shard gets larger batches, never more calls.
 * A call that fails is not retried with the same batch: the next push starts after it, and the
 * shard fills the hole from history itself (src/fanout/feed.ts).
 *
 * @example
 * const sender = new FanoutSender((shard, batch) => shardStub(shard).push(batch));
 * sender.add(message, [0, 3, 7]); // one call per shard now; more adds meanwhile wait for it
 */
export class FanoutSender<M> {
  readonly #pending = new Map<number, M[]>();
  readonly #busy = new Set<number>();
  readonly #call: (shard: number, batch: M[]) => Promise<void>;
  readonly #maxBatch: number;
  /** Calls made and failed: what the room does per publish is what the benchmark reports. */
  calls = 0;
  failures = 0;

  constructor(call: (shard: number, batch: M[]) => Promise<void>, maxBatch = 256) {
    this.#call = call;
    this.#maxBatch = maxBatch;
  }

  /** Queues `item` for each of `shards`, and sends it at once to those with no call in flight. */
  add(item: M, shards: Iterable<number>): void {
    for (const shard of shards) {
      let queue = this.#pending.get(shard);
      if (!queue) {
        queue = [];
        this.#pending.set(shard, queue);
      }
      queue.push(item);
      this.#pump(shard);
    }
  }

  /** Resolves once no call is in flight and nothing waits (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#busy.size > 0 || this.#pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  #pump(shard: number): void {
    if (this.#busy.has(shard)) return;
    const queue = this.#pending.get(shard);
    if (!queue) return;
    const batch = queue.splice(0, this.#maxBatch);
    if (queue.length === 0) this.#pending.delete(shard);
    this.#busy.add(shard);
    this.calls += 1;
    this.#call(shard, batch)
      .catch(() => {
        this.failures += 1;
      })
      .finally(() => {
        this.#busy.delete(shard);
        this.#pump(shard);
      });
  }
}
