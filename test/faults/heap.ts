/**
 * The relay's live JavaScript heap, read through the V8 inspector of the workerd that runs it: a
 * full garbage collection, then what is left. RSS alone cannot tell memory the relay keeps from
 * garbage the runtime has not collected yet or memory its allocator holds on to; the live heap
 * after a collection is what the relay's code (and the runtime objects it keeps alive) holds.
 *
 * The relay must be started with `inspectableRuntime()` in its environment: workerd then opens an
 * inspector on a free port, found here among the relay's listeners.
 *
 * @example
 * const relay = await startRelay({ env: inspectableRuntime() });
 * const heap = await RelayHeap.attach(relay);
 * console.log(await heap.liveBytes());
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import WebSocket from "ws";
import { innerPorts, type Relay, ROOT } from "../support/relay";

/** Environment for `startRelay({ env })`: workerd through scripts/workerd-inspectable.sh. */
export function inspectableRuntime(): Record<string, string> {
  // wrangler's own workerd, the binary miniflare would start.
  const fromWrangler = createRequire(createRequire(`${ROOT}/`).resolve("wrangler/package.json"));
  const workerd = (fromWrangler("workerd") as { default: string }).default;
  return { MINIFLARE_WORKERD_PATH: `${ROOT}/scripts/workerd-inspectable.sh`, WORKERD_BINARY: workerd };
}

interface HeapUsage {
  usedSize: number;
}

export class RelayHeap {
  readonly #socket: WebSocket;
  readonly #waiting = new Map<number, (result: unknown) => void>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on("message", (data) => {
      const reply = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: unknown };
      if (reply.id === undefined) return;
      this.#waiting.get(reply.id)?.(reply.result ?? reply.error);
      this.#waiting.delete(reply.id);
    });
  }

  /** Attaches to the isolate of the relay's Worker (wrangler.toml's `name`) in the relay's workerd. */
  static async attach(relay: Relay): Promise<RelayHeap> {
    const workerName = /^name\s*=\s*"([^"]+)"/m.exec(readFileSync(`${ROOT}/wrangler.toml`, "utf8"))?.[1];
    const target = `core:user:${workerName}`;
    for (const port of await innerPorts(relay)) {
      const targets = await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(2_000) })
        .then((response) => response.json() as Promise<Array<{ id: string }>>)
        .catch(() => []);
      if (!Array.isArray(targets) || !targets.some((t) => t.id === target)) continue;
      const socket = new WebSocket(`ws://127.0.0.1:${port}/${target}`);
      await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
      const heap = new RelayHeap(socket);
      await heap.#call("HeapProfiler.enable");
      return heap;
    }
    throw new Error(`no inspector of process group ${relay.pid} lists ${target}: was the relay started with inspectableRuntime()?`);
  }

  /** Bytes of the isolate's heap still live after a full collection (which runs on the isolate's next event). */
  async liveBytes(): Promise<number> {
    await this.#call("HeapProfiler.collectGarbage");
    return ((await this.#call("Runtime.getHeapUsage")) as HeapUsage).usedSize;
  }

  close(): void {
    this.#socket.close();
  }

  #call(method: string): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#socket.send(JSON.stringify({ id, method }));
    });
  }
}
