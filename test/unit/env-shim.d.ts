/**
 * The one Worker binding that src modules imported by unit tests name (src/limits/publish-rate.ts),
 * for tsconfig.node.json, which has no Workers types. The Worker program (tsconfig.json) uses the
 * real, generated `Env` of worker-configuration.d.ts and never sees this file.
 */
interface Env {
  PUBLISH_RATE_LIMITER: { limit(options: { key: string }): Promise<{ success: boolean }> };
}
