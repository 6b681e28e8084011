import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { checkWriteOrigin } from "../auth/origins";
import { publisherKey } from "../limits/publish-rate";
import { clientPublisher, type Publisher } from "../room/publish";

/**
 * Who publishes with an HTTP write (a publish, a batch). A write that the `relay_token` cookie
 * authorizes from a foreign page is refused here, with 403, before anything of it is read.
 */
export function writePublisher(c: Context<AppEnv>): Publisher {
  const config = c.get("config");
  const identity = c.get("identity");
  checkWriteOrigin(c.req.raw, config, identity);
  return clientPublisher(config, identity, publisherKey(identity, c.req.raw));
}
