import type { PresenceFrame, PresenceMember } from "../protocol/frames";
import type { MessageId } from "../protocol/ids";
import { Broadcaster } from "../room/broadcaster";
import type { ConnectParams, ShardPlace } from "../room/connect-request";
import type { StoredMessage } from "../room/message-store";
import type { DeliveryCounts } from "../room/observers";
import { store } from "../room/publish";
import type { PublishInput, StoredPage, SubscriberCounts } from "../room/room";
import { roomOf } from "../room/stub";
import { type HistoryFill, ShardFeed } from "./feed";
import { FanoutSender } from "./sender";
import type { FanoutPush, PushAnswer } from "./stub";

/** What a shard tells its room about its subscribers (channel info, presence, the connection limiter). */
export interface ShardCensus extends DeliveryCounts {
  counts: SubscriberCounts;
  /** Filled when asked for. */
  members: PresenceMember[];
  /** Of the leases asked about, those a subscriber here still holds. */
  leases: string[];
}

/** Messages read from the room per call when a shard fills a hole or reaches back (also bounded by size there). */
const READ_PAGE = 1000;
/** A publisher on a shard is acknowledged once its message went out here, or after this long anyway. */
const ACK_WAIT_MS = 10_000;

/**
 * One shard of a hot channel: holds a share of its subscribers exactly as the room holds its own
 * (Broadcaster), and follows the room instead of storing anything of its own. On its first
 * subscriber it attaches to the room, which from then on pushes every message it stores; the
 * ShardFeed turns pushes into each id once, in order, filling holes from the room's history. Each
 * message is kept in the shard's replica (its SQLite, HISTORY_LIMIT deep) before it goes out, so
 * subscribers resume from the shard, also after it was evicted; a resume from before what the
 * replica holds reads the room's history once, for everyone resuming from there. A shard whose
 * subscribers have all left answers the next push so, and the room lets it go.
 */
export class Shard extends Broadcaster {
  /** The attachment this shard follows the room under; undefined while it does not follow. */
  #epoch: string | undefined;
  /** The replica holds every message the room still serves after this id. */
  #floor: number;
  #feed: ShardFeed<StoredMessage> | undefined;
  #attaching: Promise<void> | undefined;
  /** Pushes that came while it attached: after what the room answered, they go through the feed. */
  #early: FanoutPush[] = [];
  /** Reaches back into the room's history one at a time, so resumes from the same place read it once. */
  #reachingBack: Promise<void> = Promise.resolve();
  /** Newcomers between arriving and being accepted: the shard keeps following while there are any. */
  #arriving = 0;
  #place: ShardPlace | undefined;
  /** Publishers waiting for their message to go out here before their ack, by id. */
  readonly #awaitingDelivery = new Map<number, Array<() => void>>();
  /** Joins and leaves here, for the room to pass on; one call in flight. */
  readonly #presenceOut: FanoutSender<PresenceFrame>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { role: "shard" });
    this.#epoch = (this.store.getMeta("epoch") as string | null | undefined) ?? undefined;
    this.#floor = Number(this.store.getMeta("floor") ?? this.store.lastSeq);
    const index = this.store.getMeta("shard_index");
    if (index !== undefined) this.#place = { index: Number(index), count: Number(this.store.getMeta("shard_count") ?? 1) };
    if (this.#epoch !== undefined) this.#feed = this.#newFeed(this.store.lastSeq);
    this.#presenceOut = new FanoutSender((_, frames) => this.#room().shardPresence(this.channelName(), this.#index(), frames));
  }

  /** A push from the room: messages in id order, joins and leaves on other shards. */
  async push(push: FanoutPush): Promise<PushAnswer> {
    this.bind(push.channel);
    if (this.#attaching) {
      this.#early.push(push);
      return this.#answer(push.epoch);
    }
    if (this.#epoch === undefined) return this.#answer(push.epoch);
    if (this.subscriberCount === 0 && this.#arriving === 0) {
      this.#stopFollowing();
      return this.#answer(push.epoch);
    }
    this.#feed?.push(push.messages, push.stored);
    for (const frame of push.presence) this.broadcastPresence(frame);
    return this.#answer(this.#epoch);
  }

  async census(want: { members?: boolean; leases?: string[] } = {}): Promise<ShardCensus> {
    return {
      counts: this.localCounts(),
      members: want.members ? this.localMembers() : [],
      leases: this.localLeases(want.leases ?? []),
      ...this.observers.report(),
    };
  }

  /**
   * Its share of MAX_SUBSCRIBERS_PER_CHANNEL (the shares add up to it exactly), at most
   * MAX_SUBSCRIBERS_PER_SHARD. A newcomer refused by a full shard retries and lands elsewhere.
   */
  protected capacity(): number {
    const { index, count } = this.#place ?? { index: 0, count: 1 };
    const cap = this.config.maxSubscribersPerChannel;
    const share = Math.floor(cap / count) + (index < cap % count ? 1 : 0);
    return Math.min(this.config.maxSubscribersPerShard, share);
  }

  protected override prepare(params: ConnectParams): Promise<void> {
    return this.#prepare(params);
  }

  async #prepare(params: ConnectParams): Promise<void> {
    if (!params.shard) throw new Error("a shard takes subscribers placed on it by the Worker");
    this.#remember(params.shard);
    this.#arriving += 1;
    try {
      await this.#follow();
      const lastSeq = this.store.lastSeq;
      const from = params.since ?? (params.rewind ? Math.max(0, lastSeq - params.rewind) : undefined);
      if (from !== undefined) await this.#reachBack(Math.min(from, lastSeq));
    } finally {
      this.#arriving -= 1;
    }
  }

