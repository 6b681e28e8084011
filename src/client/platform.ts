/**
 * The few platform APIs the client uses, typed structurally so a browser's globals, Node's and
 * test fakes all fit, and so this folder compiles against DOM types without depending on them.
 */

/** A browser `WebSocket`, or anything shaped like one. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "error", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The parts of a `fetch` Response the client reads. */
export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
}

export interface RequestInitLike {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export type FetchLike = (url: string, init?: RequestInitLike) => Promise<ResponseLike>;

/** `window` (fires `online`) or `document` (fires `visibilitychange`). */
export interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

export interface DocumentLike extends EventTargetLike {
  readonly visibilityState?: string;
}

/** What the global object may offer; read through this so no environment's lib is assumed. */
interface Globals {
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  window?: EventTargetLike;
  document?: DocumentLike;
  location?: { href: string; origin: string };
  crypto?: { randomUUID?: () => string };
}

export const globals = globalThis as unknown as Globals;

/** A random id for publish refs and idempotency keys. */
export function randomId(random: () => number = Math.random): string {
  const uuid = globals.crypto?.randomUUID;
  if (uuid) return uuid.call(globals.crypto);
  let id = "";
  for (let i = 0; i < 4; i++)
    id += Math.floor(random() * 2 ** 32)
      .toString(36)
      .padStart(7, "0");
  return id;
}
