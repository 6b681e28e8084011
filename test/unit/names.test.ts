import { describe, expect, it } from "vitest";
import { DEFAULT_EVENT, isChannelName, isEventName, isIdempotencyKey } from "../../src/protocol/names";

describe("isChannelName", () => {
  it.each([
    "news",
    "a",
    "7",
    "chat.room-1",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:~@",
    "user@example.com",
    "org:team~1_x",
    "a.",
    "a..b",
    "a".repeat(128),
  ])("accepts %j", (name) => {
    expect(isChannelName(name)).toBe(true);
  });

  it.each([
    ["empty", ""],
    ["129 characters", "a".repeat(129)],
    ["a slash", "a/b"],
    ["a space", "a b"],
    ["dot-dot", ".."],
    ["a single dot", "."],
    ["a leading dot", ".hidden"],
    ["a leading dash", "-x"],
    ["a leading underscore", "_x"],
    ["a leading colon", ":x"],
    ["a leading @", "@x"],
    ["unicode letters", "café"],
    ["a non-Latin name", "日本"],
    ["an emoji", "a😀"],
    ["a trailing newline", "news\n"],
    ["a percent sign", "a%2Fb"],
    ["a star", "chat.*"],
    ["a question mark", "a?b"],
    ["a hash", "a#b"],
  ])("refuses %s", (_, name) => {
    expect(isChannelName(name)).toBe(false);
  });
});

describe("isEventName", () => {
  it.each(["message", "update", "a", "Chat:msg.v1_final-2", "e".repeat(64), "relay", "relayx", "RELAY.gap", "x.relay.gap", ".dot", "-dash"])(
    "accepts %j",
    (name) => {
      expect(isEventName(name)).toBe(true);
    },
  );

  it.each([
    ["empty", ""],
    ["65 characters", "e".repeat(65)],
    ["the relay. prefix", "relay.gap"],
    ["the bare relay. prefix", "relay."],
    ["a newline", "a\nb"],
    ["a trailing newline", "update\n"],
    ["a carriage return", "a\rb"],
    ["a space", "a b"],
    ["a slash", "a/b"],
    ["a tilde", "a~b"],
    ["an @", "a@b"],
    ["unicode", "événement"],
  ])("refuses %s", (_, name) => {
    expect(isEventName(name)).toBe(false);
  });

  it("accepts the default event name", () => {
    expect(DEFAULT_EVENT).toBe("message");
    expect(isEventName(DEFAULT_EVENT)).toBe(true);
  });
});

describe("isIdempotencyKey", () => {
  it.each(["k", "order-123", "a b", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", " ", "k".repeat(128)])("accepts %j", (key) => {
    expect(isIdempotencyKey(key)).toBe(true);
  });

  it.each([
    ["empty", ""],
    ["129 characters", "k".repeat(129)],
    ["a tab", "a\tb"],
    ["a newline", "a\nb"],
    ["a trailing newline", "key\n"],
    ["DEL", "a\x7fb"],
    ["NUL", "a\0b"],
    ["non-ASCII", "clé"],
  ])("refuses %s", (_, key) => {
    expect(isIdempotencyKey(key)).toBe(false);
  });
});
