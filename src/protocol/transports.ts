/** How a subscriber reaches the relay; channel info and presence count by it. */
export const TRANSPORTS = ["ws", "sse", "poll"] as const;

export type Transport = (typeof TRANSPORTS)[number];

export function isTransport(value: string | null): value is Transport {
  return TRANSPORTS.includes(value as Transport);
}
