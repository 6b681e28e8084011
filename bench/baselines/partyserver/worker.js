// Baseline B: the closest peer on the same runtime. A room built on `partyserver` with
// hibernation on, doing the same work per message as the relay: next id, one SQLite insert
// (last 1000 kept, so `since` can replay), one JSON encoding per broadcast, `broadcast()` to the
// WebSockets and, "where it can", SSE streams held by the room itself (which keeps it awake).
//
//   POST /parties/room/{c}/messages          body = data → 201 {"id","channel","event","ts"}
//   GET  /parties/room/{c}[?since=N]         WebSocket: {"type":"subscribed",…} then envelopes
//   GET  /parties/room/{c}/events[?since=N]  SSE
//   GET  /healthz
import { routePartykitRequest, Server } from "partyserver";

const HISTORY = 1000;
const encoder = new TextEncoder();
const sseText = (id, data) =>
  `id: ${id}\nevent: message\n${data
    .split(/\r\n|\r|\n/)
    .map((l) => `data: ${l}\n`)
    .join("")}\n`;

export class Room extends Server {
  static options = { hibernate: true };

  #seq = 0;
  /** SSE stream controllers; in memory, so they do not survive hibernation (they prevent it). */
  #streams = new Set();

  onStart() {
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, data TEXT NOT NULL)");
    this.#seq = sql.exec("SELECT COALESCE(MAX(seq), 0) AS seq FROM messages").one().seq;
  }

  onConnect(connection, { request }) {
    connection.send(JSON.stringify({ type: "subscribed", channel: this.name, lastId: String(this.#seq) }));
    const since = new URL(request.url).searchParams.get("since");
    if (since !== null) for (const m of this.#after(Number(since))) connection.send(this.#json(m));
  }

  async onRequest(request) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname.endsWith("/messages")) return this.#publish(await request.text());
    if (request.method === "GET" && url.pathname.endsWith("/events")) {
      const since = request.headers.get("Last-Event-ID") ?? url.searchParams.get("since");
      return this.#sse(since === null ? undefined : Number(since));
    }
    return new Response("not found", { status: 404 });
  }

  #publish(data) {
    const seq = ++this.#seq;
    const ts = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec("INSERT INTO messages (seq, ts, data) VALUES (?, ?, ?)", seq, ts, data);
    sql.exec("DELETE FROM messages WHERE seq <= ?", seq - HISTORY);
    const message = { seq, ts, data };
    this.broadcast(this.#json(message));
    if (this.#streams.size > 0) {
      const bytes = encoder.encode(sseText(String(seq), data));
      for (const controller of this.#streams) {
        try {
          controller.enqueue(bytes);
        } catch {
          this.#streams.delete(controller);
        }
      }
    }
    return Response.json({ id: String(seq), channel: this.name, event: "message", ts }, { status: 201 });
  }

  #sse(since) {
    let controller;
    const body = new ReadableStream({
      start: (c) => {
        controller = c;
      },
      cancel: () => void this.#streams.delete(controller),
    });
    controller.enqueue(encoder.encode("retry: 3000\n\n"));
    if (since !== undefined) for (const m of this.#after(since)) controller.enqueue(encoder.encode(sseText(String(m.seq), m.data)));
    this.#streams.add(controller);
    return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" } });
  }

  #after(since) {
    return this.ctx.storage.sql.exec("SELECT seq, ts, data FROM messages WHERE seq > ? ORDER BY seq", since).toArray();
  }

  #json({ seq, ts, data }) {
    return JSON.stringify({ type: "message", channel: this.name, id: String(seq), event: "message", data, ts });
  }
}

export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/healthz") return Response.json({ ok: true });
    return (await routePartykitRequest(request, env)) ?? new Response("not found", { status: 404 });
  },
};
