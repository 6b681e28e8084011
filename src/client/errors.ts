/**
 * What went wrong, as a stable `code` to branch on and a sentence to show. Server errors keep the
 * relay's code (`forbidden`, `message_too_large`, …); the client adds its own:
 *
 * | code | meaning |
 * |---|---|
 * | `queue_full` | offline and `maxQueuedPublishes` publishes already wait |
 * | `closed` | the client was closed (or stopped on a terminal error) |
 * | `token_expired`, `unauthorized`, `forbidden`, `rate_limited`, `policy_violation` | a terminal close code |
 * | `token_failed` | the `token` function threw |
 * | `handler_failed` | a subscription handler threw (delivery goes on) |
 * | `unsupported` | a pinned transport this environment cannot run |
 * | `invalid_channel`, `invalid_event` | refused before sending |
 */
export class RelayClientError extends Error {
  override readonly name = "RelayClientError";
  readonly code: string;
  /** HTTP status, when the relay answered one. */
  readonly status: number | undefined;
  /** WebSocket close code, when a close said it. */
  readonly closeCode: number | undefined;
  /** The channel it concerns, when it concerns one. */
  readonly channel: string | undefined;

  constructor(code: string, message: string, details: { status?: number; closeCode?: number; channel?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.closeCode = details.closeCode;
    this.channel = details.channel;
  }
}

/** Reads the relay's JSON error body (`{"error":{"code","message"}}`) into an error; never throws. */
export async function errorFromResponse(response: { status: number; text(): Promise<string> }, channel?: string): Promise<RelayClientError> {
  let code = `http_${response.status}`;
  let message = `The relay answered HTTP ${response.status}.`;
  try {
    const body = JSON.parse(await response.text()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    // Not the relay's JSON (a proxy's page): keep the status.
  }
  return new RelayClientError(code, message, { status: response.status, ...(channel === undefined ? {} : { channel }) });
}