  protected async storeFromSocket(input: PublishInput): Promise<MessageId | undefined> {
    const { id } = await store(this.env, { channel: this.channelName(), input });
    await this.#deliveredHere(Number(id));
    return id;
  }

  protected override announced(frame: PresenceFrame): void {
    this.#presenceOut.add(frame, [0]);
  }

  /** What the room hears back from a push: the subscribers here, and what they were sent since the last answer. */
  #answer(epoch: string | undefined): PushAnswer {
    return { subscribers: this.subscriberCount, epoch, ...this.observers.report() };
  }

  /** Attaches to the room, once, if it does not follow it yet. */
  #follow(): Promise<void> {
    if (this.#epoch !== undefined) return Promise.resolve();
    this.#attaching ??= this.#room()
      .attachShard(this.channelName(), this.#index())
      .then(({ lastSeq, epoch }) => {
        // What the replica held before no longer joins up with what comes next; nobody here needs it.
        if (this.store.lastSeq !== lastSeq) this.store.restartAt(lastSeq);
        this.#floor = lastSeq;
        this.#epoch = epoch;
        this.store.setMeta("epoch", epoch);
        this.store.setMeta("floor", lastSeq);
        this.#feed = this.#newFeed(lastSeq);
        for (const push of this.#early.splice(0)) {
          this.#feed.push(push.messages, push.stored);
          for (const frame of push.presence) this.broadcastPresence(frame);
        }
      })
      .finally(() => {
        this.#attaching = undefined;
        this.#early = [];
      });
    return this.#attaching;
  }

  #stopFollowing(): void {
    this.#epoch = undefined;
    this.#feed = undefined;
    this.store.setMeta("epoch", null);
  }

  /** Makes the replica hold every message the room serves after `since`, reading the room's history once. */
  #reachBack(since: number): Promise<void> {
    const reach = this.#reachingBack.then(async () => {
      const floor = this.#floor;
      let after = since;
      while (after < floor) {
        const page = await this.#room().storedAfter(this.channelName(), after, Math.min(READ_PAGE, floor - after));
        const older = page.messages.filter((message) => message.seq <= floor);
        this.store.copy(older, this.config.historyLimit);
        const last = older.at(-1)?.seq;
        if (last === undefined) break;
        after = last;
      }
      this.#floor = Math.min(this.#floor, since);
      this.store.setMeta("floor", this.#floor);
    });
    this.#reachingBack = reach.catch(() => {});
    return reach;
  }

  #newFeed(position: number): ShardFeed<StoredMessage> {
    return new ShardFeed<StoredMessage>({
      position,
      deliver: (messages) => {
        this.store.copy(messages, this.config.historyLimit);
        for (const message of messages) this.deliver(message);
        this.#acknowledgeThrough(messages.at(-1)!.seq);
      },
      deliverGap: ({ after, oldest }) => {
        this.store.skipThrough(oldest - 1);
        this.deliverGap(after, oldest);
        this.#acknowledgeThrough(oldest - 1);
      },
      fetchHistory: async (after, through) =>
        fillFrom(await this.#room().storedAfter(this.channelName(), after, Math.min(READ_PAGE, through - after)), after, through),
    });
  }

  /** Resolves once message `seq` went out here (at once if it already did), or after ACK_WAIT_MS. */
  #deliveredHere(seq: number): Promise<void> {
    if ((this.#feed?.position ?? 0) >= seq) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ACK_WAIT_MS);
      const waiting = this.#awaitingDelivery.get(seq) ?? [];
      waiting.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.#awaitingDelivery.set(seq, waiting);
    });
  }

  #acknowledgeThrough(seq: number): void {
    for (const [waitingFor, resolvers] of this.#awaitingDelivery) {
      if (waitingFor > seq) continue;
      this.#awaitingDelivery.delete(waitingFor);
      for (const resolve of resolvers) resolve();
    }
  }

  #remember(place: ShardPlace): void {
    if (this.#place?.index === place.index && this.#place.count === place.count) return;
    this.#place = place;
    this.store.setMeta("shard_index", place.index);
    this.store.setMeta("shard_count", place.count);
  }

  #index(): number {
    if (!this.#place) throw new Error("shard used before it was placed");
    return this.#place.index;
  }

  #room() {
    return roomOf(this.env, this.channelName());
  }
}

/** A page of the room's stored messages as a feed's fill: the messages up to `through`, and a gap when retention took some after `after`. */
export function fillFrom(page: StoredPage, after: number, through: number): HistoryFill<StoredMessage> {
  const messages = page.messages.filter((message) => message.seq <= through);
  const oldest = page.oldestSeq ?? page.lastSeq + 1;
  return oldest > after + 1 ? { messages, gap: { after, oldest } } : { messages };
}
