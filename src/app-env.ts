import type { Identity } from "./auth/identity";
import type { RelayConfig } from "./config";

/** The Hono environment of every route: the Worker's bindings, the settings and who is asking. */
export interface AppEnv {
  Bindings: Env;
  Variables: { config: RelayConfig; identity: Identity };
}
