import { Hono } from "hono";
import type { AppEnv } from "./app-env";
import { readConfig } from "./config";
import { renderError, renderNotFound } from "./errors";
import { batch } from "./routes/batch";
import { channels } from "./routes/channels";
import { multiplex } from "./routes/multiplex";
import { resource } from "./routes/resource";

/** Builds the relay's Worker app: settings, routes, and API.md's JSON errors for everything else. */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set("config", readConfig(c.env));
    await next();
  });

  resource(app, "/healthz", { GET: (c) => c.json({ ok: true }) });
  app.route("/v1/channels", channels);
  app.route("/v1", batch);
  app.route("/v1", multiplex);

  app.notFound(renderNotFound);
  app.onError(renderError);
  return app;
}
