import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { logEvent } from "./observability/log";
import { Metric, Metrics } from "./observability/metrics";
import { RelayError } from "./protocol/errors";

/**
 * A Durable Object call the platform failed (the room overloaded, restarting or unreachable) as a
 * 503 with Retry-After; `undefined` for any other error. Overload is answered at once, never retried
 * here: retrying would add to it. A publish that failed this way may still have been stored, so a
 * publisher retries with the same Idempotency-Key.
 */
export function unavailableError(error: unknown): RelayError | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { overloaded, retryable } = error as { overloaded?: unknown; retryable?: unknown };
  const retry = { headers: { "Retry-After": "1" } };
  if (overloaded === true)
    return new RelayError("unavailable", "The channel is overloaded; retry after Retry-After seconds (a publish with the same Idempotency-Key).", retry);
  if (retryable === true)
    return new RelayError(
      "unavailable",
      "The channel could not be reached just now; retry after Retry-After seconds (a publish with the same Idempotency-Key).",
      retry,
    );
  return undefined;
}

/**
 * Any error as what a client is told: a RelayError as it is, a platform failure as `unavailable`,
 * anything else (a bug) as a plain `internal`, logged here and never shown.
 */
export function asRelayError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  const unavailable = unavailableError(error);
  if (unavailable) return unavailable;
  logEvent("error", "request.failed", { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  return new RelayError("internal", "The relay failed to handle this request; try again.");
}

/** `app.onError`: RelayErrors as they are, platform failures as 503, anything else as a plain 500 without internals. */
export function renderError(err: Error, c?: Context): Response {
  const error =
    err instanceof HTTPException && err.status < 500 ? new RelayError("invalid_request", err.message || "The request could not be read.") : asRelayError(err);
  if (c) recordRefusal(c, error);
  return error.toResponse();
}

/** Limits and failures are what an operator watches: a metric for every refusal, a log line for those past a limit. */
function recordRefusal(c: Context, error: RelayError): void {
  new Metrics((c.env as Partial<Env>).METRICS).count(Metric.Refusal, c.req.param("channel") ?? "", error.code);
  if (error.status === 429 || error.status === 503)
    logEvent("warn", "request.refused", { method: c.req.method, path: new URL(c.req.url).pathname, code: error.code });
}

export function renderNotFound(c: Context): Response {
  return new RelayError("not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}; see the API reference.`).toResponse();
}
