import { describe, expect, it, vi } from "vitest";
import { FLUSH_MS, SSEStream } from "../../src/sse/stream";

const decoder = new TextDecoder();
const RETRY = "retry: 3000\n\n";

function open(options: { bufferBytes?: number; owned?: boolean } = {}) {
  const behind: SSEStream[] = [];
  const onEnd = vi.fn();
  const stream = new SSEStream({
    bufferBytes: options.bufferBytes ?? 1 << 20,
    onEnd,
    onBehind: options.owned === false ? undefined : (s) => behind.push(s),
  });
  const reader = stream.response.body!.getReader();
  const read = async (): Promise<string | undefined> => {
    const { value, done } = await reader.read();
    return done ? undefined : decoder.decode(value);
  };
  return { stream, read, behind, onEnd, leave: () => reader.cancel() };
}

describe("SSEStream: chunks follow how fast the client reads", () => {
  it("sends each write as its own chunk while the client keeps up", async () => {
    const { stream, read, behind } = open();
    expect(await read()).toBe(RETRY);
    for (const text of ["id: 1\n\n", "id: 2\n\n", "id: 3\n\n"]) {
      stream.write(text);
      expect(await read()).toBe(text);
    }
    expect(behind).toEqual([]);
  });

  it("holds writes while the client has not read the last chunk, then sends them together, in order", async () => {
    const { stream, read, behind } = open();
    stream.write("id: 1\n\n");
    stream.write("id: 2\n\n");
    stream.write("id: 3\n\n");
    expect(behind).toEqual([stream]);
    // The retry line was still unread when id 1 came: 1, 2 and 3 wait together.
    expect(await read()).toBe(RETRY);
    expect(stream.flush()).toBe(false);
    expect(await read()).toBe("id: 1\n\nid: 2\n\nid: 3\n\n");
    expect(stream.flush()).toBe(false);
  });

  it("keeps holding while the client is still behind", async () => {
    const { stream, read } = open();
    stream.write("id: 1\n\n");
    expect(stream.flush()).toBe(true); // the retry line is still unread
    expect(await read()).toBe(RETRY);
    expect(stream.flush()).toBe(false);
    expect(await read()).toBe("id: 1\n\n");
  });

  it("ends a client that falls bufferBytes behind, after sending what was written up to then", async () => {
    const { stream, read, onEnd } = open({ bufferBytes: 64 });
    // 22 bytes each: the unread retry line (13) and events 0, 1 and 2 pass 64 bytes.
    const events = Array.from({ length: 6 }, (_, i) => `id: ${i}\ndata: ${"x".repeat(8)}\n\n`);
    for (const event of events) stream.write(event);
    expect(onEnd).toHaveBeenCalledTimes(1);
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
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(stream.flush()).toBe(false);
    stream.write("id: 2\n\n");
    stream.end();
    expect(onEnd).toHaveBeenCalledTimes(1);
  });

  it("flushes itself when no owner does", async () => {
    const { stream, read } = open({ owned: false });
    stream.write("id: 1\n\n");
    expect(await read()).toBe(RETRY);
    await new Promise((resolve) => setTimeout(resolve, FLUSH_MS * 3));
    expect(await read()).toBe("id: 1\n\n");
  });
});
