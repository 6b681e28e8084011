import type { RelayConfig } from "../config";
import { RelayError } from "../protocol/errors";
import { type Identity, tokensEnabled } from "./identity";
import { matchesAny } from "./patterns";

export type Action = "publish" | "subscribe";

/** What a request may do on a channel, decided once at the edge and carried into the room. */
export interface Grant {
  canPublish: boolean;
  /** Why a publish would be refused: no (usable) token, or a token without the right. */
  publishRefusal?: "unauthorized" | "forbidden";
  /** Who the client is (a token's `sub`), when it said so. */
  subject?: string;
  /** When the token expires (seconds since the epoch); connections end then. */
  expiresAt?: number;
}

/**
 * The authorization every channel route asks before it touches a room. Throws 401 (no or bad
 * token) or 403 (a good token without the right); otherwise says what else the client may do.
 *
 * With no secret configured there are no tokens: subscribing is open, and publishing needs
 * `ALLOW_ANONYMOUS = "true"`, so a deployed relay never takes anonymous publishes by accident.
 */
export function authorize(config: RelayConfig, identity: Identity, channel: string, action: Action): Grant {
  if (identity.kind === "invalid") throw new RelayError("unauthorized", identity.reason);

  if (!tokensEnabled(config)) {
    if (action === "publish" && !config.allowAnonymous) throw anonymousPublishingDisabled();
    return config.allowAnonymous ? { canPublish: true } : { canPublish: false, publishRefusal: "unauthorized" };
  }

  if (identity.kind === "anonymous") {
    if (action === "subscribe" && matchesAny(config.publicChannels, channel)) return { canPublish: false, publishRefusal: "unauthorized" };
    throw new RelayError(
      "unauthorized",
      `${action === "publish" ? "Publishing" : "Subscribing"} to ${channel} needs a token: Authorization: Bearer, ?token= or the relay_token cookie.`,
    );
  }

  const { claims } = identity;
  const canPublish = matchesAny(claims.publish, channel);
  const allowed = action === "publish" ? canPublish : matchesAny(claims.subscribe, channel) || matchesAny(config.publicChannels, channel);
  if (!allowed) throw new RelayError("forbidden", `This token may not ${action} to ${channel}.`);
  return { canPublish, ...(canPublish ? {} : { publishRefusal: "forbidden" as const }), subject: claims.subject, expiresAt: claims.expiresAt };
}

/**
 * Refuses, with what `authorize` would answer for every channel, an identity that may publish
 * nowhere at all: a bad token, no token where publishing needs one, a token whose `publish` list is
 * empty. Lets a route refuse before it reads a body (batch), then ask `authorize` per channel.
 */
export function authorizeSomePublishing(config: RelayConfig, identity: Identity): void {
  if (identity.kind === "invalid") throw new RelayError("unauthorized", identity.reason);
  if (!tokensEnabled(config)) {
    if (!config.allowAnonymous) throw anonymousPublishingDisabled();
    return;
  }
  if (identity.kind === "anonymous") {
    throw new RelayError("unauthorized", "Publishing needs a token: Authorization: Bearer, ?token= or the relay_token cookie.");
  }
  if (identity.claims.publish.length === 0) throw new RelayError("forbidden", "This token may not publish to any channel.");
}

function anonymousPublishingDisabled(): RelayError {
  return new RelayError(
    "unauthorized",
    'Anonymous publishing is disabled. Configure auth with `wrangler secret put RELAY_JWT_SECRET` and send a token, or set ALLOW_ANONYMOUS = "true" for local development.',
  );
}

/** How a client is known in presence: its token's `sub`, else a fresh connection id. */
export function clientIdOf(subject: string | undefined): string {
  return subject ?? crypto.randomUUID();
}

/** The identity's `sub`, when it has one. */
export function subjectOf(identity: Identity): string | undefined {
  return identity.kind === "token" ? identity.claims.subject : undefined;
}
