import { sign } from "hono/jwt";
import { expect } from "vitest";
import { ErrorStatus, type ErrorCode } from "../../src/protocol/errors";
import { eventually, randomChannel, relay } from "../worker/helpers";

/** The worker-auth project's settings (vitest.config.ts). */
export const SECRET = "test-secret";
export const PREVIOUS_SECRET = "old-secret";
export const APP_ORIGIN = "https://app.example";
export const FOREIGN_ORIGIN = "https://evil.example";
export const MAX_SUBSCRIBERS = 5;
export const WS_BURST = 5;
export const HTTP_PUBLISH_LIMIT = 5;
export const HTTP_PUBLISH_PERIOD_SECONDS = 10;

export const nowSeconds = () => Math.floor(Date.now() / 1000);

export interface Grants {
  publish?: string[];
  subscribe?: string[];
}

/**
 * Mints an HS256 token with the relay's secret. Every token gets its own `sub` unless told
 * otherwise, so the per-subject publish rate limit never couples two tests.
 */
export async function mint(grants: Grants, claims: Record<string, unknown> = {}, secret = SECRET): Promise<string> {
  const payload = { sub: `u-${crypto.randomUUID()}`, exp: nowSeconds() + 300, relay: grants, ...claims };
  return sign(payload, secret, "HS256");
}

const encoder = new TextEncoder();

export function base64url(bytes: Uint8Array | string): string {
  const data = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
  let binary = "";
  for (const byte of data) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function hmac(hash: "SHA-256" | "SHA-512", secret: string, input: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash }, false, ["sign"]);
  return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(input))));
}

/** A hand-made token: any header and payload; HMAC-signed with `hash`, or unsigned when `secret` is null. */
export async function craft(header: unknown, payload: unknown, secret: string | null = SECRET, hash: "SHA-256" | "SHA-512" = "SHA-256"): Promise<string> {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  return `${input}.${secret === null ? "" : await hmac(hash, secret, input)}`;
}

/** The token cases of the route matrix: every kind of bad token, a token without the right, a good one. */
export const TOKEN_KINDS = ["none", "bad signature", "wrong algorithm", "alg none", "expired", "nbf in future", "wrong scope", "right scope"] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** What each kind must get: 401 for no or bad tokens, 403 without the right, success with it. */
export const EXPECTED: Record<TokenKind, string> = {
  none: "401 unauthorized",
  "bad signature": "401 unauthorized",
  "wrong algorithm": "401 unauthorized",
  "alg none": "401 unauthorized",
  expired: "401 unauthorized",
  "nbf in future": "401 unauthorized",
  "wrong scope": "403 forbidden",
  "right scope": "ok",
};

/** A token of the given kind for `channel`; the good kinds grant both publish and subscribe there. */
export async function tokenOf(kind: TokenKind, channel: string): Promise<string | undefined> {
  const right = { publish: [channel], subscribe: [channel] };
  const now = nowSeconds();
  switch (kind) {
    case "none":
      return undefined;
    case "bad signature":
      return mint(right, {}, "not-the-secret");
    case "wrong algorithm":
      return sign({ sub: `u-${crypto.randomUUID()}`, exp: now + 300, relay: right }, SECRET, "HS512");
    case "alg none":
      return craft({ alg: "none", typ: "JWT" }, { sub: "mallory", exp: now + 300, relay: right }, null);
    case "expired":
      return mint(right, { exp: now - 120 });
    case "nbf in future":
      return mint(right, { nbf: now + 120, exp: now + 600 });
    case "wrong scope":
      return mint({ publish: ["other-*"], subscribe: ["other-*"] });
    case "right scope":
      return mint(right);
  }
}

export type TokenSource = "header" | "query" | "cookie";

