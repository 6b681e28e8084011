/**
 * WebSocket close codes shared by the relay and its clients.
 * 1008 and 4000–4999 are terminal: a client must not reconnect without changing something
 * (a new token, another channel); every other code is worth a reconnect with backoff.
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  PolicyViolation: 1008,
  InternalError: 1011,
  /** Something behind the connection restarted (a channel's room): reconnect and resume with `since`. */
  TryAgainLater: 1013,
  Unauthorized: 4001,
  /** The connection's token expired: reconnect only with a new one. */
  TokenExpired: 4002,
  Forbidden: 4003,
  /** The client kept publishing past its rate limit. */
  RateLimited: 4029,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Whether a close code tells the client not to reconnect on its own. */
export function isTerminalCloseCode(code: number): boolean {
  return code === CloseCode.PolicyViolation || (code >= 4000 && code <= 4999);
}
