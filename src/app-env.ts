import type { Context } from "hono";
import type { Identity } from "./auth/identity";
import { type Action, authorize, type Grant } from "./auth/policy";
import type { RelayConfig } from "./config";

/** The Hono environment of every route: the Worker's bindings, the settings and who is asking. */
export interface AppEnv {
  Bindings: Env;
  Variables: { config: RelayConfig; identity: Identity };
}

/** What this request may do on a channel; throws 401/403 when `action` is not allowed. */
export function grantFor(c: Context<AppEnv>, channel: string, action: Action): Grant {
  return authorize(c.get("config"), c.get("identity"), channel, action);
}
