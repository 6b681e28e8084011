import { logEvent } from "../observability/log";
import type { WebhookEvent } from "./events";
import { SIGNATURE_HEADER, signatureHeader } from "./signature";

/** Where the app's backend hears the relay's events, and the secret they are signed with. */
export interface WebhookTarget {
  url: string;
  secret: string;
}

/** A receiver that has not answered by then counts as failed; the POST is retried. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** The longest wait between two tries. */
const MAX_RETRY_DELAY_SECONDS = 300;

/** Backoff between tries: 2 s after the first failure, doubling, at most 5 minutes. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(2 ** Math.max(1, attempts), MAX_RETRY_DELAY_SECONDS);
}

/** What the consumer needs of a queue batch (the runtime's `MessageBatch<WebhookEvent>`). */
export interface WebhookBatch {
  readonly messages: ReadonlyArray<{ readonly body: WebhookEvent; readonly attempts: number; retry(options?: { delaySeconds?: number }): void }>;
  ackAll(): void;
}

export type WebhookOutcome = { delivered: true } | { delivered: false; why: string };

/**
 * POSTs one batch of events as `{"events":[…]}`, signed (`Relay-Signature`). Resolves with whether
 * the receiver took it (any 2xx); never throws.
 */
export async function postWebhook(target: WebhookTarget, events: WebhookEvent[], fetchImpl: typeof fetch = fetch, nowMs = Date.now()): Promise<WebhookOutcome> {
  const body = JSON.stringify({ events });
  const headers = {
    "Content-Type": "application/json",
    "User-Agent": "edge-relay-webhooks",
    [SIGNATURE_HEADER]: await signatureHeader(target.secret, body, Math.floor(nowMs / 1000)),
  };
  try {
    const response = await fetchImpl(target.url, { method: "POST", headers, body, signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
    await response.body?.cancel();
    return response.ok ? { delivered: true } : { delivered: false, why: `answered ${response.status}` };
  } catch (error) {
    return { delivered: false, why: error instanceof Error && error.name === "TimeoutError" ? "timed out" : `failed: ${String(error)}` };
  }
}

/**
 * The queue consumer: one POST per batch the queue hands over (up to `max_batch_size` events,
 * wrangler.toml). Taken: every message is acknowledged. Refused or timed out: every message is
 * retried with backoff, and after `max_retries` the queue moves it to the dead-letter queue.
 * Delivery is at least once; receivers drop repeats by event `id`.
 */
export async function deliverWebhooks(batch: WebhookBatch, target: WebhookTarget | undefined, fetchImpl: typeof fetch = fetch): Promise<void> {
  if (!target) {
    // Webhooks were turned off after these events were queued: nobody is waiting for them.
    batch.ackAll();
    return;
  }
  const outcome = await postWebhook(
    target,
    batch.messages.map((message) => message.body),
    fetchImpl,
  );
  if (outcome.delivered) return batch.ackAll();
  const attempts = Math.max(...batch.messages.map((message) => message.attempts));
  logEvent("warn", "webhook.failed", { url: target.url, why: outcome.why, events: batch.messages.length, attempts });
  for (const message of batch.messages) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
}
