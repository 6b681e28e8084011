import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
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
  console.error("unhandled error", error);
  return new RelayError("internal", "The relay failed to handle this request; try again.");
}

/** `app.onError`: RelayErrors as they are, platform failures as 503, anything else as a plain 500 without internals. */
export function renderError(err: Error, _c: Context): Response {
  if (err instanceof HTTPException && err.status < 500) {
    return new RelayError("invalid_request", err.message || "The request could not be read.").toResponse();
  }
  return asRelayError(err).toResponse();
}

export function renderNotFound(c: Context): Response {
  return new RelayError("not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}; see the API reference.`).toResponse();
}
