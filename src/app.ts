import { Hono } from "hono";
import type { AppEnv } from "./app-env";
import { authenticate } from "./auth/identity";
import { corsForHttp } from "./auth/origins";
import { readConfig } from "./config";
import { renderError, renderNotFound } from "./errors";
import { batch } from "./routes/batch";
import { channels } from "./routes/channels";
import { multiplex } from "./routes/multiplex";
import { resource } from "./routes/resource";
import { site } from "./routes/site";

/** Builds the relay's Worker app: settings, who is asking, CORS, routes, the demo page, and API.md's JSON errors. */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    const config = readConfig(c.env);
    c.set("config", config);
    c.set("identity", await authenticate(c.req.raw, config));
    await next();
  });
  app.use(corsForHttp());

  resource(app, "/healthz", { GET: (c) => c.json({ ok: true }) });
  app.route("/v1/channels", channels);
  app.route("/v1", batch);
  app.route("/v1", multiplex);
  app.route("/", site);

  app.notFound(renderNotFound);
  app.onError(renderError);
  return app;
}
