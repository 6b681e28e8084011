import { describe, expect, it } from "vitest";
import { matchesAny, matchesPattern } from "../../src/auth/patterns";
import { mulberry32, pick } from "../support/prng";

describe("matchesPattern: exact names", () => {
  it("matches only the identical name when there is no star", () => {
    expect(matchesPattern("news", "news")).toBe(true);
    expect(matchesPattern("news", "news2")).toBe(false);
    expect(matchesPattern("news", "xnews")).toBe(false);
    expect(matchesPattern("news", "new")).toBe(false);
    expect(matchesPattern("news", "")).toBe(false);
    expect(matchesPattern("news", "NEWS")).toBe(false);
  });

  it("matches the whole name, never a substring", () => {
    expect(matchesPattern("chat", "chat.lobby")).toBe(false);
    expect(matchesPattern("lobby", "chat.lobby")).toBe(false);
    expect(matchesPattern("a.b", "xa.by")).toBe(false);
  });
});

describe("matchesPattern: stars", () => {
  it("a lone star matches every name, the empty one included", () => {
    for (const name of ["", "a", "news", "chat.lobby", "a:b~c@d", "*"]) expect(matchesPattern("*", name)).toBe(true);
  });

  it("a trailing star matches any suffix, the empty run included", () => {
    expect(matchesPattern("chat.*", "chat.lobby")).toBe(true);
    expect(matchesPattern("chat.*", "chat.")).toBe(true);
    expect(matchesPattern("chat.*", "chat.a.b.c")).toBe(true);
    expect(matchesPattern("chat.*", "chat")).toBe(false);
    expect(matchesPattern("chat.*", "chatx")).toBe(false);
    expect(matchesPattern("chat.*", "news.chat.x")).toBe(false);
  });

  it("a leading star matches any prefix", () => {
    expect(matchesPattern("*.public", "room.public")).toBe(true);
    expect(matchesPattern("*.public", ".public")).toBe(true);
    expect(matchesPattern("*.public", "room.public.x")).toBe(false);
    expect(matchesPattern("*.public", "public")).toBe(false);
  });

  it("a star in the middle matches any run between prefix and suffix", () => {
    expect(matchesPattern("user-*-inbox", "user-42-inbox")).toBe(true);
    expect(matchesPattern("user-*-inbox", "user--inbox")).toBe(true);
    expect(matchesPattern("user-*-inbox", "user-a-b-c-inbox")).toBe(true);
    expect(matchesPattern("user-*-inbox", "user-inbox")).toBe(false);
    expect(matchesPattern("user-*-inbox", "user-42-inbox2")).toBe(false);
    expect(matchesPattern("user-*-inbox", "xuser-42-inbox")).toBe(false);
  });

  it("prefix and suffix may not overlap in the name", () => {
    // "ab*ba" needs at least "abba": "aba" would reuse the middle b.
    expect(matchesPattern("ab*ba", "aba")).toBe(false);
    expect(matchesPattern("ab*ba", "abba")).toBe(true);
    expect(matchesPattern("a*a", "a")).toBe(false);
    expect(matchesPattern("a*a", "aa")).toBe(true);
  });

  it("several stars", () => {
    expect(matchesPattern("a*b*c", "abc")).toBe(true);
    expect(matchesPattern("a*b*c", "a-x-b-y-c")).toBe(true);
    expect(matchesPattern("a*b*c", "acb")).toBe(false);
    expect(matchesPattern("a*b*c", "ab")).toBe(false);
    expect(matchesPattern("*a*", "banana")).toBe(true);
    expect(matchesPattern("*a*", "xyz")).toBe(false);
    expect(matchesPattern("*.*.*", "a.b.c")).toBe(true);
    expect(matchesPattern("*.*.*", "..")).toBe(true);
    expect(matchesPattern("*.*.*", "a.b")).toBe(false);
    // The middle part must fit between prefix and suffix, not inside the suffix.
    expect(matchesPattern("a*b*b", "ab")).toBe(false);
    expect(matchesPattern("a*b*b", "abb")).toBe(true);
    expect(matchesPattern("x*ab*ab", "xab")).toBe(false);
    expect(matchesPattern("x*ab*ab", "xabab")).toBe(true);
  });

  it("consecutive stars behave like one", () => {
    expect(matchesPattern("a**b", "ab")).toBe(true);
    expect(matchesPattern("a**b", "axxb")).toBe(true);
    expect(matchesPattern("**", "")).toBe(true);
    expect(matchesPattern("a***", "a")).toBe(true);
    expect(matchesPattern("a***", "b")).toBe(false);
  });

  it("a star matches a literal star too", () => {
    expect(matchesPattern("a*", "a*")).toBe(true);
    expect(matchesPattern("*", "***")).toBe(true);
  });
});

