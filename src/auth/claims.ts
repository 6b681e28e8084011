/** What a relay token grants, from its `relay` claim. */
export interface RelayClaims {
  /** The client's name (`sub`), shown in presence. */
  subject?: string;
  publish: string[];
  subscribe: string[];
  /** `exp`, in seconds since the epoch. */
  expiresAt: number;
}

/** The longest `sub` a token may carry; it is shown in presence lists. */
export const MAX_SUBJECT_LENGTH = 256;

/** The claim that holds a token's rights unless RELAY_CLAIM names another (Auth0 and others want a namespaced one). */
export const DEFAULT_RELAY_CLAIM = "relay";

/** Clock skew tolerated on `exp` and `nbf`, in seconds. */
export const CLOCK_LEEWAY_SECONDS = 30;

/**
 * When a token with this `exp` stops being honoured, in ms since the epoch: `exp` plus the leeway.
 * The one rule for both ends of a connection: a request is refused from then on, and a connection
 * opened with the token is closed then (not at `exp`, which would close a connection accepted in
 * the leeway the moment it opens).
 *
 * @example tokenDeadlineMs(1_700_000_000) // 1_700_000_030_000
 */
export function tokenDeadlineMs(exp: number): number {
  return (exp + CLOCK_LEEWAY_SECONDS) * 1000;
}

export type ClaimsResult = { ok: true; claims: RelayClaims } | { ok: false; reason: string };

/**
 * Checks a verified token's payload: `exp` required and not past, `nbf` not in the future (both
 * with 30 s of leeway), and a `relay` claim (or the one `claimName` names), if any, whose
 * `publish`/`subscribe` are lists of patterns. Without that claim the token grants nothing.
 *
 * @example readClaims({ exp: now + 60, relay: { subscribe: ["*"] } }, now) // { ok: true, … }
 */
export function readClaims(payload: Record<string, unknown>, nowSeconds: number, claimName = DEFAULT_RELAY_CLAIM): ClaimsResult {
  const { exp, nbf, sub } = payload;
  const relay = payload[claimName];
  if (typeof exp !== "number" || !Number.isFinite(exp)) return { ok: false, reason: "The token has no exp claim; relay tokens must expire." };
  if (tokenDeadlineMs(exp) <= nowSeconds * 1000) return { ok: false, reason: "The token has expired." };
  if (nbf !== undefined && (typeof nbf !== "number" || !Number.isFinite(nbf) || nbf - CLOCK_LEEWAY_SECONDS > nowSeconds)) {
    return { ok: false, reason: "The token is not valid yet (nbf)." };
  }
  if (sub !== undefined && (typeof sub !== "string" || sub.length > MAX_SUBJECT_LENGTH)) {
    return { ok: false, reason: `The token's sub must be a string of at most ${MAX_SUBJECT_LENGTH} characters.` };
  }
  // A token without a relay claim is good and grants nothing (403 for what it asks); one whose
  // relay claim is malformed is not a relay token that can be read (401).
  const grants =
    relay === undefined ? {} : typeof relay === "object" && relay !== null && !Array.isArray(relay) ? (relay as Record<string, unknown>) : undefined;
  const publish = patternList(grants?.publish);
  const subscribe = patternList(grants?.subscribe);
  if (!grants || publish === undefined || subscribe === undefined) {
    return { ok: false, reason: `The token's ${claimName} claim must look like {"publish":["news"],"subscribe":["*"]}.` };
  }
  // An empty sub names nobody: the client is then known by a connection id, like an anonymous one.
  return { ok: true, claims: { subject: sub || undefined, publish, subscribe, expiresAt: exp } };
}

function patternList(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string" && item.length > 0 && item.length <= 256)) return undefined;
  return value as string[];
}
