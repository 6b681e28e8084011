import { matchesPattern } from "../auth/patterns";

/** One `HOT_CHANNELS` entry: channels matching `pattern` fan out over `shards` shard objects. */
export interface HotChannelRule {
  pattern: string;
  shards: number;
}

/** The most shards one channel may spread over: one room call per shard per publish batch. */
export const MAX_SHARDS = 256;

/**
 * Reads `HOT_CHANNELS`: comma-separated `pattern:shards` pairs, patterns as in tokens.
 * Throws on a malformed entry (an operator error must not pass silently).
 *
 * @example parseHotChannels("scores.*:32, news:8") // [{ pattern: "scores.*", shards: 32 }, { pattern: "news", shards: 8 }]
 */
export function parseHotChannels(text: string): HotChannelRule[] {
  const rules: HotChannelRule[] = [];
  for (const entry of text.split(",")) {
    const trimmed = entry.trim();
    if (trimmed === "") continue;
    const at = trimmed.lastIndexOf(":");
    const pattern = trimmed.slice(0, at).trim();
    const shards = Number(trimmed.slice(at + 1).trim());
    if (at <= 0 || pattern === "" || !/^\d+$/.test(trimmed.slice(at + 1).trim()) || shards < 1 || shards > MAX_SHARDS) {
      throw new Error(`Setting HOT_CHANNELS takes pattern:shards pairs with 1–${MAX_SHARDS} shards, got ${JSON.stringify(trimmed)}`);
    }
    rules.push({ pattern, shards });
  }
  return rules;
}

/** How many shards a channel fans out over by configuration: the first matching rule's, else 1 (the room alone). */
export function configuredShards(rules: readonly HotChannelRule[], channel: string): number {
  return rules.find((rule) => matchesPattern(rule.pattern, channel))?.shards ?? 1;
}

/**
 * Which shard a subscriber lands on: a stable hash of its placement key (a connection id), so the
 * Worker places it without asking the room. A reconnect may land elsewhere; resume makes that safe.
 */
export function shardFor(placementKey: string, shards: number): number {
  if (shards <= 1) return 0;
  // FNV-1a: cheap, well spread over short strings, the same in every isolate.
  let hash = 0x811c9dc5;
  for (let i = 0; i < placementKey.length; i++) {
    hash ^= placementKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

/**
 * How many shards a channel that fans out by itself (FANOUT_AFTER) spreads over for `subscribers`:
 * room-sized shares of `fanoutAfter`, with room to grow, in powers of two so the count changes seldom.
 *
 * @example autoShards(5000, 5000) // 2; autoShards(100_000, 5000) // 32
 */
export function autoShards(subscribers: number, fanoutAfter: number): number {
  const wanted = Math.ceil(subscribers / fanoutAfter) + 1;
  return Math.min(MAX_SHARDS, Math.max(2, 2 ** Math.ceil(Math.log2(wanted))));
}
