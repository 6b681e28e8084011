import type { Handler, Hono } from "hono";
import type { AppEnv } from "../app-env";
import { RelayError } from "../protocol/errors";

type Method = "GET" | "POST";

export interface ResourceOptions {
  /**
   * The GET subscribes (SSE, WebSocket, long-poll): HEAD, which Hono routes as a GET and answers
   * by running it, is refused instead, so it cannot leave a subscriber behind.
   */
  subscribes?: boolean;
}

/**
 * Registers one path's handlers, and a 405 with an `Allow` header for every other method,
 * so a wrong method is told apart from an unknown route.
 */
export function resource(app: Hono<AppEnv>, path: string, handlers: Partial<Record<Method, Handler<AppEnv>>>, options: ResourceOptions = {}): void {
  const allow = Object.keys(handlers).join(", ");
  const refuse = (method: string): never => {
    throw new RelayError("method_not_allowed", `${method} is not allowed here; use ${allow}.`, { headers: { Allow: allow } });
  };
  for (const [method, handler] of Object.entries(handlers)) {
    const guarded: Handler<AppEnv> = options.subscribes ? (c, next) => (c.req.method === "HEAD" ? refuse("HEAD") : handler(c, next)) : handler;
    app.on(method, path, guarded);
  }
  app.all(path, (c) => refuse(c.req.method));
}
