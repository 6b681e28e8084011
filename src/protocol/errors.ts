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
