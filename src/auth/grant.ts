import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { type Action, authorize, type Grant } from "./policy";

/** What this request may do on a channel; throws 401/403 when `action` is not allowed. */
export function grantFor(c: Context<AppEnv>, channel: string, action: Action): Grant {
  return authorize(c.get("config"), c.get("identity"), channel, action);
}
