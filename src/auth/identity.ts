import { verify } from "hono/jwt";
import { decodeProtectedHeader, errors, jwtVerify, type ProtectedHeaderParameters } from "jose";
import { CLOCK_LEEWAY_SECONDS, type RelayClaims, readClaims } from "./claims";
import { isProviderAlgorithm, JwksCache, PROVIDER_ALGORITHMS, type ProviderAlgorithm } from "./jwks";
import { findToken, type TokenSource } from "./token-source";

/** Who sent a request, decided once per request. */
export type Identity =
  | { kind: "anonymous" }
  | { kind: "token"; claims: RelayClaims; source: TokenSource }
  /** A token was presented and is not good: always 401, public channels included. */
  | { kind: "invalid"; reason: string };

/** The algorithm of the relay's own tokens, signed with RELAY_JWT_SECRET. */
export const TOKEN_ALGORITHM = "HS256";

/** What tokens the relay takes: its own (HS256 secrets) and an identity provider's (JWKS). */
export interface TokenSettings {
  /** HS256 secrets: the current one, then the previous during a rotation. */
  jwtSecrets: readonly string[];
  /** Key sets of identity providers whose RS256 / ES256 / EdDSA tokens are taken. */
  jwksUrls?: readonly string[];
  /** When set, a provider token's `iss` must be this. */
  jwtIssuer?: string;
  /** When set, a provider token's `aud` must name this. */
  jwtAudience?: string;
  /** The claim holding `{"publish":[…],"subscribe":[…]}`; `relay` unless a provider needs a namespaced one. */
  relayClaim?: string;
}

/** Whether the relay checks tokens at all: a secret or a provider's key set is configured. */
export function tokensEnabled(settings: TokenSettings): boolean {
  return settings.jwtSecrets.length > 0 || (settings.jwksUrls?.length ?? 0) > 0;
}

/** The providers' key sets, kept for the life of the Worker isolate. */
const providerKeys = new JwksCache();

/**
 * Reads and verifies the request's token: an HS256 token against the current secret and, during a
 * rotation, the previous one; an RS256, ES256 or EdDSA token against the identity providers' key
 * sets. Without a secret or a key set configured, tokens cannot be checked and are not looked at.
 */
export async function authenticate(request: Request, settings: TokenSettings, keys: JwksCache = providerKeys): Promise<Identity> {
  if (!tokensEnabled(settings)) return { kind: "anonymous" };
  const found = findToken(request);
  if (found === undefined) return { kind: "anonymous" };
  if ("invalid" in found) return { kind: "invalid", reason: found.invalid };

  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(found.token);
  } catch {
    return { kind: "invalid", reason: "The token is not a JWT (header.payload.signature, base64url)." };
  }
  const verified = isProviderAlgorithm(header.alg)
    ? await verifyProviderToken(found.token, header, header.alg, settings, keys)
    : await verifyOwnToken(found.token, settings.jwtSecrets);
  if (!verified.ok) return { kind: "invalid", reason: verified.reason };
  if (typeof verified.payload !== "object" || verified.payload === null || Array.isArray(verified.payload)) {
    return { kind: "invalid", reason: "The token's payload must be a JSON object of claims." };
  }
  const result = readClaims(verified.payload, Math.floor(Date.now() / 1000), settings.relayClaim);
  return result.ok ? { kind: "token", claims: result.claims, source: found.source } : { kind: "invalid", reason: result.reason };
}

type Verified = { ok: true; payload: Record<string, unknown> } | { ok: false; reason: string };

async function verifyOwnToken(token: string, secrets: readonly string[]): Promise<Verified> {
  if (secrets.length === 0) {
    return { ok: false, reason: `This relay takes identity provider tokens only (${PROVIDER_ALGORITHMS.join(", ")}); no RELAY_JWT_SECRET is set.` };
  }
  for (const secret of secrets) {
    try {
      // exp and nbf are checked by readClaims, with the leeway API.md promises.
      return { ok: true, payload: await verify(token, secret, { alg: TOKEN_ALGORITHM, exp: false, nbf: false, iat: false }) };
    } catch {
      // Wrong secret, algorithm or shape: try the next secret, else the token is invalid.
    }
  }
  return { ok: false, reason: `The token is not a valid ${TOKEN_ALGORITHM} token signed with this relay's secret.` };
}

/**
 * Verifies a provider token with the key its `kid` names in one of the configured key sets, then
 * its issuer and audience when those are set. Says which check failed.
 */
async function verifyProviderToken(
  token: string,
  header: ProtectedHeaderParameters,
  alg: ProviderAlgorithm,
  settings: TokenSettings,
  keys: JwksCache,
): Promise<Verified> {
  const urls = settings.jwksUrls ?? [];
  if (urls.length === 0) return { ok: false, reason: `This relay takes ${TOKEN_ALGORITHM} tokens only; no RELAY_JWKS_URL is set for ${alg} tokens.` };
  const reasons: string[] = [];
  for (const url of urls) {
    const found = await keys.key(url, header.kid, alg);
    if (!found.ok) {
      reasons.push(found.reason);
      continue;
    }
    try {
      const { payload } = await jwtVerify(token, found.key, {
        algorithms: [alg],
        issuer: settings.jwtIssuer || undefined,
        audience: settings.jwtAudience || undefined,
        clockTolerance: CLOCK_LEEWAY_SECONDS,
      });
      return { ok: true, payload };
    } catch (error) {
      reasons.push(providerFailure(error, url, settings));
    }
  }
  // A key that was found but did not verify says more than another set not having the kid.
  const specific = reasons.find((reason) => !reason.includes(" has no "));
  return { ok: false, reason: specific ?? reasons[0] ?? "The token could not be verified." };
}

function providerFailure(error: unknown, url: string, settings: TokenSettings): string {
  if (error instanceof errors.JWSSignatureVerificationFailed) return `The token's signature does not match its key at ${url}.`;
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "iss") return `The token's issuer (iss) is not ${settings.jwtIssuer} (RELAY_JWT_ISSUER).`;
    if (error.claim === "aud") return `The token's audience (aud) does not include ${settings.jwtAudience} (RELAY_JWT_AUDIENCE).`;
    if (error.claim === "exp") return "The token has expired.";
    if (error.claim === "nbf") return "The token is not valid yet (nbf).";
    return `The token's ${error.claim} claim is not valid.`;
  }
  if (error instanceof errors.JWTExpired) return "The token has expired.";
  return `The token could not be verified with its key at ${url}.`;
}
