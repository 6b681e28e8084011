import { describe, expect, it } from "vitest";
import { MessageBatcher } from "../../src/room/batcher";

/** A batcher on a manual clock: `advance(ms)` fires the timers that are due, in order. */
function harness(limits: { maxDelayMs?: number; maxBytes?: number } = {}) {
  const sent: string[] = [];
  let now = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  const batcher = new MessageBatcher({
    maxDelayMs: limits.maxDelayMs ?? 5,
    maxBytes: limits.maxBytes ?? 65536,
    send: (frame) => sent.push(frame),
    setTimer: (fn, ms) => timers.push({ at: now + ms, fn }),
  });
  const advance = (ms: number): void => {
    const until = now + ms;
    for (;;) {
      const due = timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      timers = timers.filter((t) => t !== due);
      now = due.at;
      due.fn();
    }
    now = until;
  };
  return { batcher, sent, advance, now: () => now, pendingTimers: () => timers.length };
}

/** The ids a frame carries: an envelope's, or a batch frame's in order. */
function idsOf(frame: string): string[] {
  const parsed = JSON.parse(frame) as { type: string; id?: string; messages?: Array<{ id: string }> };
  return parsed.type === "batch" ? parsed.messages!.map((e) => e.id) : [parsed.id!];
}

const m = (id: number, data = "x"): string => JSON.stringify({ type: "message", channel: "c", id: String(id), event: "message", data, ts: 1 });
const batch = (...ids: number[]): string => `{"type":"batch","messages":[${ids.map((id) => m(id)).join(",")}]}`;

describe("the coalescing rule (MessageBatcher)", () => {
  it("sends a quiet channel's message at once, as its envelope", () => {
    const { batcher, sent } = harness();
    batcher.add(m(1));
    expect(sent).toEqual([m(1)]);
  });

  it("holds what follows closely and sends it as one batch frame when the window ends", () => {
    const { batcher, sent, advance } = harness({ maxDelayMs: 5 });
    batcher.add(m(1));
    advance(1);
    batcher.add(m(2));
    batcher.add(m(3));
    advance(3);
    batcher.add(m(4));
    expect(sent).toEqual([m(1)]);
    expect(batcher.waiting).toBe(3);
    advance(1);
    expect(sent).toEqual([m(1), batch(2, 3, 4)]);
    expect(JSON.parse(sent[1]!)).toEqual({ type: "batch", messages: [2, 3, 4].map((id) => JSON.parse(m(id))) });
  });

  it("never holds a message longer than the maximum delay, also under steady load", () => {
    const { batcher, sent, advance, now } = harness({ maxDelayMs: 5 });
    const addedAt = new Map<string, number>();
    const waited = new Map<string, number>();
    const recordSent = (): void => {
      for (const frame of sent.splice(0)) for (const id of idsOf(frame)) waited.set(id, now() - addedAt.get(id)!);
    };
    const frames: string[] = [];
    // One message a millisecond for 20 ms.
    for (let id = 1; id <= 20; id++) {
      addedAt.set(String(id), now());
      batcher.add(m(id));
      frames.push(...sent);
      recordSent();
      advance(1);
      frames.push(...sent);
      recordSent();
    }
    advance(5);
    frames.push(...sent);
    recordSent();
    expect(frames.flatMap(idsOf)).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 1)));
    // The first alone, then one frame per 5 ms window.
    expect(frames).toEqual([m(1), batch(2, 3, 4, 5), batch(6, 7, 8, 9, 10), batch(11, 12, 13, 14, 15), batch(16, 17, 18, 19, 20)]);
    expect(waited.get("1")).toBe(0);
    expect(Math.max(...waited.values())).toBeLessThanOrEqual(5);
  });

  it("goes quiet again after a window with nothing held: the next message goes out at once", () => {
    const { batcher, sent, advance, pendingTimers } = harness({ maxDelayMs: 5 });
    batcher.add(m(1));
    advance(5);
    expect(pendingTimers()).toBe(0);
    batcher.add(m(2));
    expect(sent).toEqual([m(1), m(2)]);
  });

  it("opens another window after sending a batch, so a burst keeps coalescing", () => {
    const { batcher, sent, advance } = harness({ maxDelayMs: 5 });
    batcher.add(m(1));
    batcher.add(m(2));
    advance(5);
    batcher.add(m(3));
    expect(sent).toEqual([m(1), m(2)]);
    advance(5);
    expect(sent).toEqual([m(1), m(2), m(3)]);
    advance(5);
    batcher.add(m(4));
    expect(sent).toEqual([m(1), m(2), m(3), m(4)]);
  });

  it("sends a lone held message as its envelope, not as a batch of one", () => {
    const { batcher, sent, advance } = harness();
    batcher.add(m(1));
    batcher.add(m(2));
    advance(5);
    expect(sent).toEqual([m(1), m(2)]);
  });

  it("sends at once when a frame's worth is held, and never builds a frame over the maximum size", () => {
    const one = m(1, "y".repeat(100)).length;
    // Room for two envelopes of this size in one batch frame, not three.
    const maxBytes = 2 * one + 1 + '{"type":"batch","messages":[]}'.length;
    const { batcher, sent, advance } = harness({ maxDelayMs: 5, maxBytes });
    const big = (id: number): string => m(id, "y".repeat(100));
    batcher.add(big(1));
    for (let id = 2; id <= 6; id++) batcher.add(big(id));
    // Two full frames went out without waiting for the window; the sixth message waits for company.
    expect(sent).toEqual([big(1), `{"type":"batch","messages":[${big(2)},${big(3)}]}`, `{"type":"batch","messages":[${big(4)},${big(5)}]}`]);
    expect(batcher.waiting).toBe(1);
    advance(5);
    expect(sent.slice(3)).toEqual([big(6)]);
    expect(sent.every((frame) => new TextEncoder().encode(frame).byteLength <= maxBytes)).toBe(true);
  });

  it("sends a message larger than the maximum frame alone, as its envelope", () => {
    const big = m(2, "z".repeat(500));
    const { batcher, sent } = harness({ maxBytes: 200 });
    batcher.add(m(1));
    batcher.add(big);
    expect(sent).toEqual([m(1), big]);
  });

  it("flush() sends what is held now, and the window still ends on time", () => {
    const { batcher, sent, advance } = harness({ maxDelayMs: 5 });
    batcher.add(m(1));
    batcher.add(m(2));
    batcher.add(m(3));
    batcher.flush();
    expect(sent).toEqual([m(1), batch(2, 3)]);
    batcher.add(m(4));
    advance(5);
    expect(sent).toEqual([m(1), batch(2, 3), m(4)]);
    batcher.flush();
    expect(sent).toHaveLength(3);
  });

  it("runs afterFlush callbacks once what was held when they were given has gone out, in order", () => {
    const { batcher, sent, advance } = harness();
    const order: string[] = [];
    batcher.afterFlush(() => order.push("nothing held: at once"));
    batcher.add(m(1));
    batcher.afterFlush(() => order.push("after 1: at once"));
    batcher.add(m(2));
    batcher.afterFlush(() => order.push(`ack 2 after ${sent.length} frames`));
    batcher.add(m(3));
    batcher.afterFlush(() => order.push(`ack 3 after ${sent.length} frames`));
    expect(order).toEqual(["nothing held: at once", "after 1: at once"]);
    advance(5);
    expect(order).toEqual(["nothing held: at once", "after 1: at once", "ack 2 after 2 frames", "ack 3 after 2 frames"]);
  });
});
