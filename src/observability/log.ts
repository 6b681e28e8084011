/**
 * One structured JSON line per noteworthy event, for Workers Logs (`[observability]` in
 * wrangler.toml): errors, refusals past a limit, forced closes. Fields are names, codes and
 * counts — never message contents or tokens.
 *
 * @example logEvent("warn", "limit.refused", { code: "rate_limited", limit: "MAX_CONNECTIONS_PER_IP" })
 */
export function logEvent(level: "info" | "warn" | "error", event: string, fields: Record<string, string | number | boolean | undefined> = {}): void {
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
