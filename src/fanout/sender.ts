/**
 * The room's side of fan-out: pushes each stored message to every shard, in id order, with at
 * most one call in flight per shard. What is stored while a call runs waits and goes in the next
 * call together — the flow control: a slow shard gets larger batches, never more calls. A call
 * that fails is not retried with the same batch: the next push starts after the last id the
 * shard took, and the shard fills the hole from history itself (src/fanout/feed.ts).
 *
 * @example
 * const sender = new FanoutSender(8, (shard, batch) => shardStub(shard).push(batch));
 * sender.add({ seq: 18, … }); // one call per shard now; more adds meanwhile wait for it
 */
export class FanoutSender<M> {
  readonly #pending: M[][];
  readonly #busy: boolean[];
  readonly #call: (shard: number, batch: M[]) => Promise<void>;
  readonly #maxBatch: number;
  /** Calls made and failed, per shard: what the room does per publish is what the benchmark reports. */
  calls = 0;
  failures = 0;

  constructor(shards: number, call: (shard: number, batch: M[]) => Promise<void>, maxBatch = 256) {
    this.#pending = Array.from({ length: shards }, () => []);
    this.#busy = Array.from({ length: shards }, () => false);
    this.#call = call;
    this.#maxBatch = maxBatch;
  }

  get shards(): number {
    return this.#pending.length;
  }

  add(message: M): void {
    for (let shard = 0; shard < this.#pending.length; shard++) {
      this.#pending[shard]!.push(message);
      this.#pump(shard);
    }
  }

  /** Resolves once no call is in flight and nothing waits (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#busy.some(Boolean) || this.#pending.some((queue) => queue.length > 0)) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  #pump(shard: number): void {
    if (this.#busy[shard]) return;
    const queue = this.#pending[shard]!;
    if (queue.length === 0) return;
    const batch = queue.splice(0, this.#maxBatch);
    this.#busy[shard] = true;
    this.calls += 1;
    this.#call(shard, batch)
      .catch(() => {
        this.failures += 1;
      })
      .finally(() => {
        this.#busy[shard] = false;
        this.#pump(shard);
      });
  }
}
