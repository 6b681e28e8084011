import { RelayError } from "../protocol/errors";
import type { PresenceFrame, PresenceMember } from "../protocol/frames";
import type { MessageId } from "../protocol/ids";
import { Broadcaster } from "../room/broadcaster";
import type { ConnectParams, ShardPlace } from "../room/connect-request";
import type { StoredMessage } from "../room/message-log";
import type { DeliveryCounts } from "../room/observers";
import { store } from "../room/publish";
import type { PublishInput, StoredPage, SubscriberCounts } from "../room/room";
import { roomOf } from "../room/stub";
import type { ShardOccupants } from "../webhooks/events";
import { type HistoryFill, ShardFeed } from "./feed";
import { FanoutSender } from "./sender";
import type { FanoutPush, PushAnswer } from "./stub";
import { MessageWindow } from "./window";

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
/** A shard writes its position down once no message has come for this long (well before it could hibernate). */
const QUIET_MS = 1000;
/** The most characters of message data a shard keeps in memory to replay from (besides HISTORY_LIMIT). */
const WINDOW_MAX_CHARS = 8 * 1024 * 1024;

/**
 * One shard of a hot channel: holds a share of its subscribers exactly as the room holds its own
 * (Broadcaster), and follows the room instead of storing anything of its own. On its first
 * subscriber it attaches to the room, which from then on pushes every message it stores; the
 * ShardFeed turns pushes into each id once, in order, filling holes from the room's history.
 * Recent messages stay in memory (MessageWindow), so subscribers resume from the shard; a resume
 * from before what it holds reads the room's history once, for everyone resuming from there. A
 * shard writes no storage row per message (its writes would multiply by the shard count): only
 * where its subscribers are (`position`), once it falls quiet, which is before it can hibernate.
 * A shard whose subscribers have all left answers the next push so, and the room lets it go.
 */
export class Shard extends Broadcaster {
  /** The attachment this shard follows the room under; undefined while it does not follow. */
  #epoch: string | undefined;
  /** The messages subscribers here are replayed from; its last id is the last one delivered here. */
  #window: MessageWindow;
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
  /** Writes the position down once no message has come for QUIET_MS. */
  #quiet: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { role: "shard" });
    this.#epoch = (this.store.getMeta("epoch") as string | null | undefined) ?? undefined;
    this.#window = this.#newWindow(Number(this.store.getMeta("position") ?? 0));
    const index = this.store.getMeta("shard_index");
    if (index !== undefined) this.#place = { index: Number(index), count: Number(this.store.getMeta("shard_count") ?? 1) };
    // Woken from hibernation, its sockets still here: it fell quiet first, so its position is written
    // down exactly. Restarted without them: nobody is owed anything, and it attaches afresh when
    // someone comes.
    if (this.#epoch !== undefined && ctx.getWebSockets().length > 0) this.#feed = this.#newFeed(this.#window.lastSeq);
    else if (this.#epoch !== undefined) this.#stopFollowing();
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
    this.#take(push);
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
      const lastSeq = this.#window.lastSeq;
      const from = params.since ?? (params.rewind ? Math.max(0, lastSeq - params.rewind) : undefined);
      if (from === undefined) return;
      // A subscriber that saw more on another shard than this one has delivered yet: catch up first,
      // or it would be sent again what it has.
      if (from > lastSeq) return await this.#catchUpTo(from);
      // Messages delivered meanwhile may push old ones out of a full window: then read again.
      for (let tries = 0; !this.#window.covers(from); tries++) {
        if (tries === 3) throw new RelayError("unavailable", "The channel is busy; retry after Retry-After seconds.", { headers: { "Retry-After": "1" } });
        await this.#reachBack(from);
      }
    } finally {
      this.#arriving -= 1;
    }
  }

  protected get log(): MessageWindow {
    return this.#window;
  }

  protected async storeFromSocket(input: PublishInput): Promise<MessageId | undefined> {
    const { id } = await store(this.env, { channel: this.channelName(), input });
    await this.#deliveredHere(Number(id));
    return id;
  }

  protected override announced(frame: PresenceFrame): void {
    this.#presenceOut.add(frame, [0]);
  }

  protected override reportOccupancy(occupants: ShardOccupants): Promise<void> {
    return this.#room().shardOccupancy(this.channelName(), this.#index(), this.#epoch, occupants);
  }

