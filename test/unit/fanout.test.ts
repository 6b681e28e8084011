import { describe, expect, it } from "vitest";
import { type FedMessage, type HistoryFill, ShardFeed } from "../../src/fanout/feed";
import { FanoutSender } from "../../src/fanout/sender";
import { autoShards, configuredShards, MAX_SHARDS, parseHotChannels, shardFor } from "../../src/fanout/settings";
import { MessageWindow } from "../../src/fanout/window";
import type { StoredMessage } from "../../src/room/message-log";

const m = (seq: number): FedMessage => ({ seq });
const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => m(from + i));

describe("HOT_CHANNELS", () => {
  it("reads pattern:shards pairs, first match wins, others are one room", () => {
    const rules = parseHotChannels(" scores.*:32, news:8 ,");
    expect(rules).toEqual([
      { pattern: "scores.*", shards: 32 },
      { pattern: "news", shards: 8 },
    ]);
    expect(configuredShards(rules, "scores.final")).toBe(32);
    expect(configuredShards(rules, "news")).toBe(8);
    expect(configuredShards(rules, "newsroom")).toBe(1);
    expect(parseHotChannels("")).toEqual([]);
  });

  it("refuses what is not a pattern:shards pair within bounds", () => {
    for (const text of ["news", "news:", ":8", "news:0", `news:${MAX_SHARDS + 1}`, "news:2.5", "news:x"]) {
      expect(() => parseHotChannels(text), text).toThrow(/HOT_CHANNELS/);
    }
  });

  it("places subscribers on every shard, stably, without asking anyone", () => {
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[shardFor(`client-${i}`, 8)] += 1;
    for (const count of counts) expect(count).toBeGreaterThan(800);
    expect(shardFor("alice", 8)).toBe(shardFor("alice", 8));
    expect(shardFor("alice", 1)).toBe(0);
  });
});

describe("FANOUT_AFTER: how many shards a channel that fans out by itself spreads over", () => {
  it("room-sized shares with room to grow, in powers of two, within MAX_SHARDS", () => {
    expect(autoShards(5000, 5000)).toBe(2);
    expect(autoShards(10_000, 5000)).toBe(4);
    expect(autoShards(100_000, 5000)).toBe(32);
    expect(autoShards(1_000_000, 5000)).toBe(MAX_SHARDS);
    expect(autoShards(3, 4)).toBe(2);
  });
});

/** A feed over a fake room whose history holds ids 1…`last`, of which `oldest`… are retained. */
function feedOver(history: { last: number; oldest: number }, position = 0) {
  const delivered: number[] = [];
  const gaps: Array<{ after: number; oldest: number }> = [];
  const fetches: Array<[number, number]> = [];
  let failNext = false;
  const feed = new ShardFeed<FedMessage>({
    position,
    deliver: (messages) => delivered.push(...messages.map((x) => x.seq)),
    deliverGap: (gap) => gaps.push(gap),
    fetchHistory: async (after, through): Promise<HistoryFill<FedMessage>> => {
      fetches.push([after, through]);
      if (failNext) {
        failNext = false;
        throw new Error("room unreachable");
      }
      const start = Math.max(after + 1, history.oldest);
      const messages = seqs(start, Math.min(through, history.last));
      return start > after + 1 ? { messages, gap: { after, oldest: start } } : { messages };
    },
  });
  return { feed, delivered, gaps, fetches, failOnce: () => (failNext = true) };
}

describe("ShardFeed: each id once, in order, holes filled from history", () => {
  it("delivers contiguous pushes at once and skips what it already has", async () => {
    const { feed, delivered, fetches } = feedOver({ last: 10, oldest: 1 });
    feed.push(seqs(1, 3));
    feed.push(seqs(2, 5));
    await feed.settled();
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(fetches).toEqual([]);
  });

  it("fills a hole (a lost push) before delivering what comes after it", async () => {
    const { feed, delivered, fetches } = feedOver({ last: 10, oldest: 1 });
    feed.push(seqs(1, 2));
    feed.push(seqs(6, 7));
    feed.push(seqs(8, 8)); // arrives while the fill runs: waits for it
    await feed.settled();
    expect(delivered).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(fetches).toEqual([[2, 5]]);
  });

  it("starting ahead of its position (a shard evicted, a room restarted) fills from there", async () => {
    const { feed, delivered } = feedOver({ last: 20, oldest: 1 }, 10);
    feed.push(seqs(15, 16));
    await feed.settled();
    expect(delivered).toEqual([11, 12, 13, 14, 15, 16]);
  });

  it("passes on only the gap the room's retention caused", async () => {
    const { feed, delivered, gaps } = feedOver({ last: 30, oldest: 20 }, 5);
    feed.push(seqs(25, 25));
    await feed.settled();
    expect(gaps).toEqual([{ after: 5, oldest: 20 }]);
    expect(delivered).toEqual([20, 21, 22, 23, 24, 25]);
  });

  it("a failed fill delivers nothing out of order; the next push fills again", async () => {
    const { feed, delivered, failOnce, fetches } = feedOver({ last: 10, oldest: 1 });
    feed.push(seqs(1, 1));
    failOnce();
    feed.push(seqs(4, 4));
    await feed.settled();
    expect(delivered).toEqual([1]);
    feed.push(seqs(5, 5));
    await feed.settled();
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(fetches).toEqual([
      [1, 3],
      [1, 3],
    ]);
  });

  it("a push that says the room stored more than it carries (a room restarted before pushing) fills up to there", async () => {
    const { feed, delivered, fetches } = feedOver({ last: 10, oldest: 1 }, 3);
    feed.push([], 6);
    await feed.settled();
    expect(delivered).toEqual([4, 5, 6]);
    expect(fetches).toEqual([[3, 6]]);
    feed.push([], 6);
    await feed.settled();
    expect(fetches).toHaveLength(1);
  });
});

