import { type CryptoKey, importJWK, type JWK } from "jose";

/** The asymmetric algorithms provider tokens may use; `none`, HS* and everything else are refused here. */
export const PROVIDER_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;
export type ProviderAlgorithm = (typeof PROVIDER_ALGORITHMS)[number];

export function isProviderAlgorithm(alg: unknown): alg is ProviderAlgorithm {
  return PROVIDER_ALGORITHMS.includes(alg as ProviderAlgorithm);
}

/** How long a key set is kept when its response says nothing (no `Cache-Control: max-age`)… */
export const DEFAULT_MAX_AGE_MS = 5 * 60 * 1000;
/** …and at most, whatever it says, so a rotated-out key does not live on for days. */
export const MAX_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** An unknown `kid` refetches the set at most this often, and at most `REFETCHES_PER_MINUTE` times a minute. */
export const MIN_REFETCH_INTERVAL_MS = 5 * 1000;
export const REFETCHES_PER_MINUTE = 4;
const FETCH_TIMEOUT_MS = 5 * 1000;
/** A key set document larger than this is not a key set. */
const MAX_JWKS_BYTES = 256 * 1024;

export type KeyLookup = { ok: true; key: CryptoKey | Uint8Array } | { ok: false; reason: string };

export interface JwksCacheOptions {
  fetch?: typeof fetch;
  now?: () => number;
}

interface KeySet {
  /** Keys by `kid`; a key without a `kid` is filed under "". */
  keys: Map<string, JWK>;
  freshUntil: number;
}

interface UrlState {
  set?: KeySet;
  /** The one fetch of this URL in flight, which every lookup waiting for it shares. */
  inFlight?: Promise<KeySet | string>;
  /** When this URL was fetched in the last minute, for the refetch bound. */
  fetchedAt: number[];
  /** Why the last fetch failed, told to every lookup until the next one is allowed. */
  lastFailure?: string;
}

/**
 * The JSON Web Key Sets of the identity providers (RELAY_JWKS_URL), cached per Worker isolate.
 * Everything is keyed by the set's URL and the key's `kid` together: a `kid` names a key only
 * within its own set, so one provider's set can never answer for another's (a cache keyed by
 * `kid` alone let one issuer's key verify another issuer's tokens, Centrifugo's CVE-2026-49998).
 *
 * A set is kept as long as its `Cache-Control: max-age` says (5 min without one, 24 h at most). A
 * `kid` the set does not have refetches it, but only one fetch per URL runs at a time and at most
 * a few a minute, so tokens with made-up `kid`s cannot turn the relay into a flood of fetches.
 *
 * @example
 * const cache = new JwksCache();
 * const found = await cache.key("https://example.auth0.com/.well-known/jwks.json", "abc123", "RS256");
 * if (found.ok) await jwtVerify(token, found.key, { algorithms: ["RS256"] });
 */
export class JwksCache {
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #urls = new Map<string, UrlState>();
  /** Imported keys, by URL, `kid` and algorithm. */
  readonly #imported = new Map<string, CryptoKey | Uint8Array>();

  constructor({ fetch: fetchImpl = (input, init) => fetch(input, init), now = Date.now }: JwksCacheOptions = {}) {
    this.#fetch = fetchImpl;
    this.#now = now;
  }

  /** The key `kid` of the set at `url`, for `alg`; `kid` undefined picks the set's only key for `alg`. */
  async key(url: string, kid: string | undefined, alg: ProviderAlgorithm): Promise<KeyLookup> {
    const state = this.#state(url);
    const fresh = state.set && state.set.freshUntil > this.#now() ? state.set : undefined;
    let jwk = fresh && pick(fresh, kid, alg);
    if (!jwk) {
      // Stale, never fetched, or a kid the set does not have (the provider rotated): fetch, if allowed now.
      let failure = state.lastFailure;
      if (this.#mayFetch(state)) {
        const fetched = await this.#refresh(url, state);
        failure = typeof fetched === "string" ? fetched : undefined;
      }
      // A set past its max-age still answers while its URL cannot be fetched.
      jwk = state.set && pick(state.set, kid, alg);
      if (!jwk) return { ok: false, reason: failure ?? `The key set at ${url} has no ${alg} key${kid === undefined ? "" : ` with kid "${kid}"`}.` };
    }
    return this.#import(url, kid ?? "", alg, jwk);
  }

