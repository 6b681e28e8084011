import { FanoutSender } from "../fanout/sender";
import { autoShards, configuredShards } from "../fanout/settings";
import type { ShardCensus } from "../fanout/shard";
import { type FanoutItem, type FanoutPush, fanoutRedirect, shardOf } from "../fanout/stub";
import { logEvent } from "../observability/log";
import type { EncodedData, Envelope } from "../protocol/envelope";
import type { PresenceFrame, PresenceMember } from "../protocol/frames";
import { formatId, type MessageId } from "../protocol/ids";
import type { Transport } from "../protocol/transports";
import type { ShardOccupants } from "../webhooks/events";
import { Broadcaster } from "./broadcaster";
import type { ConnectParams } from "./connect-request";
import type { MessageLog, StoredMessage } from "./message-log";
import type { ChannelCounters } from "./observers";
import { ANSWER_MAX_CHARS } from "./replay";

export interface PublishInput extends EncodedData {
  event: string;
  idempotencyKey?: string;
  /** Store only if the channel's last id is this one. */
  ifMatch?: number;
}

export type PublishResult = { status: "stored" | "duplicate"; message: Envelope } | { status: "conflict"; lastId: MessageId };

export interface HistoryPage {
  messages: Envelope[];
  lastId: MessageId;
  oldestId: MessageId | null;
}

/** What a shard reads from the room to fill a hole or reach back for a resume: stored messages after an id. */
export interface StoredPage {
  messages: StoredMessage[];
  lastSeq: number;
  /** The oldest id still served, null when nothing is. */
  oldestSeq: number | null;
}

export type SubscriberCounts = Record<Transport, number>;

export interface ChannelInfo {
  channel: string;
  lastId: MessageId;
  oldestId: MessageId | null;
  subscribers: SubscriberCounts;
  counters: ChannelCounters;
  /** Present for a channel served through shards (HOT_CHANNELS, FANOUT_AFTER). */
  fanout?: FanoutInfo;
}

export interface FanoutInfo {
  /** How many shards new subscribers are spread over. */
  shards: number;
  /** Shards that hold subscribers and are pushed every message. */
  following: number;
  /** Calls the room made to push to shards since it last started: its work per publish, whatever the subscribers. */
  pushes: number;
}

export interface PresenceList {
  channel: string;
  subscribers: PresenceMember[];
  counts: SubscriberCounts;
}

/** A shard that follows the room: what it said when it last answered a push. */
interface FollowingShard {
  /** Names this attachment; a shard that left and came back has a new one. */
  epoch: string;
  subscribers: number;
}

/**
 * One channel: its sequence counter and retained history — the channel's only sequencer and
 * store — and the subscribers it holds itself (Broadcaster). A hot channel's subscribers sit on
 * shards (src/fanout/shard.ts) instead: each shard attaches to the room when it takes its first
 * subscriber, and the room pushes every stored message to the shards attached, at most one call in
 * flight per shard (FanoutSender). A shard that answers a push with no subscribers is let go.
 * A channel not in HOT_CHANNELS fans out by itself once the room holds FANOUT_AFTER subscribers:
 * the room then sends newcomers to shards (growing their number with the tree) until the tree
 * shrinks below half of that, when newcomers stay in the room again.
 */
export class Room extends Broadcaster {
  /** The shards following this room, by index; kept in storage, so a restarted room goes on pushing. */
  readonly #shards: Map<number, FollowingShard>;
  readonly #sender: FanoutSender<FanoutItem>;
  /** Shards a channel that fanned out by itself spreads newcomers over; 0 while it has not. */
  #autoShards: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { role: "room" });
    this.#autoShards = Number(this.store.getMeta("auto_shards") ?? 0);
    this.#shards = new Map(JSON.parse(String(this.store.getMeta("shards") ?? "[]")) as Array<[number, FollowingShard]>);
    this.#sender = new FanoutSender((index, items) => this.#push(index, items));
    // A room restarted between storing a message and pushing it: its shards learn how far it got.
    if (this.#shards.size > 0) this.#sender.add({ stored: this.store.lastSeq }, this.#shards.keys());
  }

  /** Stores a message and broadcasts it; resolves once it is durable. */
  async publish(channel: string, input: PublishInput): Promise<PublishResult> {
    this.bind(channel);
    return this.#publish(input);
  }

