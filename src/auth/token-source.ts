/** Where a request carried its token; browsers cannot set headers on EventSource or WebSocket. */
export type TokenSource = "header" | "query" | "cookie";

export const TOKEN_COOKIE = "relay_token";
const MAX_TOKEN_LENGTH = 8192;

export type FoundToken = { token: string; source: TokenSource } | { invalid: string } | undefined;

/**
 * Finds the request's token: `Authorization: Bearer …` first, then `?token=`, then the
 * `relay_token` cookie. A malformed or oversized one is reported, not ignored.
 */
export function findToken(request: Request): FoundToken {
  const authorization = request.headers.get("Authorization");
  if (authorization !== null) {
    const match = /^Bearer +(\S+)$/i.exec(authorization.trim());
    return match ? checked(match[1]!, "header") : { invalid: "Authorization must be 'Bearer <token>'." };
  }
  const query = new URL(request.url).searchParams.get("token");
  if (query !== null) return checked(query, "query");
  const cookie = readCookie(request.headers.get("Cookie"), TOKEN_COOKIE);
  if (cookie !== undefined) return checked(cookie, "cookie");
  return undefined;
}

function checked(token: string, source: TokenSource): FoundToken {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return { invalid: `A token is 1–${MAX_TOKEN_LENGTH} characters.` };
  return { token, source };
}

function readCookie(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
