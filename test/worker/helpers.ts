import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { Envelope } from "../../src/protocol/envelope";

export const BASE = "http://relay.test";
const WAIT_MS = 5000;

/** A fresh channel per test, so tests never see each other's messages. */
export function randomChannel(prefix = "t"): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

export function relay(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(new URL(path, BASE), init));
}

export function roomStub(channel: string) {
  return env.ROOMS.get(env.ROOMS.idFromName(channel));
}

export async function publish(channel: string, data: string | Uint8Array, init: { query?: string; headers?: Record<string, string> } = {}) {
  const query = init.query ? `?${init.query}` : "";
  return relay(`/v1/channels/${channel}/messages${query}`, { method: "POST", body: data, headers: init.headers });
}

/** Publishes and returns the new id, failing the test on anything but 201. */
export async function publishOk(channel: string, data: string): Promise<string> {
  const res = await publish(channel, data);
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

export async function history(channel: string, query = "since=0&limit=1000") {
  const res = await relay(`/v1/channels/${channel}/messages?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { messages: Envelope[]; lastId: string; oldestId: string | null };
}

export async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string; [extra: string]: unknown } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(10);
  return body.error;
}

/** Waits until `predicate` holds, polling; fails with `what` after a bound. */
export async function eventually(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A test's WebSocket client: the frames it received, parsed, in order. */
export class WsClient {
  readonly frames: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.addEventListener("message", (event) => {
      const text = event.data as string;
      this.raw.push(text);
      this.frames.push(JSON.parse(text) as Record<string, unknown>);
    });
    socket.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
    });
  }

  static async connect(channel: string, query = ""): Promise<WsClient> {
    const client = await WsClient.open(`/v1/channels/${channel}/ws${query ? `?${query}` : ""}`);
    await client.waitFor((f) => f.type === "subscribed", "subscribed frame");
    return client;
  }

  /** Opens a WebSocket on any path (the multi-channel `/v1/ws` among them). */
  static async open(path: string): Promise<WsClient> {
    const res = await relay(path, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const socket = res.webSocket;
    if (!socket) throw new Error("no webSocket on a 101");
    const client = new WsClient(socket);
    socket.accept();
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  messages(channel?: string): Envelope[] {
    return this.frames.filter((f) => f.type === "message" && (channel === undefined || f.channel === channel)) as unknown as Envelope[];
  }

  async waitFor(predicate: (frame: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await eventually(() => {
      found = this.frames.find(predicate);
      return found !== undefined;
    }, what);
    return found!;
  }

  async waitForMessages(count: number): Promise<Envelope[]> {
    await eventually(() => this.messages().length >= count, `${count} messages`);
    return this.messages();
  }

  close(): void {
    this.socket.close(1000, "test done");
  }
}

/** Reads an SSE response's text as it arrives. */
export class SseReader {
  text = "";
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #done = false;

  constructor(res: Response) {
    if (!res.body) throw new Error("SSE response without a body");
    this.#reader = res.body.getReader();
    void this.#pump();
  }

  static async open(channel: string, init: { query?: string; headers?: Record<string, string> } = {}): Promise<SseReader> {
    return SseReader.openPath(`/v1/channels/${channel}/events${init.query ? `?${init.query}` : ""}`, init.headers);
  }

  static async openPath(path: string, headers?: Record<string, string>): Promise<SseReader> {
    const res = await relay(path, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/event-stream");
    return new SseReader(res);
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await this.#reader.read();
        if (done) break;
        this.text += this.#decoder.decode(value, { stream: true });
      }
    } catch {
      // Cancelled by the test.
    }
    this.#done = true;
  }

  get ended(): boolean {
    return this.#done;
  }

  /** The events so far, as a browser would dispatch them (blocks with data), with their fields. */
  events(): Array<{ id?: string; event?: string; data: string }> {
    const events = [];
    for (const block of this.text.split("\n\n")) {
      const fields = block.split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)] as const);
      const data = fields.filter(([name]) => name === "data").map(([, value]) => value);
      if (data.length === 0) continue;
      const id = fields.find(([name]) => name === "id")?.[1];
      const event = fields.find(([name]) => name === "event")?.[1];
      events.push({ id, event, data: data.join("\n") });
    }
    return events;
  }

  /** The ids of the message events so far. */
  ids(): string[] {
    return this.events().flatMap((event) => (event.id === undefined ? [] : [event.id]));
  }

  async waitForText(needle: string): Promise<void> {
    await eventually(() => this.text.includes(needle), JSON.stringify(needle));
  }

  async waitForIds(count: number): Promise<string[]> {
    await eventually(() => this.ids().length >= count, `${count} SSE events`);
    return this.ids();
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel();
  }
}

export function range(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
}