  /** Stores several messages in the order given, each with its own result (a batch's entries for this channel). */
  async publishAll(channel: string, inputs: PublishInput[]): Promise<PublishResult[]> {
    this.bind(channel);
    return inputs.map((input) => this.#publish(input));
  }

  async history(channel: string, since: number, limit: number): Promise<HistoryPage> {
    this.bind(channel);
    const notBefore = this.notBefore();
    const messages = this.#page(
      since,
      limit,
      notBefore,
      (stored) => this.envelope(stored),
      (envelope) => JSON.stringify(envelope).length,
    );
    return { messages, lastId: formatId(this.store.lastSeq), oldestId: this.oldestId(notBefore) };
  }

  async info(channel: string): Promise<ChannelInfo> {
    this.bind(channel);
    const census = await this.#census();
    const info: ChannelInfo = {
      channel,
      lastId: formatId(this.store.lastSeq),
      oldestId: this.oldestId(this.notBefore()),
      subscribers: census.counts,
      counters: this.observers.counters(),
    };
    const shards = this.#fanoutShards();
    if (shards > 1 || this.#shards.size > 0) info.fanout = { shards, following: this.#shards.size, pushes: this.#sender.calls };
    return info;
  }

  async presence(channel: string): Promise<PresenceList> {
    this.bind(channel);
    const census = await this.#census({ members: true });
    return { channel, subscribers: census.members, counts: census.counts };
  }

  /** Which of these connection leases this room, or one of its shards, still holds; the limiter asks when their address is at its limit. */
  async heldLeases(leaseIds: string[]): Promise<string[]> {
    return (await this.#census({ leases: leaseIds })).leases;
  }

  /**
   * A shard takes its first subscriber and follows the room from now on: it is pushed every message
   * after `lastSeq`. Synchronous in the room, so no message falls between the answer and the pushes.
   */
  async attachShard(channel: string, index: number): Promise<{ lastSeq: number; epoch: string }> {
    this.bind(channel);
    const epoch = crypto.randomUUID();
    // A shard attaches when it takes its first subscriber: whoever it reported before is gone.
    this.observers.shardGone(index);
    this.#shards.set(index, { epoch, subscribers: this.#shards.get(index)?.subscribers ?? 0 });
    this.#saveShards();
    return { lastSeq: this.store.lastSeq, epoch };
  }

  /** Joins and leaves on one shard, for the subscribers here and on every other shard that asked for presence. */
  async shardPresence(channel: string, from: number, frames: PresenceFrame[]): Promise<void> {
    this.bind(channel);
    for (const frame of frames) this.broadcastPresence(frame);
    const others = [...this.#shards.keys()].filter((index) => index !== from);
    for (const frame of frames) this.#sender.add({ presence: frame }, others);
  }

  /** Who one shard holds now, for the subjects named (webhooks); a report from an attachment that ended is old news. */
  async shardOccupancy(channel: string, index: number, epoch: string | undefined, occupants: ShardOccupants): Promise<void> {
    this.bind(channel);
    if (epoch === undefined || this.#shards.get(index)?.epoch !== epoch) return;
    this.observers.shardOccupancy(index, occupants);
  }

  /** Stored messages after `since`, for a shard (a hole, or a resume from before what it holds); bounded like a history page. */
  async storedAfter(channel: string, since: number, limit: number): Promise<StoredPage> {
    this.bind(channel);
    const notBefore = this.notBefore();
    const messages = this.#page(
      since,
      limit,
      notBefore,
      (stored) => stored,
      (stored) => stored.data.length,
    );
    return { messages, lastSeq: this.store.lastSeq, oldestSeq: this.store.oldestSeq(notBefore) };
  }

  protected get log(): MessageLog {
    return this.store;
  }

  protected override elsewhere(_params: ConnectParams): Response | undefined {
    this.#resize();
    return this.#autoShards > 1 ? fanoutRedirect(this.#autoShards) : undefined;
  }

  protected capacity(): number {
    return Math.min(this.config.maxSubscribersPerChannel, this.config.maxSubscribersPerShard);
  }

  protected async storeFromSocket(input: PublishInput): Promise<MessageId | undefined> {
    const result = this.#publish(input);
    return result.status === "conflict" ? undefined : result.message.id;
  }

  #publish(input: PublishInput): PublishResult {
    const notBefore = this.notBefore();
    if (input.idempotencyKey !== undefined) {
      const first = this.store.findByIdempotencyKey(input.idempotencyKey, notBefore);
      if (first) return { status: "duplicate", message: this.envelope(first) };
    }
    if (input.ifMatch !== undefined && input.ifMatch !== this.store.lastSeq) {
      return { status: "conflict", lastId: formatId(this.store.lastSeq) };
    }
    const stored = this.store.append({ ...input, ts: Date.now() }, this.config.historyLimit);
    const message = this.deliver(stored);
    if (this.#shards.size > 0) this.#sender.add({ message: stored }, this.#shards.keys());
    return { status: "stored", message };
  }

  /** Retained messages after `since`, each as `as` makes it, bounded by size as well as count: at least one, then up to ANSWER_MAX_CHARS as `size` measures them. */
  #page<T>(since: number, limit: number, notBefore: number, as: (stored: StoredMessage) => T, size: (item: T) => number): T[] {
    const items: T[] = [];
    let chars = 0;
    for (const stored of this.store.after(since, limit, notBefore)) {
      const item = as(stored);
      chars += size(item);
      if (items.length > 0 && chars > ANSWER_MAX_CHARS) break;
      items.push(item);
    }
    return items;
  }

  /** One push to a shard; a shard that answers it has no subscribers left is let go, unless it attached again meanwhile. */
  async #push(index: number, items: FanoutItem[]): Promise<void> {
    const following = this.#shards.get(index);
    if (!following) return;
    const push: FanoutPush = { channel: this.channelName(), index, epoch: following.epoch, messages: [], presence: [], stored: 0 };
    for (const item of items) {
      if ("message" in item) push.messages.push(item.message);
      else if ("presence" in item) push.presence.push(item.presence);
      else push.stored = Math.max(push.stored, item.stored);
    }
    const answer = await shardOf(this.env, push.channel, index).push(push);
    this.observers.reported(answer);
    // The shard may have attached again while the push was under way: then it stays.
    if (this.#shards.get(index)?.epoch !== answer.epoch) return;
    if (answer.subscribers > 0) following.subscribers = answer.subscribers;
    else {
      this.#shards.delete(index);
      this.#saveShards();
      this.observers.shardGone(index);
    }
    this.#resize();
  }

  /** Turns fanning out by itself on, grows it, or turns it off, from the tree's subscribers as last heard. */
  #resize(): void {
    const { fanoutAfter } = this.config;
    if (fanoutAfter === 0 || configuredShards(this.config.hotChannels, this.channelName()) > 1) return;
    let tree = this.subscriberCount;
    for (const { subscribers } of this.#shards.values()) tree += subscribers;
    let shards = this.#autoShards;
    if (tree >= fanoutAfter) shards = Math.max(shards, autoShards(tree, fanoutAfter));
    else if (tree < fanoutAfter / 2) shards = 0;
    if (shards === this.#autoShards) return;
    logEvent("info", "channel.fanout", { channel: this.channelName(), shards, subscribers: tree });
    this.#autoShards = shards;
    this.store.setMeta("auto_shards", shards);
  }

  /** Subscribers over the room and every shard following it (their presence members and the asked leases they hold, when wanted); what shards delivered meanwhile is counted. */
  async #census(want: { members?: boolean; leases?: string[] } = {}): Promise<ShardCensus> {
    const total: ShardCensus = {
      counts: this.localCounts(),
      members: want.members ? this.localMembers() : [],
      leases: this.localLeases(want.leases ?? []),
      delivered: 0,
      dropped: 0,
    };
    const answers = await Promise.all([...this.#shards.keys()].map((index) => shardOf(this.env, this.channelName(), index).census(want)));
    for (const answer of answers) {
      for (const transport of Object.keys(total.counts) as Transport[]) total.counts[transport] += answer.counts[transport];
      total.members.push(...answer.members);
      total.leases.push(...answer.leases);
      this.observers.reported(answer);
    }
    return total;
  }

  /** How many shards new subscribers are spread over. */
  #fanoutShards(): number {
    return Math.max(configuredShards(this.config.hotChannels, this.channelName()), this.#autoShards);
  }

  #saveShards(): void {
    this.store.setMeta("shards", JSON.stringify([...this.#shards]));
  }
}
