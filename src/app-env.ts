import type { RelayConfig } from "./config";

/** The Hono environment of every route: the Worker's bindings and the parsed settings. */
export interface AppEnv {
  Bindings: Env;
  Variables: { config: RelayConfig };
}