describe("matchesPattern: no regex injection", () => {
  it("a dot in a pattern is a dot, not any character", () => {
    expect(matchesPattern("a.b", "a.b")).toBe(true);
    expect(matchesPattern("a.b", "axb")).toBe(false);
    expect(matchesPattern("chat.*", "chatXlobby")).toBe(false);
  });

  it("regex metacharacters in patterns are plain characters", () => {
    const cases: Array<[string, string, boolean]> = [
      ["(", "(", true],
      ["(", "a", false],
      ["a+", "aaa", false],
      ["a+", "a+", true],
      ["a?", "a", false],
      ["a?", "a?", true],
      ["[ab]", "a", false],
      ["[ab]", "[ab]", true],
      ["a|b", "a", false],
      ["a|b", "b", false],
      ["a|b", "a|b", true],
      ["^a$", "a", false],
      ["^a$", "^a$", true],
      ["a{2}", "aa", false],
      ["\\d", "1", false],
      ["\\d", "\\d", true],
      [".*", "anything", false],
      [".*", ".x", true],
      ["(a|b)*", "(a|b)", true],
      ["(a|b)*", "a", false],
      ["$", "$", true],
    ];
    for (const [pattern, name, expected] of cases) expect(matchesPattern(pattern, name), `${pattern} ~ ${name}`).toBe(expected);
  });

  it("regex metacharacters in names cannot widen a pattern", () => {
    expect(matchesPattern("news", ".*")).toBe(false);
    expect(matchesPattern("news", "(news)")).toBe(false);
    expect(matchesPattern("news", "news|admin")).toBe(false);
    expect(matchesPattern("a.*", "a.(")).toBe(true);
    expect(matchesPattern("a.*", "b(")).toBe(false);
    expect(matchesPattern("+", "+")).toBe(true);
  });

  it("does not blow up on patterns that would be catastrophic as regexes", () => {
    const pattern = `${"*a".repeat(30)}*b`;
    const name = "a".repeat(5000);
    const started = performance.now();
    expect(matchesPattern(pattern, name)).toBe(false);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it("agrees with a reference matcher on random patterns and names", () => {
    const random = mulberry32(20260421);
    const alphabet = ["a", "b", ".", "*", "(", "+", "?", "$"];
    for (let i = 0; i < 3000; i++) {
      const pattern = Array.from({ length: Math.floor(random() * 7) }, () => pick(random, alphabet)).join("");
      const name = Array.from({ length: Math.floor(random() * 7) }, () =>
        pick(
          random,
          alphabet.filter((c) => c !== "*"),
        ),
      ).join("");
      expect(matchesPattern(pattern, name), `${JSON.stringify(pattern)} ~ ${JSON.stringify(name)}`).toBe(reference(pattern, name));
    }
  });
});

describe("matchesAny", () => {
  it("is true when one pattern matches, false for an empty list", () => {
    expect(matchesAny(["news", "chat.*"], "chat.x")).toBe(true);
    expect(matchesAny(["news", "chat.*"], "news")).toBe(true);
    expect(matchesAny(["news", "chat.*"], "sports")).toBe(false);
    expect(matchesAny([], "news")).toBe(false);
    expect(matchesAny([], "")).toBe(false);
  });
});

/** Glob matching by dynamic programming over characters: `*` is any run, everything else literal. */
function reference(pattern: string, name: string): boolean {
  const rows = pattern.length + 1;
  const cols = name.length + 1;
  const table: boolean[][] = Array.from({ length: rows }, () => new Array<boolean>(cols).fill(false));
  table[0]![0] = true;
  for (let p = 1; p < rows; p++) {
    const star = pattern[p - 1] === "*";
    for (let n = 0; n < cols; n++) {
      if (star) table[p]![n] = table[p - 1]![n]! || (n > 0 && table[p]![n - 1]!);
      else table[p]![n] = n > 0 && pattern[p - 1] === name[n - 1] && table[p - 1]![n - 1]!;
    }
  }
  return table[pattern.length]![name.length]!;
}
