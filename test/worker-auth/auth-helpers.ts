import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createApp } from "../../src/app";
import { type ErrorCode, ErrorStatus } from "../../src/protocol/errors";
import {
  base64url,
  carry,
  craft as craftWith,
  EXPECTED,
  type Grants,
  mintWith,
  nowSeconds,
  TOKEN_KINDS,
  type TokenKind,
  type TokenSource,
  tokenOfWith,
} from "../support/tokens";
import { BASE, eventually, randomChannel, relay } from "../worker/helpers";

/** The worker-auth project's settings (vitest.config.ts). */
export const SECRET = "test-secret";
export const PREVIOUS_SECRET = "old-secret";
export const APP_ORIGIN = "https://app.example";
export const FOREIGN_ORIGIN = "https://evil.example";
export const MAX_SUBSCRIBERS = 5;
export const WS_BURST = 5;
export const HTTP_PUBLISH_LIMIT = 5;
export const HTTP_PUBLISH_PERIOD_SECONDS = 10;

/**
 * Mints an HS256 token with this project's secret; see test/support/tokens.ts.
 */
export function mint(grants: Grants, claims: Record<string, unknown> = {}, secret = SECRET): Promise<string> {
  return mintWith(secret, grants, claims);
}

/** A token of the given kind for `channel`, signed for this project's relay. */
export function tokenOf(kind: TokenKind, channel: string): Promise<string | undefined> {
  return tokenOfWith(SECRET, kind, channel);
}

/** A hand-made token, signed with this project's secret unless another (or null: unsigned) is given. */
export function craft(header: unknown, payload: unknown, secret: string | null = SECRET, hash: "SHA-256" | "SHA-512" = "SHA-256"): Promise<string> {
  return craftWith(header, payload, secret, hash);
}

export { base64url, carry, EXPECTED, type Grants, nowSeconds, TOKEN_KINDS, type TokenKind, type TokenSource };

/** How a test reaches the relay: the Worker under test, or the app with other bindings (`relayWith`). */
export type Fetcher = (path: string, init?: RequestInit) => Promise<Response>;

/** A request carrying `token`. */
export function send(
  path: string,
  token: string | undefined,
  init: RequestInit & { source?: TokenSource; headers?: Record<string, string> } = {},
  via: Fetcher = relay,
) {
  const { source, headers, ...rest } = init;
  const carried = carry(path, token, source, headers);
  return via(carried.url, { ...rest, headers: carried.headers });
}

/**
 * The Workers Rate Limiting binding's `limit({ key })` with `HTTP_PUBLISH_LIMIT` per key and a window
 * that ends when the test calls `nextWindow()`. The local binding counts in windows aligned to the
 * wall clock, so a test against it would have to wait for one to start and sleep through it.
 */
export class ManualRateLimiter implements RateLimit {
  readonly #counts = new Map<string, number>();

  async limit({ key }: RateLimitOptions): Promise<RateLimitOutcome> {
    const count = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, count);
    return { success: count <= HTTP_PUBLISH_LIMIT };
  }

  nextWindow(): void {
    this.#counts.clear();
  }
}

/** The relay's Worker app with `PUBLISH_RATE_LIMITER` replaced; rooms and every other binding are the real ones. */
export function relayWith(limiter: RateLimit): Fetcher {
  const app = createApp();
  const bindings = { ...env, PUBLISH_RATE_LIMITER: limiter };
  return async (path, init) => app.fetch(new Request(new URL(path, BASE), init), bindings, createExecutionContext());
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
  static async open(path: string, token?: string, init: { source?: TokenSource; headers?: Record<string, string> } = {}, via: Fetcher = relay): Promise<Ws> {
    const res = await send(path, token, { source: init.source, headers: { Upgrade: "websocket", ...init.headers } }, via);
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
    await eventually(() => {
      found = this.frames.find(predicate);
      return found !== undefined;
    }, what);
    return found!;
  }

  /** Sends a frame and returns the first frame (after those already seen) that `predicate` accepts. */
  async request(frame: unknown, predicate: (frame: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
    const seen = this.frames.length;
    this.send(frame);
    let found: Record<string, unknown> | undefined;
    await eventually(() => {
      found = this.frames.slice(seen).find(predicate);
      return found !== undefined;
    }, what);
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
