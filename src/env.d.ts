// Secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are optional.
declare namespace Cloudflare {
  interface Env {
    /** `wrangler secret put RELAY_JWT_SECRET`: turns token auth on. */
    RELAY_JWT_SECRET?: string;
    /** The secret being rotated out; tokens signed with it stay valid until it is removed. */
    RELAY_JWT_SECRET_PREVIOUS?: string;
    /** `wrangler secret put WEBHOOK_SECRET`: signs webhook POSTs (with WEBHOOK_URL). */
    WEBHOOK_SECRET?: string;
  }
}
