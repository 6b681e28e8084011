import { describe, expect, it } from "vitest";
import { DeliveryChecker, formatLine, storedTwice } from "./checker";

/** A checker with ids 1..n acknowledged on `channel`, payload `p<id>`. */
function checkerWith(n: number, channel = "c"): DeliveryChecker {
  const checker = new DeliveryChecker("unit");
  for (let id = 1; id <= n; id++) checker.acked(channel, String(id), `p${id}`);
  return checker;
}

function deliver(checker: DeliveryChecker, subscriber: string, ids: number[], channel = "c"): void {
  for (const id of ids) checker.delivered(subscriber, channel, String(id), `p${id}`);
}

describe("DeliveryChecker", () => {
  it("reports nothing for every acknowledged message once, in order", () => {
    const checker = checkerWith(5);
    checker.watch("s", "c");
    deliver(checker, "s", [1, 2, 3, 4, 5]);
    const report = checker.report();
    expect(report).toMatchObject({ subscribers: 1, watches: 1, acked: 5, deliveries: 5, unacked: 0 });
    expect([report.lost, report.duplicated, report.outOfOrder, report.mismatched]).toEqual([[], [], [], []]);
    expect(checker.missing()).toBe(0);
  });

  it("counts each acknowledged id never delivered as lost", () => {
    const checker = checkerWith(5);
    checker.watch("s", "c");
    deliver(checker, "s", [1, 3, 5]);
    expect(checker.report().lost.map((f) => f.id)).toEqual([2, 4]);
    expect(checker.missing()).toBe(2);
  });

  it("does not count ids at or before the start position as lost", () => {
    const checker = checkerWith(5);
    checker.watch("late", "c", "3");
    deliver(checker, "late", [4, 5]);
    expect(checker.report().lost).toEqual([]);
    checker.watch("later", "c", 3);
    deliver(checker, "later", [5]);
    expect(checker.report().lost).toEqual([{ subscriber: "later", channel: "c", id: 4 }]);
  });

  it("counts every repeat of an id as duplicated, and only as that", () => {
    const checker = checkerWith(3);
    deliver(checker, "s", [1, 2, 2, 3, 1]);
    const report = checker.report();
    expect(report.duplicated.map((f) => f.id)).toEqual([2, 1]);
    expect(report.outOfOrder).toEqual([]);
    expect(report.lost).toEqual([]);
  });

  it("counts a first delivery lower than an earlier one as out of order", () => {
    const checker = checkerWith(4);
    deliver(checker, "s", [1, 3, 2, 4]);
    const report = checker.report();
    expect(report.outOfOrder).toEqual([{ subscriber: "s", channel: "c", id: 2, detail: "after 3" }]);
    expect(report.duplicated).toEqual([]);
    expect(report.lost).toEqual([]);
  });

  it("keeps subscribers and channels apart", () => {
    const checker = checkerWith(2, "a");
    checker.acked("b", "1", "b1");
    checker.watch("x", "a");
    checker.watch("x", "b");
    checker.watch("y", "a");
    deliver(checker, "x", [1, 2], "a");
    checker.delivered("x", "b", "1", "b1");
    deliver(checker, "y", [2], "a");
    const report = checker.report();
    expect(report).toMatchObject({ subscribers: 2, watches: 3, acked: 3 });
    expect(report.lost).toEqual([{ subscriber: "y", channel: "a", id: 1 }]);
    expect(report.duplicated).toEqual([]);
  });

  it("tells an idempotent repeat of an ack from two payloads acknowledged under one id", () => {
    const checker = checkerWith(1);
    checker.acked("c", "1", "p1");
    expect(checker.ackedCount).toBe(1);
    checker.acked("c", "1", "other");
    expect(checker.report().ackConflicts).toEqual([{ channel: "c", id: 1, payloads: ["p1", "other"] }]);
  });

  it("counts a payload that differs from the acknowledged one, and deliveries nobody acknowledged", () => {
    const checker = checkerWith(1);
    checker.delivered("s", "c", "1", "not p1");
    checker.delivered("s", "c", "2", "never acked");
    const report = checker.report();
    expect(report.mismatched.map((f) => f.id)).toEqual([1]);
    expect(report.unacked).toBe(1);
  });

  it("records announced gaps", () => {
    const checker = checkerWith(1);
    checker.gap("s", "c", "0", "5");
    expect(checker.report().gaps).toEqual([{ subscriber: "s", channel: "c", id: 0, detail: "oldest 5" }]);
  });

  it("prints the scenario line with the required fields first", () => {
    const checker = checkerWith(3);
    deliver(checker, "s", [1, 1, 3, 2]);
    expect(formatLine(checker.report(), { cuts: 7 })).toBe(
      "faults: unit subscribers=1 acked=3 lost=0 duplicated=1 outOfOrder=1 watches=1 deliveries=4 mismatched=0 ackConflicts=0 gaps=0 unacked=0 cuts=7",
    );
  });

  it("refuses what is not a message id", () => {
    const checker = new DeliveryChecker("unit");
    expect(() => checker.acked("c", "x", "p")).toThrow(TypeError);
    expect(() => checker.delivered("s", "c", -1)).toThrow(TypeError);
  });
});

describe("storedTwice", () => {
  it("names each payload stored under more than one id", () => {
    const messages = [
      { id: "1", data: "a" },
      { id: "2", data: "b" },
      { id: "3", data: "a" },
      { id: "4", data: "c" },
      { id: "5", data: "a" },
    ];
    expect(storedTwice(messages)).toEqual([{ payload: "a", ids: ["1", "3", "5"] }]);
    expect(storedTwice(messages.slice(1, 2))).toEqual([]);
  });
});

describe("acknowledged", () => {
  it("lists every acknowledged message once, per channel in id order", () => {
    const checker = new DeliveryChecker("unit");
    checker.acked("b", "2", "b2");
    checker.acked("a", "1", "a1");
    checker.acked("b", "1", "b1");
    checker.acked("b", "1", "b1");
    expect(checker.acknowledged()).toEqual([
      { channel: "b", id: 1, payload: "b1" },
      { channel: "b", id: 2, payload: "b2" },
      { channel: "a", id: 1, payload: "a1" },
    ]);
  });
});