  #state(url: string): UrlState {
    let state = this.#urls.get(url);
    if (!state) {
      state = { fetchedAt: [] };
      this.#urls.set(url, state);
    }
    return state;
  }

  #mayFetch(state: UrlState): boolean {
    if (state.inFlight) return true;
    const now = this.#now();
    state.fetchedAt = state.fetchedAt.filter((at) => now - at < 60_000);
    if (!state.set && state.fetchedAt.length === 0) return true;
    const last = state.fetchedAt.at(-1);
    if (last !== undefined && now - last < MIN_REFETCH_INTERVAL_MS) return false;
    return state.fetchedAt.length < REFETCHES_PER_MINUTE;
  }

  #refresh(url: string, state: UrlState): Promise<KeySet | string> {
    if (state.inFlight) return state.inFlight;
    state.fetchedAt.push(this.#now());
    const inFlight = this.#download(url).then((result) => {
      state.inFlight = undefined;
      if (typeof result === "string") state.lastFailure = result;
      else {
        state.set = result;
        state.lastFailure = undefined;
        for (const key of this.#imported.keys()) if (key.startsWith(`${url}\n`)) this.#imported.delete(key);
      }
      return result;
    });
    state.inFlight = inFlight;
    return inFlight;
  }

  async #download(url: string): Promise<KeySet | string> {
    let response: Response;
    try {
      response = await this.#fetch(url, { headers: { Accept: "application/json" }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    } catch (error) {
      return `The key set at ${url} could not be fetched (${error instanceof Error ? error.message : String(error)}).`;
    }
    if (!response.ok) {
      await response.body?.cancel();
      return `The key set at ${url} answered ${response.status}.`;
    }
    const text = await response.text();
    if (text.length > MAX_JWKS_BYTES) return `The key set at ${url} is larger than ${MAX_JWKS_BYTES} bytes.`;
    let keys: unknown;
    try {
      keys = (JSON.parse(text) as { keys?: unknown }).keys;
    } catch {
      return `The key set at ${url} is not JSON.`;
    }
    if (!Array.isArray(keys)) return `The key set at ${url} has no "keys" array.`;
    const byKid = new Map<string, JWK>();
    for (const key of keys) {
      if (typeof key !== "object" || key === null || typeof (key as JWK).kty !== "string") continue;
      const jwk = key as JWK;
      // Keys for encryption, and private parts, have no place in a verification set.
      if (jwk.use !== undefined && jwk.use !== "sig") continue;
      byKid.set(typeof jwk.kid === "string" ? jwk.kid : "", jwk);
    }
    return { keys: byKid, freshUntil: this.#now() + maxAgeOf(response.headers.get("Cache-Control")) };
  }

  async #import(url: string, kid: string, alg: ProviderAlgorithm, jwk: JWK): Promise<KeyLookup> {
    const id = `${url}\n${kid}\n${alg}`;
    const cached = this.#imported.get(id);
    if (cached) return { ok: true, key: cached };
    try {
      const key = await importJWK(publicPart(jwk), alg);
      this.#imported.set(id, key);
      return { ok: true, key };
    } catch (error) {
      return { ok: false, reason: `The key "${kid}" at ${url} is not a usable ${alg} key (${error instanceof Error ? error.message : String(error)}).` };
    }
  }
}

/** The key named `kid` that fits `alg`; without a `kid`, the set's only key that fits. */
function pick(set: KeySet, kid: string | undefined, alg: ProviderAlgorithm): JWK | undefined {
  if (kid !== undefined) {
    const key = set.keys.get(kid);
    return key && fits(key, alg) ? key : undefined;
  }
  const fitting = [...set.keys.values()].filter((key) => fits(key, alg));
  return fitting.length === 1 ? fitting[0] : undefined;
}

/** Whether a JWK can verify `alg`: its own `alg` (when it says one) and its key type must agree. */
function fits(key: JWK, alg: ProviderAlgorithm): boolean {
  if (key.alg !== undefined && key.alg !== alg) return false;
  if (alg === "RS256") return key.kty === "RSA";
  if (alg === "ES256") return key.kty === "EC" && key.crv === "P-256";
  return key.kty === "OKP" && key.crv === "Ed25519";
}

/** Only the public members: a set that (wrongly) publishes private parts must not make them usable here. */
function publicPart({ kty, crv, x, y, n, e }: JWK): JWK {
  const key: JWK = { kty };
  for (const [name, value] of Object.entries({ crv, x, y, n, e })) if (value !== undefined) (key as Record<string, unknown>)[name] = value;
  return key;
}

/** `Cache-Control: max-age=N` in ms, within the bounds above; `no-store`/`no-cache` keep it only briefly. */
export function maxAgeOf(cacheControl: string | null): number {
  if (cacheControl === null) return DEFAULT_MAX_AGE_MS;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(cacheControl)) return MIN_REFETCH_INTERVAL_MS;
  const match = /(?:^|,)\s*(?:s-)?max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl);
  if (!match) return DEFAULT_MAX_AGE_MS;
  return Math.min(Number(match[1]) * 1000, MAX_MAX_AGE_MS);
}
