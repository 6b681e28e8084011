import { encodeSSE, encodeSSEComment } from "../protocol/sse";

export interface SSEOptions {
  keepaliveSeconds: number;
  /** Bytes the client may fall behind before it is dropped. */
  bufferBytes: number;
  /** Sent first; the browser's reconnection delay. */
  retryMs?: number;
}

const RETRY_MS = 3000;
const encoder = new TextEncoder();

/**
 * Turns a room's internal SSE socket into the `text/event-stream` response the client reads.
 * The Worker, not the room, holds the response and its keep-alive timer, so the room can
 * hibernate while the stream is idle. A client that stops reading is dropped once it is
 * `bufferBytes` behind, instead of growing memory or slowing the room; it resumes with
 * `Last-Event-ID`.
 */
export function sseResponse(room: WebSocket, { keepaliveSeconds, bufferBytes, retryMs = RETRY_MS }: SSEOptions): Response {
  let keepalive: ReturnType<typeof setInterval> | undefined;
  let open = true;

  const stop = (): void => {
    open = false;
    if (keepalive !== undefined) clearInterval(keepalive);
    try {
      room.close(1000, "subscriber left");
    } catch {
      // Already closed by the room.
    }
  };

  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const end = (): void => {
          if (!open) return;
          stop();
          controller.close();
        };
        const write = (text: string): void => {
          if (!open) return;
          controller.enqueue(encoder.encode(text));
          // Fell too far behind: end the stream after what is queued; the client resumes from there.
          if ((controller.desiredSize ?? 0) < 0) end();
        };

        room.addEventListener("message", (event) => write(event.data as string));
        room.addEventListener("close", end);
        room.addEventListener("error", end);
        room.accept();
        write(encodeSSE({ retry: retryMs }));
        keepalive = setInterval(() => write(encodeSSEComment("keepalive")), keepaliveSeconds * 1000);
      },
      cancel: stop,
    },
    { highWaterMark: bufferBytes, size: (chunk) => chunk.byteLength },
  );

  return new Response(body, {
    headers: {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
      // Tells buffering proxies (nginx and kin) to pass events through as they come.
      "X-Accel-Buffering": "no",
    },
  });
}
