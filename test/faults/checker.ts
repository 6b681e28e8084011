/**
 * The delivery checker of the fault suite: pure bookkeeping, no I/O. Publishers report what the
 * relay acknowledged, subscribers what they delivered; the report says, per subscriber and
 * channel, which acknowledged messages never arrived (`lost`), which arrived twice
 * (`duplicated`) and which arrived after a higher id (`outOfOrder`).
 *
 * @example
 * const checker = new DeliveryChecker("restart");
 * checker.watch("sse-a", "news");              // sees the channel from its start (after id 0)
 * checker.acked("news", "1", "hello");
 * checker.delivered("sse-a", "news", "1", "hello");
 * console.log(formatLine(checker.report()));   // faults: restart subscribers=1 acked=1 lost=0 duplicated=0 outOfOrder=0 …
 */

/** One problem found for one subscriber on one channel. */
export interface Finding {
  subscriber: string;
  channel: string;
  id: number;
  /** What else is known: the higher id it came after, the payloads that differ, how often. */
  detail?: string;
}

export interface ScenarioReport {
  scenario: string;
  /** Distinct subscriber names. */
  subscribers: number;
  /** Subscriber × channel pairs watched. */
  watches: number;
  /** Distinct acknowledged (channel, id) pairs. */
  acked: number;
  /** Every delivery recorded, repeats included. */
  deliveries: number;
  /** An acknowledged id after the watch's start position that the subscriber never got. */
  lost: Finding[];
  /** A repeat delivery of an id the subscriber already had (one finding per repeat). */
  duplicated: Finding[];
  /** A first delivery of an id lower than one delivered before it. */
  outOfOrder: Finding[];
  /** A delivery whose payload differs from what was acknowledged under that id. */
  mismatched: Finding[];
  /** Two different payloads acknowledged under one id. */
  ackConflicts: Array<{ channel: string; id: number; payloads: [string, string] }>;
  /** Gaps the relay announced (relay.gap / gap frames / a poll's gap). */
  gaps: Finding[];
  /** Distinct delivered (channel, id) pairs that no acknowledgement named: stored, but the ack was lost. */
  unacked: number;
}

interface Watch {
  subscriber: string;
  channel: string;
  startAfter: number;
  seen: Set<number>;
  highest: number;
  deliveries: number;
  duplicated: Finding[];
  outOfOrder: Finding[];
  mismatched: Finding[];
  gaps: Finding[];
}

/** Records acknowledged publishes and per-subscriber deliveries of one scenario. */
export class DeliveryChecker {
  readonly scenario: string;
  /** channel → id → acknowledged payload. */
  readonly #acked = new Map<string, Map<number, string>>();
  readonly #ackConflicts: ScenarioReport["ackConflicts"] = [];
  /** `${subscriber}\n${channel}` → its watch. */
  readonly #watches = new Map<string, Watch>();
  #ackedCount = 0;

  constructor(scenario: string) {
    this.scenario = scenario;
  }

  /** How many distinct (channel, id) pairs were acknowledged so far. */
  get ackedCount(): number {
    return this.#ackedCount;
  }

  /**
   * A publish the relay acknowledged with `id`. The same id acknowledged again with the same
   * payload (an idempotent repeat) counts once; with another payload it is an ack conflict.
   */
  acked(channel: string, id: string | number, payload: string): void {
    const seq = toSeq(id);
    let ids = this.#acked.get(channel);
    if (!ids) {
      ids = new Map();
      this.#acked.set(channel, ids);
    }
    const known = ids.get(seq);
    if (known === undefined) {
      ids.set(seq, payload);
      this.#ackedCount++;
    } else if (known !== payload) {
      this.#ackConflicts.push({ channel, id: seq, payloads: [known, payload] });
    }
  }

