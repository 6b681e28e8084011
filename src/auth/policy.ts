import type { RelayConfig } from "../config";
import { RelayError } from "../errors";

export type Action = "publish" | "subscribe";

/** What a request may do on a channel, decided once at the edge and carried into the room. */
export interface Grant {
  canPublish: boolean;
  /** Who the client is (a token's `sub`), when it said so. */
  subject?: string;
}

/**
 * The authorization hook every channel route calls before it touches a room.
 * Throws 401/403 when `action` is not allowed, otherwise returns what else the client may do.
 *
 * Without a token scheme configured, subscribing is open and publishing needs
 * `ALLOW_ANONYMOUS = "true"` (secure by default: a deployed relay never takes anonymous publishes
 * by accident).
 */
export function authorize(config: RelayConfig, _channel: string, action: Action): Grant {
  const canPublish = config.allowAnonymous;
  if (action === "publish" && !canPublish) {
    throw new RelayError(
      "unauthorized",
      'Anonymous publishing is disabled. Configure auth with `wrangler secret put RELAY_JWT_SECRET` and send a token, or set ALLOW_ANONYMOUS = "true" for local development.',
    );
  }
  return { canPublish };
}