  /** Delivers a push: its messages through the feed, its joins and leaves at once. */
  #take(push: FanoutPush): void {
    this.#feed?.push(push.messages, push.stored);
    for (const frame of push.presence) this.broadcastPresence(frame);
  }

  /** What the room hears back from a push: the subscribers here, and what they were sent since the last answer. */
  #answer(epoch: string | undefined): PushAnswer {
    // Newcomers still on their way in count too: the room must not let the shard go under them.
    return { subscribers: this.subscriberCount + this.#arriving, epoch, ...this.observers.report() };
  }

  /** Attaches to the room, once, if it does not follow it yet. */
  #follow(): Promise<void> {
    if (this.#epoch !== undefined) return Promise.resolve();
    this.#attaching ??= this.#room()
      .attachShard(this.channelName(), this.#index())
      .then(({ lastSeq, epoch }) => {
        // Whatever it held before no longer joins up with what comes next; nobody here needs it.
        this.#window = this.#newWindow(lastSeq);
        this.#epoch = epoch;
        this.store.setMeta("epoch", epoch);
        this.store.setMeta("position", lastSeq);
        this.#feed = this.#newFeed(lastSeq);
        for (const push of this.#early.splice(0)) this.#take(push);
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

  /** Reads what the room stored after this shard's position, up to `seq`, and delivers it (once, in order, as any fill). */
  async #catchUpTo(seq: number): Promise<void> {
    const page = await this.#readRoom(this.#window.lastSeq, seq);
    this.#feed?.push(page.messages.filter((message) => message.seq <= seq));
    await this.#feed?.settled();
  }

  /** Makes the window hold every message the room serves after `since`, reading the room's history once. */
  #reachBack(since: number): Promise<void> {
    const reach = this.#reachingBack.then(async () => {
      const floor = this.#window.floor;
      const older: StoredMessage[] = [];
      let after = since;
      while (after < floor) {
        const page = await this.#readRoom(after, floor);
        const read = page.messages.filter((message) => message.seq <= floor);
        older.push(...read);
        const last = read.at(-1)?.seq;
        if (last === undefined) break;
        after = last;
      }
      // A window that was started afresh meanwhile (attached again) starts after all of this.
      if (this.#window.floor === floor) this.#window.reachBack(since, older);
    });
    this.#reachingBack = reach.catch(() => {});
    return reach;
  }

  #newFeed(position: number): ShardFeed<StoredMessage> {
    return new ShardFeed<StoredMessage>({
      position,
      deliver: (messages) => {
        // What a socket is being replayed page by page must stay until it has read it.
        this.#window.append(messages, this.replaying);
        for (const message of messages) this.deliver(message);
        this.#acknowledgeThrough(messages.at(-1)!.seq);
        this.#writePositionWhenQuiet();
      },
      deliverGap: ({ after, oldest }) => {
        this.#window.skipThrough(oldest - 1);
        this.deliverGap(after, oldest);
        this.#acknowledgeThrough(oldest - 1);
        this.#writePositionWhenQuiet();
      },
      fetchHistory: async (after, through) => fillFrom(await this.#readRoom(after, through), after, through),
    });
  }

  #newWindow(lastSeq: number): MessageWindow {
    return new MessageWindow(lastSeq, { maxMessages: this.config.historyLimit, maxChars: WINDOW_MAX_CHARS });
  }

  /**
   * Writes down the last id delivered here once no message has come for QUIET_MS. A shard only
   * hibernates after some seconds without work, so its position is written before it can; a
   * restart without hibernating drops its subscribers' connections, and they resume from their own.
   */
  #writePositionWhenQuiet(): void {
    if (this.#quiet !== undefined) clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => {
      this.#quiet = undefined;
      this.store.setMeta("position", this.#window.lastSeq);
    }, QUIET_MS);
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

  /** The room's stored messages after `after`, towards `through`: a page of at most READ_PAGE (and a size bound there). */
  #readRoom(after: number, through: number): Promise<StoredPage> {
    return this.#room().storedAfter(this.channelName(), after, Math.min(READ_PAGE, through - after));
  }
}

/** A page of the room's stored messages as a feed's fill: the messages up to `through`, and a gap when retention took some after `after`. */
function fillFrom(page: StoredPage, after: number, through: number): HistoryFill<StoredMessage> {
  const messages = page.messages.filter((message) => message.seq <= through);
  const oldest = page.oldestSeq ?? page.lastSeq + 1;
  return oldest > after + 1 ? { messages, gap: { after, oldest } } : { messages };
}
