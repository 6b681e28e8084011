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
 * The one Origin rule, for what browsers send to any site whatever CORS says: WebSocket upgrades,
 * and writes carrying the `relay_token` cookie (cross-site WebSocket hijacking and cross-site
 * request forgery both ride on the cookie). Non-browser clients send no Origin; a page on the
 * relay's own origin is always welcome; another origin must be listed in CORS_ORIGINS, and under
 * `*` it is welcome only without the cookie.
 */
export function isTrustedOrigin(request: Request, config: RelayConfig, identity: Identity): boolean {
  const origin = request.headers.get("Origin");
  if (origin === null || origin === new URL(request.url).origin) return true;
  if (config.corsOrigins.includes(origin)) return true;
  return config.corsOrigins.includes("*") && !isCookieIdentity(identity);
}

/** Refuses WebSocket upgrades from foreign pages (`isTrustedOrigin`), with 403. */
export function checkWebSocketOrigin(request: Request, config: RelayConfig, identity: Identity): void {
  if (isTrustedOrigin(request, config, identity)) return;
  throw new RelayError("forbidden", `WebSocket connections from ${request.headers.get("Origin")} are not allowed; add it to CORS_ORIGINS.`);
}

/**
 * Refuses a cookie-authenticated write (HTTP publish, batch) from a foreign page (`isTrustedOrigin`),
 * with 403. A write that carries its token in a header or the query needs no check: a page that
 * holds the token can use it anyway; only the cookie is sent without the page knowing it.
 */
export function checkWriteOrigin(request: Request, config: RelayConfig, identity: Identity): void {
  if (!isCookieIdentity(identity) || isTrustedOrigin(request, config, identity)) return;
  const origin = request.headers.get("Origin");
  throw new RelayError(
    "forbidden",
    `The relay_token cookie does not authorize writes from ${origin}; list the origin in CORS_ORIGINS, or send the token in Authorization.`,
  );
}

function isCookieIdentity(identity: Identity): boolean {
  return identity.kind === "token" && identity.source === "cookie";
}
