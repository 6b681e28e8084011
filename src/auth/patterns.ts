/**
 * Channel patterns of tokens and PUBLIC_CHANNELS: a channel name where `*` matches any run of
 * characters (the empty run too), matched against the whole name. Matching is plain string work,
 * never a RegExp built from the pattern, so a pattern cannot inject regex syntax.
 *
 * @example matchesPattern("chat.*", "chat.lobby") // true
 * @example matchesPattern("chat.*", "news")       // false
 */
export function matchesPattern(pattern: string, name: string): boolean {
  const parts = pattern.split("*");
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (parts.length === 1) return pattern === name;
  if (name.length < first.length + last.length || !name.startsWith(first) || !name.endsWith(last)) return false;
  // Greedy left-to-right placement of the middle parts is enough: `*` may absorb anything between them.
  let at = first.length;
  const end = name.length - last.length;
  for (const part of parts.slice(1, -1)) {
    const found = name.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/** Whether any of the patterns matches the name. */
export function matchesAny(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => matchesPattern(pattern, name));
}