describe("FanoutSender: one call in flight per shard, what piles up goes together", () => {
  it("batches what is stored while a call runs, in order, per shard", async () => {
    const calls: Array<[number, number[]]> = [];
    const release: Array<() => void> = [];
    const sender = new FanoutSender<number>((shard, batch) => {
      calls.push([shard, [...batch]]);
      return new Promise<void>((resolve) => release.push(resolve));
    });
    sender.add(1, [0, 1]);
    sender.add(2, [0, 1]);
    sender.add(3, [0, 1]);
    expect(calls).toEqual([
      [0, [1]],
      [1, [1]],
    ]);
    for (const done of release.splice(0)) done();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(calls.slice(2)).toEqual([
      [0, [2, 3]],
      [1, [2, 3]],
    ]);
    for (const done of release.splice(0)) done();
    await sender.idle();
    // Calls grow with shards and publish bursts, not with subscribers.
    expect(sender.calls).toBe(4);
  });

  it("sends each item only to the shards it names", async () => {
    const calls: Array<[number, number[]]> = [];
    const sender = new FanoutSender<number>(async (shard, batch) => {
      calls.push([shard, [...batch]]);
    });
    sender.add(1, [2]);
    sender.add(2, []);
    sender.add(3, [2, 5]);
    await sender.idle();
    // Shard 5 is sent 3 at once; shard 2 gets it after its call for 1 is done.
    expect(calls).toEqual([
      [2, [1]],
      [5, [3]],
      [2, [3]],
    ]);
  });

  it("a failed call is counted and the next batch goes on (the shard fills the hole)", async () => {
    const calls: number[][] = [];
    let fail = true;
    const sender = new FanoutSender<number>(async (_shard, batch) => {
      calls.push([...batch]);
      if (fail) {
        fail = false;
        throw new Error("shard restarting");
      }
    });
    sender.add(1, [0]);
    await sender.idle();
    sender.add(2, [0]);
    await sender.idle();
    expect(calls).toEqual([[1], [2]]);
    expect(sender.failures).toBe(1);
  });
});

describe("MessageWindow: a shard's recent messages, in memory", () => {
  const stored = (seq: number, data = "x", ts = 1000): StoredMessage => ({ seq, event: "message", data, encoding: null, ts });
  const ids = (window: MessageWindow, since: number) => [...window.after(since, 100, 0)].map((m) => m.seq);

  it("covers a resume from where it started on, and serves it in id order", () => {
    const window = new MessageWindow(10, { maxMessages: 5, maxChars: 1000 });
    expect(window.covers(9)).toBe(false);
    window.append([stored(11), stored(12), stored(13)]);
    expect(window.lastSeq).toBe(13);
    expect(window.covers(10)).toBe(true);
    expect(ids(window, 11)).toEqual([12, 13]);
    expect(window.oldestSeq(0)).toBe(11);
  });

  it("drops the oldest past its limits, raising what it covers, but keeps them while a replay reads them", () => {
    const window = new MessageWindow(0, { maxMessages: 3, maxChars: 1000 });
    window.append([stored(1), stored(2), stored(3), stored(4)], true);
    expect(ids(window, 0)).toEqual([1, 2, 3, 4]);
    window.append([stored(5)]);
    expect(ids(window, 0)).toEqual([3, 4, 5]);
    expect(window.covers(1)).toBe(false);
    expect(window.covers(2)).toBe(true);
    const byChars = new MessageWindow(0, { maxMessages: 100, maxChars: 10 });
    byChars.append([stored(1, "aaaaaa"), stored(2, "bbbbbb"), stored(3, "cccccccccccccccc")]);
    // At least the newest stays, however large.
    expect(ids(byChars, 0)).toEqual([3]);
  });

  it("reaches back with what the room served, and a gap the room's retention caused stays a gap", () => {
    const window = new MessageWindow(10, { maxMessages: 100, maxChars: 1000 });
    window.append([stored(11)]);
    window.reachBack(5, [stored(7), stored(8), stored(9), stored(10), stored(11)]);
    expect(window.covers(5)).toBe(true);
    expect(ids(window, 5)).toEqual([7, 8, 9, 10, 11]);
    // 6 is gone at the room too: a replay from 5 starts with a gap notice at 7.
    expect(window.oldestSeq(0)).toBe(7);
  });

  it("after a gap, replays nothing from before it", () => {
    const window = new MessageWindow(0, { maxMessages: 100, maxChars: 1000 });
    window.append([stored(1), stored(2)]);
    window.skipThrough(9);
    expect(window.lastSeq).toBe(9);
    expect(window.covers(2)).toBe(false);
    window.append([stored(10)]);
    expect(ids(window, 9)).toEqual([10]);
  });

  it("serves nothing older than the retention's time bound", () => {
    const window = new MessageWindow(0, { maxMessages: 100, maxChars: 1000 });
    window.append([stored(1, "x", 100), stored(2, "x", 200), stored(3, "x", 300)]);
    expect([...window.after(0, 100, 200)].map((m) => m.seq)).toEqual([2, 3]);
    window.pruneOlderThan(250);
    expect(ids(window, 0)).toEqual([3]);
    expect(window.oldestTs()).toBe(300);
  });
});
