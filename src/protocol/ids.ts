/**
 * Message ids are a channel's sequence numbers, carried as decimal strings ("1", "2", …).
 * `"0"` names the position before the first message.
 */
export type MessageId = string;

// Leading zeros are harmless ("05" is 5); signs, spaces, exponents and hex are not ids.
const DECIMAL = /^[0-9]+$/;

/**
 * Parses a cursor (`since`, `Last-Event-ID`, `If-Match`): a non-negative safe integer in decimal.
 * Returns `undefined` for anything else, never throws.
 * @example parseSeq("17") // 17
 * @example parseSeq("-1") // undefined
 */
export function parseSeq(value: string): number | undefined {
  if (!DECIMAL.test(value)) return undefined;
  const seq = Number(value);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/** Formats a sequence number as a message id. */
export function formatId(seq: number): MessageId {
  return String(seq);
}