  /**
   * Declares that `subscriber` receives `channel` from after `startAfter` on (its resume
   * position when it first connected: 0 for the whole channel). Watching twice keeps the first.
   */
  watch(subscriber: string, channel: string, startAfter: string | number = 0): void {
    const key = watchKey(subscriber, channel);
    if (this.#watches.has(key)) return;
    this.#watches.set(key, {
      subscriber,
      channel,
      startAfter: toSeq(startAfter),
      seen: new Set(),
      highest: toSeq(startAfter),
      deliveries: 0,
      duplicated: [],
      outOfOrder: [],
      mismatched: [],
      gaps: [],
    });
  }

  /** A message `subscriber` handed on. An unwatched channel is watched from its start (0). */
  delivered(subscriber: string, channel: string, id: string | number, payload?: string): void {
    const watch = this.#watchOf(subscriber, channel);
    const seq = toSeq(id);
    watch.deliveries++;
    if (watch.seen.has(seq)) {
      watch.duplicated.push({ subscriber, channel, id: seq });
    } else {
      if (seq < watch.highest) watch.outOfOrder.push({ subscriber, channel, id: seq, detail: `after ${watch.highest}` });
      watch.seen.add(seq);
      watch.highest = Math.max(watch.highest, seq);
    }
    const expected = this.#acked.get(channel)?.get(seq);
    if (payload !== undefined && expected !== undefined && expected !== payload) {
      watch.mismatched.push({ subscriber, channel, id: seq, detail: `${JSON.stringify(payload)} ≠ acked ${JSON.stringify(expected)}` });
    }
  }

  /** The relay told `subscriber` that ids after `after` up to `oldest - 1` are gone. */
  gap(subscriber: string, channel: string, after: string | number, oldest: string | number): void {
    this.#watchOf(subscriber, channel).gaps.push({ subscriber, channel, id: toSeq(after), detail: `oldest ${oldest}` });
  }

  /** Every acknowledged message, by channel and id order. */
  acknowledged(): Array<{ channel: string; id: number; payload: string }> {
    return [...this.#acked].flatMap(([channel, ids]) => [...ids].sort(([x], [y]) => x - y).map(([id, payload]) => ({ channel, id, payload })));
  }

  /** Acknowledged messages the watches still lack (0: every subscriber has everything acked so far). */
  missing(): number {
    let missing = 0;
    for (const watch of this.#watches.values()) missing += this.#lostOf(watch).length;
    return missing;
  }

  /** Everything found so far. */
  report(): ScenarioReport {
    const watches = [...this.#watches.values()];
    const unacked = new Set<string>();
    for (const watch of watches) {
      const ids = this.#acked.get(watch.channel);
      for (const seq of watch.seen) if (!ids?.has(seq)) unacked.add(`${watch.channel}\n${seq}`);
    }
    return {
      scenario: this.scenario,
      subscribers: new Set(watches.map((watch) => watch.subscriber)).size,
      watches: watches.length,
      acked: this.#ackedCount,
      deliveries: watches.reduce((sum, watch) => sum + watch.deliveries, 0),
      lost: watches.flatMap((watch) => this.#lostOf(watch)),
      duplicated: watches.flatMap((watch) => watch.duplicated),
      outOfOrder: watches.flatMap((watch) => watch.outOfOrder),
      mismatched: watches.flatMap((watch) => watch.mismatched),
      ackConflicts: [...this.#ackConflicts],
      gaps: watches.flatMap((watch) => watch.gaps),
      unacked: unacked.size,
    };
  }

  #watchOf(subscriber: string, channel: string): Watch {
    this.watch(subscriber, channel, 0);
    return this.#watches.get(watchKey(subscriber, channel))!;
  }

  #lostOf(watch: Watch): Finding[] {
    const lost: Finding[] = [];
    for (const seq of this.#acked.get(watch.channel)?.keys() ?? []) {
      if (seq > watch.startAfter && !watch.seen.has(seq)) lost.push({ subscriber: watch.subscriber, channel: watch.channel, id: seq });
    }
    return lost.sort((a, b) => a.id - b.id);
  }
}

/**
 * The scenario's one summary line; `extra` fields (cuts, restarts, history checks) follow the
 * required ones.
 *
 * @example formatLine(report, { storedTwice: 0 }) // "faults: restart subscribers=14 acked=480 lost=0 duplicated=0 outOfOrder=0 … storedTwice=0"
 */
export function formatLine(report: ScenarioReport, extra: Record<string, string | number> = {}): string {
  const fields: Record<string, string | number> = {
    subscribers: report.subscribers,
    acked: report.acked,
    lost: report.lost.length,
    duplicated: report.duplicated.length,
    outOfOrder: report.outOfOrder.length,
    watches: report.watches,
    deliveries: report.deliveries,
    mismatched: report.mismatched.length,
    ackConflicts: report.ackConflicts.length,
    gaps: report.gaps.length,
    unacked: report.unacked,
    ...extra,
  };
  return `faults: ${report.scenario} ${Object.entries(fields)
    .map(([name, value]) => `${name}=${value}`)
    .join(" ")}`;
}

/** A few findings, readable in an assertion message. */
export function sample(findings: readonly Finding[], count = 8): string {
  const shown = findings.slice(0, count).map((f) => `${f.subscriber}/${f.channel}#${f.id}${f.detail ? ` (${f.detail})` : ""}`);
  return findings.length > count ? `${shown.join(", ")} … and ${findings.length - count} more` : shown.join(", ");
}

/** A payload that history holds under more than one id. */
export interface StoredTwice {
  payload: string;
  ids: string[];
}

/**
 * The payloads a channel's history stores more than once: each publish carries a unique
 * payload, so any repeat is one publish stored twice.
 */
export function storedTwice(messages: ReadonlyArray<{ id: string; data: string }>): StoredTwice[] {
  const byPayload = new Map<string, string[]>();
  for (const { id, data } of messages) byPayload.set(data, [...(byPayload.get(data) ?? []), id]);
  return [...byPayload].filter(([, ids]) => ids.length > 1).map(([payload, ids]) => ({ payload, ids }));
}

function toSeq(id: string | number): number {
  const seq = typeof id === "number" ? id : Number(id);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError(`not a message id: ${JSON.stringify(id)}`);
  return seq;
}

function watchKey(subscriber: string, channel: string): string {
  return `${subscriber}\n${channel}`;
}
