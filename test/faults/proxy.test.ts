import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitUntil } from "../support/relay";
import { CuttingProxy } from "./proxy";

/** An echo server standing in for the relay. */
let echo: Server;
let echoPort: number;

beforeAll(async () => {
  echo = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", () => resolve()));
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

/** A client connection through the proxy that records what it reads and how it ended. */
async function dial(port: number): Promise<{ socket: Socket; received: () => string; ended: () => string | undefined }> {
  const socket = connect({ host: "127.0.0.1", port });
  let text = "";
  let end: string | undefined;
  socket.on("data", (chunk) => (text += chunk.toString()));
  socket.on("error", (error: NodeJS.ErrnoException) => (end = error.code ?? "error"));
  socket.on("close", () => (end ??= "close"));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, received: () => text, ended: () => end };
}

describe("CuttingProxy", () => {
  it("forwards both ways, and resets every open connection on cutAll", async () => {
    const proxy = await CuttingProxy.start(echoPort);
    try {
      const a = await dial(proxy.port);
      const b = await dial(proxy.port);
      a.socket.write("ping");
      await waitUntil(() => a.received() === "ping", "the echo through the proxy", 5_000);
      await waitUntil(() => proxy.openConnections === 2, "two connections", 5_000);
      expect(proxy.cutAll()).toBe(2);
      await waitUntil(() => a.ended() !== undefined && b.ended() !== undefined, "both clients to see the cut", 5_000);
      expect(a.ended()).toBe("ECONNRESET");
      expect([proxy.cuts, proxy.cutEvents, proxy.accepted]).toEqual([2, 1, 2]);
    } finally {
      await proxy.close();
    }
  });

  it("cuts on a seeded schedule until its count bound", async () => {
    const proxy = await CuttingProxy.start(echoPort);
    const clients: Socket[] = [];
    let stop = false;
    // A client that reconnects at once, so there is always something to cut.
    const keepConnected = async (): Promise<void> => {
      while (!stop) {
        const { socket, ended } = await dial(proxy.port);
        clients.push(socket);
        await waitUntil(() => stop || ended() !== undefined, "a cut", 10_000);
        socket.destroy();
      }
    };
    try {
      const running = [keepConnected(), keepConnected()];
      await proxy.cutEvery({ seed: 42, minMs: 10, maxMs: 30, maxCuts: 20, durationMs: 10_000 });
      stop = true;
      await Promise.all(running);
      expect(proxy.cuts).toBeGreaterThanOrEqual(20);
      expect(proxy.cutEvents).toBeGreaterThanOrEqual(10);
    } finally {
      for (const socket of clients) socket.destroy();
      await proxy.close();
    }
  });

  it("stops a schedule on stopCutting", async () => {
    const proxy = await CuttingProxy.start(echoPort);
    const schedule = proxy.cutEvery({ seed: 1, durationMs: 60_000 });
    proxy.stopCutting();
    await schedule;
    expect(proxy.cutEvents).toBe(0);
    await proxy.close();
  });
});
