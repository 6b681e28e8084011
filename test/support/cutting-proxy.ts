import { createServer, type Socket, connect as tcpConnect } from "node:net";

/** A TCP proxy on 127.0.0.1 that cuts every connection it carries after a while: a flaky network. */
export interface CuttingProxy {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Connections cut so far. */
  readonly cuts: number;
  /** Stops accepting and destroys every connection. */
  stop(): Promise<void>;
}

/**
 * Forwards 127.0.0.1:<free port> to 127.0.0.1:`targetPort` and resets each connection (both ends, no
 * close frame, no FIN) `minMs`–`maxMs` after it opened, the delay drawn from `random`.
 */
export async function startCuttingProxy(targetPort: number, options: { minMs: number; maxMs: number; random: () => number }): Promise<CuttingProxy> {
  const open = new Set<Socket>();
  let cuts = 0;
  const server = createServer((client) => {
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    open.add(client);
    open.add(upstream);
    const cut = setTimeout(
      () => {
        cuts++;
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      },
      options.minMs + options.random() * (options.maxMs - options.minMs),
    );
    const end = (): void => {
      clearTimeout(cut);
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    get cuts() {
      return cuts;
    },
    stop: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
