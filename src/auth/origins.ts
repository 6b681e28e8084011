import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../app-env";
import type { RelayConfig } from "../config";
import { RelayError } from "../protocol/errors";
import type { Identity } from "./identity";

/** Whether `CORS_ORIGINS` lets this origin in: a listed origin, or any with `*`. */
export function isAllowedOrigin(config: RelayConfig, origin: string): boolean {
  return config.corsOrigins.includes("*") || config.corsOrigins.includes(origin);
}

/**
 * CORS for the HTTP routes, preflights included. WebSocket upgrades are left alone: a 101 has
 * immutable headers, and browsers do not apply CORS to WebSockets (see `checkWebSocketOrigin`).
 */
export function corsForHttp(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.header("Upgrade")?.toLowerCase() === "websocket") return next();
    const config = c.get("config");
    const anyOrigin = config.corsOrigins.includes("*");
    const middleware = cors({
      origin: anyOrigin ? "*" : (origin) => (isAllowedOrigin(config, origin) ? origin : null),
      allowMethods: ["GET", "POST", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "Last-Event-ID"],
      exposeHeaders: ["Retry-After"],
      // Cookies (relay_token) cross origins only to origins named one by one.
      credentials: !anyOrigin,
      maxAge: 600,
    });
    return middleware(c, next);
  };
}

/**
 * Refuses WebSocket upgrades from foreign pages, which browsers allow whatever CORS says:
 * cross-site WebSocket hijacking rides on cookies. Non-browser clients send no Origin; a page on
 * the relay's own origin is always welcome; others need CORS_ORIGINS, and with `*` they may not
 * use the cookie.
 */
export function checkWebSocketOrigin(request: Request, config: RelayConfig, identity: Identity): void {
  const origin = request.headers.get("Origin");
  if (origin === null || origin === new URL(request.url).origin) return;
  const listed = config.corsOrigins.includes(origin);
  const viaCookie = identity.kind === "token" && identity.source === "cookie";
  if (listed || (config.corsOrigins.includes("*") && !viaCookie)) return;
  throw new RelayError("forbidden", `WebSocket connections from ${origin} are not allowed; add it to CORS_ORIGINS.`);
}
