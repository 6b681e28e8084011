import { verify } from "hono/jwt";
import { type RelayClaims, readClaims } from "./claims";
import { findToken, type TokenSource } from "./token-source";

/** Who sent a request, decided once per request. */
export type Identity =
  | { kind: "anonymous" }
  | { kind: "token"; claims: RelayClaims; source: TokenSource }
  /** A token was presented and is not good: always 401, public channels included. */
  | { kind: "invalid"; reason: string };

/** The one algorithm relay tokens use; `alg: none` and every other algorithm are refused. */
export const TOKEN_ALGORITHM = "HS256";

/**
 * Reads and verifies the request's token against the current secret and, during a rotation, the
 * previous one. Without any secret configured, tokens cannot be checked and are not looked at.
 */
export async function authenticate(request: Request, secrets: readonly string[]): Promise<Identity> {
  if (secrets.length === 0) return { kind: "anonymous" };
  const found = findToken(request);
  if (found === undefined) return { kind: "anonymous" };
  if ("invalid" in found) return { kind: "invalid", reason: found.invalid };

  let payload: Record<string, unknown> | undefined;
  for (const secret of secrets) {
    try {
      // exp and nbf are checked below, with the leeway API.md promises.
      payload = await verify(found.token, secret, { alg: TOKEN_ALGORITHM, exp: false, nbf: false, iat: false });
      break;
    } catch {
      // Wrong secret, algorithm or shape: try the next secret, else the token is invalid.
    }
  }
  if (!payload) return { kind: "invalid", reason: `The token is not a valid ${TOKEN_ALGORITHM} token signed with this relay's secret.` };
  const result = readClaims(payload, Math.floor(Date.now() / 1000));
  return result.ok ? { kind: "token", claims: result.claims, source: found.source } : { kind: "invalid", reason: result.reason };
}
