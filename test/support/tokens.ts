import { sign } from "hono/jwt";

/**
 * Relay tokens for tests, good and bad, with no runtime-specific imports: the workerd projects and
 * the end-to-end tests mint them the same way.
 */

export const nowSeconds = () => Math.floor(Date.now() / 1000);

export interface Grants {
  publish?: string[];
  subscribe?: string[];
}

/**
 * Mints an HS256 token signed with `secret`. Every token gets its own `sub` unless told
 * otherwise, so the per-subject publish rate limit never couples two tests.
 */
export async function mintWith(secret: string, grants: Grants, claims: Record<string, unknown> = {}): Promise<string> {
  const payload = { sub: `u-${crypto.randomUUID()}`, exp: nowSeconds() + 300, relay: grants, ...claims };
  return sign(payload, secret, "HS256");
}

const encoder = new TextEncoder();

export function base64url(bytes: Uint8Array | string): string {
  const data = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
  let binary = "";
  for (const byte of data) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function hmac(hash: "SHA-256" | "SHA-512", secret: string, input: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash }, false, ["sign"]);
  return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(input))));
}

/** A hand-made token: any header and payload; HMAC-signed with `hash`, or unsigned when `secret` is null. */
export async function craft(header: unknown, payload: unknown, secret: string | null, hash: "SHA-256" | "SHA-512" = "SHA-256"): Promise<string> {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  return `${input}.${secret === null ? "" : await hmac(hash, secret, input)}`;
}

/** The token cases of the route matrix: every kind of bad token, a token without the right, a good one. */
export const TOKEN_KINDS = ["none", "bad signature", "wrong algorithm", "alg none", "expired", "nbf in future", "wrong scope", "right scope"] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** What each kind must get: 401 for no or bad tokens, 403 without the right, success with it. */
export const EXPECTED: Record<TokenKind, string> = {
  none: "401 unauthorized",
  "bad signature": "401 unauthorized",
  "wrong algorithm": "401 unauthorized",
  "alg none": "401 unauthorized",
  expired: "401 unauthorized",
  "nbf in future": "401 unauthorized",
  "wrong scope": "403 forbidden",
  "right scope": "ok",
};

/**
 * A token of the given kind for `channel`, for a relay whose secret is `secret`; the good kinds
 * grant both publish and subscribe there. Expired and nbf are 120 s out, past the 30 s leeway.
 */
export async function tokenOfWith(secret: string, kind: TokenKind, channel: string): Promise<string | undefined> {
  const right = { publish: [channel], subscribe: [channel] };
  const now = nowSeconds();
  switch (kind) {
    case "none":
      return undefined;
    case "bad signature":
      return mintWith("not-the-secret", right);
    case "wrong algorithm":
      return sign({ sub: `u-${crypto.randomUUID()}`, exp: now + 300, relay: right }, secret, "HS512");
    case "alg none":
      return craft({ alg: "none", typ: "JWT" }, { sub: "mallory", exp: now + 300, relay: right }, null);
    case "expired":
      return mintWith(secret, right, { exp: now - 120 });
    case "nbf in future":
      return mintWith(secret, right, { nbf: now + 120, exp: now + 600 });
    case "wrong scope":
      return mintWith(secret, { publish: ["other-*"], subscribe: ["other-*"] });
    case "right scope":
      return mintWith(secret, right);
  }
}

export type TokenSource = "header" | "query" | "cookie";

/** A path and headers carrying `token` the given way. */
export function carry(path: string, token: string | undefined, source: TokenSource = "header", headers: Record<string, string> = {}) {
  const all = { ...headers };
  let url = path;
  if (token !== undefined) {
    if (source === "header") all.Authorization = `Bearer ${token}`;
    if (source === "query") url += `${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
    if (source === "cookie") all.Cookie = `theme=dark; relay_token=${token}; lang=en`;
  }
  return { url, headers: all };
}
