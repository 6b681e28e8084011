import { describe, expect, it, vi } from "vitest";
import { KEEPALIVE, SSEStream } from "../../src/sse/stream";

// SSEStream's body is the runtime's own IdentityTransformStream, so it is tested here, in workerd.
// The runtime settles a write a turn after the client reads it: `caughtUp` waits for that.

const decoder = new TextDecoder();
const RETRY = "retry: 3000\n\n";

function open(options: { bufferBytes?: number; owned?: boolean; keepaliveSeconds?: number } = {}) {
  const behind: SSEStream[] = [];
  const onEnd = vi.fn();
  const stream = new SSEStream({
    keepaliveSeconds: options.keepaliveSeconds ?? 3600,
    ownerKeepsAlive: options.owned !== false,
    bufferBytes: options.bufferBytes ?? 1 << 20,
    onEnd,
    onBehind: options.owned === false ? undefined : (s) => behind.push(s),
  });
  const reader = stream.response.body!.getReader();
  const read = async (): Promise<string | undefined> => {
    const { value, done } = await reader.read();
    return done ? undefined : decoder.decode(value);
  };
  /** Waits until the runtime settled every write the client read. */
  const caughtUp = () => vi.waitFor(() => expect(stream.unreadBytes).toBe(0));
  /** Waits until what waited went out, which it does once the client read what came before (the owner's flush, done here). */
  const sent = () => vi.waitFor(() => expect(stream.flush()).toBe(false));
  return { stream, read, caughtUp, sent, behind, onEnd, leave: () => reader.cancel() };
}

describe("SSEStream: chunks follow how fast the client reads", () => {
  it("sends each write as its own chunk while the client keeps up", async () => {
    const { stream, read, caughtUp, behind } = open();
    expect(await read()).toBe(RETRY);
    for (const text of ["id: 1\n\n", "id: 2\n\n", "id: 3\n\n"]) {
      await caughtUp();
      stream.write(text);
      expect(await read()).toBe(text);
    }
    expect(behind).toEqual([]);
  });

  it("holds writes while the client has not read the last chunk, then sends them together, in order", async () => {
    const { stream, read, sent, behind } = open();
    stream.write("id: 1\n\n");
    stream.write("id: 2\n\n");
    stream.write("id: 3\n\n");
    expect(behind).toEqual([stream]);
    // The retry line was still unread when id 1 came: 1, 2 and 3 wait together.
    expect(await read()).toBe(RETRY);
    await sent();
    expect(await read()).toBe("id: 1\n\nid: 2\n\nid: 3\n\n");
  });

  it("keeps holding while the client is still behind", async () => {
    const { stream, read, sent } = open();
    stream.write("id: 1\n\n");
    expect(stream.flush()).toBe(true); // the retry line is still unread
    expect(await read()).toBe(RETRY);
    await sent();
    expect(await read()).toBe("id: 1\n\n");
  });

  it("ends a client that falls bufferBytes behind, after sending what was written up to then", async () => {
    const { stream, read, onEnd } = open({ bufferBytes: 64 });
    // 22 bytes each: the unread retry line (13) and events 0, 1 and 2 pass 64 bytes.
    const events = Array.from({ length: 6 }, (_, i) => `id: ${i}\ndata: ${"x".repeat(8)}\n\n`);
    for (const event of events) stream.write(event);
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(onEnd).toHaveBeenCalledWith({ fellBehind: true });
    expect(stream.isOpen).toBe(false);
    let text = "";
    for (let chunk = await read(); chunk !== undefined; chunk = await read()) text += chunk;
    expect(events[0]).toHaveLength(22);
    expect(text).toBe(RETRY + events.slice(0, 3).join(""));
  });

  it("forgets what waited when the client leaves, and says so once", async () => {
    const { stream, behind, onEnd, leave } = open();
    stream.write("id: 1\n\n");
    expect(behind).toEqual([stream]);
    await leave();
    await vi.waitFor(() => expect(onEnd).toHaveBeenCalledTimes(1));
    expect(onEnd).toHaveBeenCalledWith({ fellBehind: false });
    expect(stream.isOpen).toBe(false);
    expect(stream.flush()).toBe(false);
    stream.write("id: 2\n\n");
    stream.end();
    expect(onEnd).toHaveBeenCalledTimes(1);
  });

  it("flushes itself when no owner does", async () => {
    const { stream, read } = open({ owned: false });
    stream.write("id: 1\n\n");
    expect(await read()).toBe(RETRY);
    expect(await read()).toBe("id: 1\n\n");
    stream.end();
  });
});

describe("SSEStream: a client that never reads", () => {
  it("is ended at the keep-alive that finds it read nothing for half of KEEPALIVE_SECONDS, and says so once", () => {
    const { stream, onEnd } = open({ keepaliveSeconds: 3 });
    // Nobody reads the body (the runtime never started sending it): the retry line stays queued.
    stream.keepalive(1000);
    stream.keepalive(2000);
    expect(onEnd).not.toHaveBeenCalled();
    stream.keepalive(2500);
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(onEnd).toHaveBeenCalledWith({ fellBehind: false });
    expect(stream.isOpen).toBe(false);
    stream.keepalive(3000);
    stream.end();
    expect(onEnd).toHaveBeenCalledTimes(1);
  });

  it("keeps a client that reads slowly: it reads something between keep-alives", async () => {
    const { stream, read, sent, onEnd } = open({ keepaliveSeconds: 3 });
    let text = "";
    for (let at = 1000; at <= 20_000; at += 1000) {
      stream.keepalive(at);
      stream.write(`id: ${at}\n\n`);
      // One chunk per keep-alive: what waited goes out once it has read the one before.
      text += await read();
      await sent();
    }
    expect(onEnd).not.toHaveBeenCalled();
    expect(stream.isOpen).toBe(true);
    expect(text.startsWith(RETRY)).toBe(true);
    stream.end();
  });

  it("keeps a client that has read everything, however long it is quiet", async () => {
    const { stream, read, caughtUp, onEnd } = open({ keepaliveSeconds: 3 });
    expect(await read()).toBe(RETRY);
    for (let at = 1000; at <= 20_000; at += 1000) {
      await caughtUp();
      stream.keepalive(at);
      expect(await read()).toBe(decoder.decode(KEEPALIVE));
    }
    expect(onEnd).not.toHaveBeenCalled();
    stream.end();
  });
});
