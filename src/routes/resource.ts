import type { Handler, Hono } from "hono";
import { RelayError } from "../errors";
import type { AppEnv } from "../app-env";

type Method = "GET" | "POST";

/**
 * Registers one path's handlers, and a 405 with an `Allow` header for every other method,
 * so a wrong method is told apart from an unknown route.
 */
export function resource(app: Hono<AppEnv>, path: string, handlers: Partial<Record<Method, Handler<AppEnv>>>): void {
  const allow = Object.keys(handlers).join(", ");
  for (const [method, handler] of Object.entries(handlers)) app.on(method, path, handler);
  app.all(path, (c) => {
    throw new RelayError("method_not_allowed", `${c.req.method} is not allowed here; use ${allow}.`, { headers: { Allow: allow } });
  });
}