/** A path and headers carrying `token` the given way. */
export function carry(path: string, token: string | undefined, source: TokenSource = "header", headers: Record<string, string> = {}) {
  const all = { ...headers };
  let url = path;
  if (token !== undefined) {
    if (source === "header") all.Authorization = `Bearer ${token}`;
    if (source === "query") url += `${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
    if (source === "cookie") all.Cookie = `theme=dark; relay_token=${token}; lang=en`;
  }
  return { url, headers: all };
}

/** A request carrying `token`. */
export function send(path: string, token: string | undefined, init: RequestInit & { source?: TokenSource; headers?: Record<string, string> } = {}) {
  const { source, headers, ...rest } = init;
  const carried = carry(path, token, source, headers);
  return relay(carried.url, { ...rest, headers: carried.headers });
}

/** "ok" for a success status, else "<status> <code>" read from the JSON error body. */
export async function outcomeOf(res: Response, success: number): Promise<string> {
  if (res.status === success) {
    if (res.webSocket) {
      res.webSocket.accept();
      res.webSocket.close(1000, "done");
    } else await res.body?.cancel();
    return "ok";
  }
  expect(res.headers.get("Content-Type"), `status ${res.status}`).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.message.length).toBeGreaterThan(10);
  return `${res.status} ${body.error.code}`;
}

/** An error frame's code as the matrix writes outcomes: "<status> <code>". */
export function frameOutcome(frame: Record<string, unknown>): string {
  if (frame.type !== "error") return "ok";
  const code = (frame.error as { code: ErrorCode }).code;
  return `${ErrorStatus[code]} ${code}`;
}

/**
 * A test WebSocket opened with any headers (token, Origin, cookie): the frames it received, parsed,
 * and how it closed. (The shared WsClient opens with an Upgrade header only.)
 */
export class Ws {
  readonly frames: Array<Record<string, unknown>> = [];
  closed: { code: number; reason: string } | undefined;

  constructor(readonly socket: WebSocket) {
    socket.addEventListener("message", (event) => {
      this.frames.push(JSON.parse(event.data as string) as Record<string, unknown>);
    });
    socket.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
    });
    socket.accept();
  }

  /** Opens a WebSocket on `path`, expecting 101. */
  static async open(path: string, token?: string, init: { source?: TokenSource; headers?: Record<string, string> } = {}): Promise<Ws> {
    const res = await send(path, token, { source: init.source, headers: { Upgrade: "websocket", ...init.headers } });
    if (res.status !== 101) throw new Error(`upgrade of ${path} answered ${res.status}: ${await res.text()}`);
    return new Ws(res.webSocket!);
  }

  /** Opens a channel's socket and waits for its `subscribed` frame. */
  static async connect(channel: string, token?: string, init: { source?: TokenSource; headers?: Record<string, string>; query?: string } = {}): Promise<Ws> {
    const ws = await Ws.open(`/v1/channels/${channel}/ws${init.query ? `?${init.query}` : ""}`, token, init);
    await ws.waitFor((f) => f.type === "subscribed", "subscribed frame");
    return ws;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" || frame instanceof ArrayBuffer || frame instanceof Uint8Array ? frame : JSON.stringify(frame));
  }

  async waitFor(predicate: (frame: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await eventually(() => (found = this.frames.find(predicate)) !== undefined, what);
    return found!;
  }

  /** Sends a frame and returns the first frame (after those already seen) that `predicate` accepts. */
  async request(frame: unknown, predicate: (frame: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
    const seen = this.frames.length;
    this.send(frame);
    let found: Record<string, unknown> | undefined;
    await eventually(() => (found = this.frames.slice(seen).find(predicate)) !== undefined, what);
    return found!;
  }

  async waitClosed(what = "close"): Promise<{ code: number; reason: string }> {
    await eventually(() => this.closed !== undefined, what);
    return this.closed!;
  }

  close(): void {
    try {
      this.socket.close(1000, "test done");
    } catch {
      // Already closed.
    }
  }
}

export { eventually, randomChannel, relay };
