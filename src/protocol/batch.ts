import { type BatchFrame, ServerFrameType } from "./frames";

// Batch frames on the wire: `{"type":"batch","messages":[envelope, …]}`, built from envelopes
// already encoded as JSON (so the room encodes each message once, whoever gets it) and taken apart
// again by the Worker for a client that did not ask for batches.

const BATCH_HEAD = `{"type":"${ServerFrameType.Batch}","messages":[`;
const BATCH_TAIL = "]}";
/** The bytes a batch frame adds around its envelopes; each envelope after the first adds a comma. */
export const BATCH_OVERHEAD = BATCH_HEAD.length + BATCH_TAIL.length;

/**
 * The frames that carry `envelopes` (JSON texts, in id order): as many as fit go in one batch frame
 * of at most `maxBytes` UTF-8 bytes; a frame that would hold one envelope is that envelope as it is
 * (also one larger than `maxBytes`).
 *
 * @example packFrames(['{"type":"message",…"id":"1"…}', '{"type":"message",…"id":"2"…}'], 65536)
 * // ['{"type":"batch","messages":[{"type":"message",…"id":"1"…},{"type":"message",…"id":"2"…}]}']
 */
export function packFrames(envelopes: readonly string[], maxBytes: number): string[] {
  const frames: string[] = [];
  let start = 0;
  let bytes = BATCH_OVERHEAD;
  for (let i = 0; i < envelopes.length; i++) {
    const size = utf8Length(envelopes[i]!);
    // Every envelope after a frame's first adds a comma.
    if (i > start && bytes + 1 + size > maxBytes) {
      frames.push(frameOf(envelopes, start, i));
      start = i;
      bytes = BATCH_OVERHEAD;
    }
    bytes += (i > start ? 1 : 0) + size;
  }
  if (start < envelopes.length) frames.push(frameOf(envelopes, start, envelopes.length));
  return frames;
}

function frameOf(envelopes: readonly string[], start: number, end: number): string {
  return end - start === 1 ? envelopes[start]! : `${BATCH_HEAD}${envelopes.slice(start, end).join(",")}${BATCH_TAIL}`;
}

/** Whether a frame's text, as a room sends it, is a batch frame. */
export function isBatchFrameText(text: string): boolean {
  return text.startsWith(BATCH_HEAD);
}

/**
 * The frames a client that did not ask for batches gets for one frame from a room: each envelope
 * of a batch frame as its own frame (the same text the room sends such a client), else the frame.
 */
export function unpackFrame(text: string): string[] {
  if (!isBatchFrameText(text)) return [text];
  return (JSON.parse(text) as BatchFrame).messages.map((envelope) => JSON.stringify(envelope));
}

/** UTF-8 bytes of a string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
      continue;
    }
    bytes += 2;
    // A surrogate pair is 4 bytes for its 2 units; a lone surrogate is encoded as U+FFFD (3 bytes).
    const next = text.charCodeAt(i + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
  }
  return bytes;
}
