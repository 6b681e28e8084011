/**
 * The `exp` claim (seconds since the epoch) of a JWT, read without verifying it; `undefined` for
 * a token that is not a JWT or has no numeric `exp`. The SDK only compares tokens with it.
 *
 * @example tokenExpiry("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.sig") // 1_700_000_000
 */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const claims: unknown = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")));
    const exp = typeof claims === "object" && claims !== null ? (claims as { exp?: unknown }).exp : undefined;
    return typeof exp === "number" && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `next` can fix a connection the relay closed because `expired` expired: a different
 * token that, when both carry `exp`, expires later. The same token, or one that expires no later,
 * would be closed again at once, so reconnecting with it needs a backoff.
 *
 * @example isFresherToken("b", "a") // true: another token, expiry unknown
 * @example isFresherToken("a", "a") // false
 */
export function isFresherToken(next: string | undefined, expired: string | undefined): boolean {
  if (next === expired) return false;
  if (next === undefined || expired === undefined) return true;
  const nextExp = tokenExpiry(next);
  const expiredExp = tokenExpiry(expired);
  return nextExp === undefined || expiredExp === undefined || nextExp > expiredExp;
}
