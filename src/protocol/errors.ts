/** The error codes of API.md (and `unavailable`, docs/api.md), each with the HTTP status it is sent with. */
export const ErrorStatus = {
  invalid_request: 400,
  invalid_channel: 400,
  invalid_event: 400,
  invalid_idempotency_key: 400,
  invalid_frame: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  precondition_failed: 412,
  message_too_large: 413,
  unsupported_media_type: 415,
  upgrade_required: 426,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ErrorStatus;

/** The `error` member of every error body and error frame. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  [extra: string]: unknown;
}

/**
 * The one error type routes throw. It knows its status and code; `onError` renders it as
 * API.md's JSON body.
 *
 * @example throw new RelayError("invalid_channel", "Channel names are 1–128 characters …")
 */
export class RelayError extends Error {
  override readonly name = "RelayError";
  readonly status: (typeof ErrorStatus)[ErrorCode];

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: { headers?: Record<string, string>; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.status = ErrorStatus[code];
  }

  /** Rebuilds the error a room answered with (rooms speak the same JSON errors). */
  static async fromResponse(response: Response): Promise<RelayError> {
    const body = (await response.json().catch(() => undefined)) as { error?: Partial<ErrorBody> } | undefined;
    const code = body?.error?.code;
    if (code === undefined || !Object.hasOwn(ErrorStatus, code)) {
      return new RelayError("internal", "The channel could not be reached; try again.");
    }
    const retryAfter = response.headers.get("Retry-After");
    return new RelayError(code, body?.error?.message ?? code, retryAfter ? { headers: { "Retry-After": retryAfter } } : {});
  }

  toResponse(): Response {
    const body: ErrorBody = { code: this.code, message: this.message, ...this.options.details };
    return Response.json({ error: body }, { status: this.status, headers: this.options.headers });
  }
}
