/** How reconnect delays grow: `initialDelay · factor^attempt`, capped at `maxDelay` (all in ms). */
export interface BackoffOptions {
  /** Ceiling of the first delay. */
  initialDelay: number;
  /** Ceiling no delay exceeds. */
  maxDelay: number;
  /** Growth of the ceiling per failed attempt. */
  factor: number;
}

/**
 * Full-jitter exponential backoff: a uniformly random delay between 0 and the attempt's ceiling,
 * so clients that lost the relay together do not come back together.
 * Pure: the randomness comes in as `random` (a `Math.random`-like function returning [0, 1)).
 *
 * @example
 * backoffDelay(0, { initialDelay: 1000, maxDelay: 30_000, factor: 2 }) // 0 … 999
 * backoffDelay(3, { initialDelay: 1000, maxDelay: 30_000, factor: 2 }) // 0 … 7999
 * backoffDelay(9, { initialDelay: 1000, maxDelay: 30_000, factor: 2 }) // 0 … 29_999
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(attempt, options));
}

/** The largest delay `backoffDelay` may return for `attempt` (exclusive). */
export function backoffCeiling(attempt: number, { initialDelay, maxDelay, factor }: BackoffOptions): number {
  // Exponent capped so a long outage cannot overflow to Infinity before the min() applies.
  return Math.min(maxDelay, initialDelay * factor ** Math.min(Math.max(attempt, 0), 64));
}
