import type { MessageId } from "./ids";

/** A stored message as every JSON transport carries it (WebSocket, history, long-poll). */
export interface Envelope {
  type: "message";
  channel: string;
  id: MessageId;
  event: string;
  /** The published body: UTF-8 text, or base64 when `encoding` says so. */
  data: string;
  /** Server time of the publish, ms since the epoch. */
  ts: number;
  encoding?: "base64";
}

/** The body of a publish, decoded for JSON transports. */
export interface EncodedData {
  data: string;
  encoding?: "base64";
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Carries a published body byte for byte: as text when it is valid UTF-8, else as base64.
 * @example encodeData(new TextEncoder().encode("hi")) // { data: "hi" }
 */
export function encodeData(bytes: Uint8Array): EncodedData {
  try {
    return { data: utf8.decode(bytes) };
  } catch {
    return { data: toBase64(bytes), encoding: "base64" };
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}
