#!/usr/bin/env node
// Baseline A: the single-process ceiling. A plain Node `http` + `ws` broadcast server with the
// relay's URL shape and frames, no edge runtime and no storage (history is an in-memory ring, so
// `since` works for the resume scenario).
//
//   node bench/baselines/node-ws/server.mjs --port 8790
//
//   POST /v1/channels/{c}/messages     body = data → 201 {"id","channel","event","ts"}
//   GET  /v1/channels/{c}/ws[?since=N] WebSocket: {"type":"subscribed",…} then envelopes
//   GET  /v1/channels/{c}/events[?since=N]  SSE: id/event/data per message
//   GET  /healthz
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { WebSocketServer } from "ws";

const { values } = parseArgs({ options: { port: { type: "string", default: "8790" }, ip: { type: "string", default: "127.0.0.1" } } });
const HISTORY = 1000;

/** @type {Map<string, {seq: number, history: Array<{id: string, json: string, sse: string}>, ws: Set<import("ws").WebSocket>, sse: Set<import("node:http").ServerResponse>}>} */
const channels = new Map();
const channelOf = (name) => {
  let channel = channels.get(name);
  if (!channel) {
    channel = { seq: 0, history: [], ws: new Set(), sse: new Set() };
    channels.set(name, channel);
  }
  return channel;
};

const ROUTE = /^\/v1\/channels\/([^/]+)\/(messages|ws|events)$/;
const sseText = (id, data) =>
  `id: ${id}\nevent: message\n${data
    .split(/\r\n|\r|\n/)
    .map((l) => `data: ${l}\n`)
    .join("")}\n`;

/** Messages after `since`, from the in-memory ring. */
const replay = (channel, since) => channel.history.filter((m) => Number(m.id) > since);

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

const server = createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/healthz") return void res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  const match = ROUTE.exec(url.pathname);
  if (!match) return void res.writeHead(404).end();
  const name = decodeURIComponent(match[1]);
  const channel = channelOf(name);

  if (match[2] === "messages" && req.method === "POST") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const data = Buffer.concat(chunks).toString("utf8");
      const id = String(++channel.seq);
      const ts = Date.now();
      // Encoded once per broadcast and format, like the relay.
      const json = JSON.stringify({ type: "message", channel: name, id, event: "message", data, ts });
      const sse = sseText(id, data);
      channel.history.push({ id, json, sse });
      if (channel.history.length > HISTORY) channel.history.shift();
      for (const ws of channel.ws) ws.send(json);
      for (const stream of channel.sse) stream.write(sse);
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ id, channel: name, event: "message", ts }));
    });
    return;
  }
  if (match[2] === "events" && req.method === "GET") {
    const since = url.searchParams.get("since") ?? req.headers["last-event-id"];
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write("retry: 3000\n\n");
    if (since !== undefined) for (const m of replay(channel, Number(since))) res.write(m.sse);
    channel.sse.add(res);
    req.on("close", () => channel.sse.delete(res));
    return;
  }
  res.writeHead(405).end();
});

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://x");
  const match = ROUTE.exec(url.pathname);
  if (match?.[2] !== "ws") return void socket.destroy();
  const name = decodeURIComponent(match[1]);
  const channel = channelOf(name);
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(JSON.stringify({ type: "subscribed", channel: name, lastId: String(channel.seq) }));
    const since = url.searchParams.get("since");
    if (since !== null) for (const m of replay(channel, Number(since))) ws.send(m.json);
    channel.ws.add(ws);
    ws.on("close", () => channel.ws.delete(ws));
    ws.on("error", () => channel.ws.delete(ws));
  });
});

server.listen(Number(values.port), values.ip, () => console.log(`node-ws baseline on http://${values.ip}:${values.port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
