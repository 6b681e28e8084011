import type { Identity } from "../auth/identity";
import { RelayError } from "../protocol/errors";
import { clientAddress } from "./client-address";

/** The `period` of the PUBLISH_RATE_LIMITER binding in wrangler.toml, in seconds. */
const PERIOD_SECONDS = 10;

/** Whose publishes count together: the token's subject, else the client's address. */
export function publisherKey(identity: Identity, request: Request): string {
  if (identity.kind === "token" && identity.claims.subject !== undefined) return `sub:${identity.claims.subject}`;
  return `ip:${clientAddress(request)}`;
}

/** Counts one publish against the Workers Rate Limiting binding; throws 429 past the limit. */
export async function checkPublishRate(env: Env, key: string): Promise<void> {
  const { success } = await env.PUBLISH_RATE_LIMITER.limit({ key });
  if (!success) {
    throw new RelayError("rate_limited", `Too many publishes from this client; the limit is set per ${PERIOD_SECONDS} s.`, {
      headers: { "Retry-After": String(PERIOD_SECONDS) },
    });
  }
}
