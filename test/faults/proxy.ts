import { connect, createServer, type Server, type Socket } from "node:net";
import { mulberry32 } from "../support/prng";
import { sleep } from "../support/relay";

const HOST = "127.0.0.1";

/** How a cutting schedule runs; it ends at whichever bound comes first. */
export interface CutSchedule {
  /** Seeds the PRNG that draws each wait, so a run can be replayed. */
  seed: number;
  /** Shortest and longest wait between two cuts, in ms. Default 150–400. */
  minMs?: number;
  maxMs?: number;
  /** Stop once this many connections have been cut in total. Default: no count bound. */
  maxCuts?: number;
  /** Stop after this long, in ms. Required: every schedule is bounded in time. */
  durationMs: number;
}

/** A client connection and the proxy's connection to the relay for it. */
interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy on 127.0.0.1 in front of the relay that drops every open connection when told to,
 * or on a seeded schedule: both sides get a TCP reset, as when a network path dies, so clients
 * see an abrupt loss (no close frame, no end of stream).
 *
 * @example
 * const proxy = await CuttingProxy.start(relay.port);
 * const schedule = proxy.cutEvery({ seed: 7, durationMs: 60_000, maxCuts: 1000 });
 * // … clients use proxy.url instead of relay.url …
 * await schedule;
 * await proxy.close();
 */
export class CuttingProxy {
  readonly #server: Server;
  readonly #targetPort: number;
  readonly #pairs = new Set<Pair>();
  #cuts = 0;
  #cutEvents = 0;
  #accepted = 0;
  #scheduleStopped = false;
  #wake: (() => void) | undefined;

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.#targetPort = targetPort;
    server.on("connection", (client) => this.#accept(client));
  }

  /** Listens on a free port of 127.0.0.1 and forwards every connection to `targetPort` there. */
  static async start(targetPort: number): Promise<CuttingProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, HOST, () => resolve());
    });
    return new CuttingProxy(server, targetPort);
  }

  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("the proxy is not listening");
    return address.port;
  }

  /** The base URL clients use instead of the relay's. */
  get url(): string {
    return `http://${HOST}:${this.port}`;
  }

  /** Connections cut so far. */
  get cuts(): number {
    return this.#cuts;
  }

  /** Times the proxy cut (each cut drops every connection open then). */
  get cutEvents(): number {
    return this.#cutEvents;
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.#accepted;
  }

  get openConnections(): number {
    return this.#pairs.size;
  }

  /** Resets every open connection now; returns how many it cut. */
  cutAll(): number {
    const pairs = [...this.#pairs];
    for (const pair of pairs) this.#drop(pair);
    this.#cuts += pairs.length;
    this.#cutEvents++;
    return pairs.length;
  }

  /**
   * Cuts every open connection after each wait drawn from [minMs, maxMs) until a bound of
   * `schedule` is reached or `stopCutting()` is called; resolves then. One schedule at a time.
   */
  async cutEvery(schedule: CutSchedule): Promise<void> {
    const { minMs = 150, maxMs = 400, maxCuts = Number.POSITIVE_INFINITY, durationMs } = schedule;
    const random = mulberry32(schedule.seed);
    const deadline = Date.now() + durationMs;
    this.#scheduleStopped = false;
    while (!this.#scheduleStopped && this.#cuts < maxCuts && Date.now() < deadline) {
      await this.#pause(Math.min(minMs + random() * (maxMs - minMs), Math.max(0, deadline - Date.now())));
      if (this.#scheduleStopped || Date.now() >= deadline) break;
      this.cutAll();
    }
  }

  /** Ends a running `cutEvery` at once. */
  stopCutting(): void {
    this.#scheduleStopped = true;
    this.#wake?.();
  }

  /** Stops cutting and listening, and drops what is still open (not counted as cuts). */
  async close(): Promise<void> {
    this.stopCutting();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const pair of [...this.#pairs]) this.#drop(pair);
    await closed;
  }

  #accept(client: Socket): void {
    this.#accepted++;
    const upstream = connect({ host: HOST, port: this.#targetPort, noDelay: true });
    const pair: Pair = { client, upstream };
    this.#pairs.add(pair);
    const drop = (): void => this.#drop(pair);
    // Either side ending or failing ends both: a half-open pair would hang a client.
    for (const socket of [client, upstream]) {
      socket.on("error", drop);
      socket.on("close", drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  #drop(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const socket of [pair.client, pair.upstream]) {
      if (socket.destroyed) continue;
      // A reset, not a FIN: the peer learns of it at once and cannot read on as if the stream ended.
      if (socket.readyState === "open") socket.resetAndDestroy();
      else socket.destroy();
    }
  }

  /** Sleeps `ms`, or less when `stopCutting()` wakes it. */
  async #pause(ms: number): Promise<void> {
    await Promise.race([sleep(ms), new Promise<void>((resolve) => (this.#wake = resolve))]);
    this.#wake = undefined;
  }
}
