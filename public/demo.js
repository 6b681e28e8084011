// The demo page: subscribe to a channel by the client SDK or by a plain browser API, publish to
// it, and watch messages arrive with their ids, event names and publish→receive latency.
import { RelayClient } from "/client.js";

const MAX_ROWS = 300;
const ORIGIN = location.origin;
const WS_ORIGIN = ORIGIN.replace(/^http/, "ws");

const $ = (id) => document.getElementById(id);
const ui = {
  state: $("state"),
  transport: $("transport"),
  connectForm: $("connect-form"),
  channel: $("channel"),
  mode: $("mode"),
  history: $("history"),
  modeNote: $("mode-note"),
  connect: $("connect"),
  disconnect: $("disconnect"),
  publishForm: $("publish-form"),
  message: $("message"),
  event: $("event"),
  publishResult: $("publish-result"),
  log: $("log"),
  logEmpty: $("log-empty"),
  count: $("count"),
  clear: $("clear"),
  curl: $("curl-snippet"),
};

const NOTES = {
  "sdk-auto":
    "The SDK: one multiplexed WebSocket, falling back to SSE and then long-poll. It reconnects with jittered backoff and resumes, so each message shows exactly once, in order.",
  "sdk-ws": "The SDK over its multiplexed WebSocket only, with reconnect and resume.",
  "sdk-sse": "The SDK over one Server-Sent Events stream, with reconnect and resume.",
  "sdk-poll": "The SDK by long-poll: for networks that block WebSockets and buffer streams.",
  ws: "A plain WebSocket: it does not reconnect or resume by itself. Publishes go over the socket.",
  sse: "A plain EventSource: it reconnects and resumes by itself (Last-Event-ID), but hears only event names it listens for: here, message and each name you publish with.",
  poll: "Plain long-poll with fetch: one request at a time, each resuming after the last id.",
};

/** What tests (and curious people in DevTools) can read: every message received, in order. */
const demo = { received: [], state: "closed", transport: "", mode: "", channel: "" };
window.edgeRelayDemo = demo;

let session = null;
let messageCount = 0;
/** Own publishes by "channel#id": when they were sent (performance.now()). */
const sentAt = new Map();
/** Messages that arrived before their publish was answered: when they arrived, and their latency cell. */
const arrivedAt = new Map();

// ---- page state --------------------------------------------------------------------------------

function setState(state, transport = demo.transport) {
  demo.state = state;
  demo.transport = transport;
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  ui.transport.textContent = transport;
}

function updateNote() {
  ui.modeNote.textContent = NOTES[ui.mode.value] ?? "";
}

function updateCurl() {
  const channel = encodeURIComponent(ui.channel.value || "demo");
  ui.curl.textContent = `curl -X POST ${ORIGIN}/v1/channels/${channel}/messages -d 'hi'`;
}

// ---- the log -----------------------------------------------------------------------------------

function addRow(className, parts) {
  const row = document.createElement("li");
  row.className = className;
  for (const [name, text, title] of parts) {
    const span = document.createElement("span");
    span.className = name;
    span.textContent = text;
    if (title) span.title = title;
    row.append(span);
  }
  ui.log.prepend(row);
  while (ui.log.childElementCount > MAX_ROWS) ui.log.lastElementChild.remove();
  ui.logEmpty.hidden = true;
  return row;
}

function clock() {
  return new Date().toLocaleTimeString([], { hour12: false });
}

function system(text, problem = false) {
  addRow(problem ? "system problem" : "system", [
    ["data", text],
    ["time", clock()],
  ]);
}

/** One received message: { channel, id, event, data, ts?, encoding? }. */
function onMessage(message) {
  const now = performance.now();
  const key = `${message.channel}#${message.id}`;
  demo.received.push({ channel: message.channel, id: message.id, event: message.event, data: message.data });
  messageCount++;
  ui.count.textContent = `${messageCount} message${messageCount === 1 ? "" : "s"}`;

  let latency = "";
  let title = "";
  if (sentAt.has(key)) {
    latency = `${Math.round(now - sentAt.get(key))} ms`;
    title = "publish → receive, measured in this page";
    sentAt.delete(key);
  } else if (typeof message.ts === "number") {
    latency = `~${Math.max(0, Date.now() - message.ts)} ms`;
    title = "since the relay stored it (server clock)";
  }
  const data = message.encoding === "base64" ? `(base64) ${message.data}` : message.data;
  const row = addRow("message", [
    ["id", `#${message.id}`, `message id ${message.id}`],
    ["event", message.event],
    ["time", clock()],
    ["latency", latency, title],
    ["data", data === "" ? "(empty)" : data],
  ]);
  row.dataset.id = message.id;
  if (!sentAt.has(key)) {
    arrivedAt.set(key, { at: now, cell: row.querySelector(".latency") });
    // Only recent arrivals can still be matched with a publish answer.
    if (arrivedAt.size > 500) arrivedAt.delete(arrivedAt.keys().next().value);
  }
}

/** A publish was answered with its id: measure against the arrival, whichever came first. */
function published(channel, id, startedAt) {
  const key = `${channel}#${id}`;
  const arrival = arrivedAt.get(key);
  if (arrival) {
    arrival.cell.textContent = `${Math.max(0, Math.round(arrival.at - startedAt))} ms`;
    arrival.cell.title = "publish → receive, measured in this page";
    arrivedAt.delete(key);
  } else {
    sentAt.set(key, startedAt);
  }
}

// ---- publishing over HTTP ------------------------------------------------------------------------

async function httpPublish(channel, data, event) {
  const query = event ? `?event=${encodeURIComponent(event)}` : "";
  const response = await fetch(`/v1/channels/${encodeURIComponent(channel)}/messages${query}`, { method: "POST", body: data });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return { id: body.id };
}

// ---- the ways to subscribe -------------------------------------------------------------------------

function startSdk(channel, transport, history) {
  const relay = new RelayClient({ url: ORIGIN, transport });
  const label = () => `SDK · ${relay.transport ?? transport}`;
  relay.on("state", ({ newState }) => {
    setState(newState, label());
    if (newState === "reconnecting") system("connection lost; reconnecting with backoff");
    if (newState === "open") system(`open over ${relay.transport}`);
  });
  relay.on("gap", ({ after, oldest }) => system(`gap: messages ${Number(after) + 1}–${Number(oldest) - 1} were pruned before they could be delivered`, true));
  relay.on("error", (error) => system(`${error.code}: ${error.message}`, true));
  const subscription = relay.subscribe(channel, onMessage, history ? { since: 0 } : {});
  setState(relay.state, label());
  demo.client = relay;
  return {
    stop() {
      subscription.unsubscribe();
      relay.close();
      delete demo.client;
    },
    publish: (data, event) => relay.publish(channel, data, event ? { event } : {}),
  };
}

function startWebSocket(channel, history) {
  const socket = new WebSocket(`${WS_ORIGIN}/v1/channels/${encodeURIComponent(channel)}/ws${history ? "?since=0" : ""}`);
  const acks = new Map();
  let nextRef = 0;
  setState("connecting", "WebSocket");
  socket.addEventListener("open", () => {
    setState("open", "WebSocket");
    system("WebSocket open");
  });
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "message") return onMessage(frame);
    if (frame.type === "gap") return system(`gap: messages ${Number(frame.after) + 1}–${Number(frame.oldest) - 1} were pruned`, true);
    if (frame.type === "ack" && acks.has(frame.ref)) {
      acks.get(frame.ref).resolve({ id: frame.id });
      return acks.delete(frame.ref);
    }
    if (frame.type === "error") {
      const pending = acks.get(frame.ref);
      if (pending) {
        acks.delete(frame.ref);
        return pending.reject(new Error(frame.error.message));
      }
      system(`${frame.error.code}: ${frame.error.message}`, true);
    }
  });
  socket.addEventListener("close", (event) => {
    setState("closed", "WebSocket");
    system(`WebSocket closed (${event.code}); a plain WebSocket does not reconnect by itself`, event.code !== 1000);
    for (const pending of acks.values()) pending.reject(new Error("the socket closed before the relay acknowledged"));
    acks.clear();
  });
  return {
    stop() {
      socket.close(1000, "bye");
    },
    publish(data, event) {
      if (socket.readyState !== WebSocket.OPEN) return httpPublish(channel, data, event);
      const ref = `c${++nextRef}`;
      return new Promise((resolve, reject) => {
        acks.set(ref, { resolve, reject });
        socket.send(JSON.stringify({ type: "publish", data, ref, ...(event ? { event } : {}) }));
      });
    },
  };
}

function startEventSource(channel, history) {
  const source = new EventSource(`/v1/channels/${encodeURIComponent(channel)}/events${history ? "?since=0" : ""}`);
  const listening = new Set();
  const listen = (name) => {
    if (listening.has(name)) return;
    listening.add(name);
    source.addEventListener(name, (event) => onMessage({ channel, id: event.lastEventId, event: name, data: event.data }));
  };
  listen("message");
  source.addEventListener("relay.gap", (event) => {
    const gap = JSON.parse(event.data);
    system(`gap: messages ${Number(gap.after) + 1}–${Number(gap.oldest) - 1} were pruned`, true);
  });
  setState("connecting", "EventSource");
  source.addEventListener("open", () => {
    setState("open", "EventSource");
    system("EventSource open");
  });
  source.addEventListener("error", () => {
    const closed = source.readyState === EventSource.CLOSED;
    setState(closed ? "closed" : "reconnecting", "EventSource");
    system(closed ? "EventSource gave up" : "EventSource lost the stream; it reconnects with Last-Event-ID", closed);
  });
  return {
    stop() {
      source.close();
    },
    publish(data, event) {
      // EventSource hears only the event names it listens for.
      if (event) listen(event);
      return httpPublish(channel, data, event);
    },
  };
}

function startLongPoll(channel, history) {
  const abort = new AbortController();
  let stopped = false;
  setState("connecting", "long-poll");
  const base = `/v1/channels/${encodeURIComponent(channel)}`;
  (async () => {
    let since = history ? "0" : undefined;
    while (!stopped) {
      try {
        if (since === undefined) {
          const info = await fetch(base, { signal: abort.signal });
          since = (await info.json()).lastId;
        }
        if (demo.state !== "open") {
          setState("open", "long-poll");
          system("long-poll open");
        }
        const response = await fetch(`${base}/poll?since=${since}&timeout=25`, { signal: abort.signal });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const answer = await response.json();
        if (answer.gap) system(`gap: messages ${Number(answer.gap.after) + 1}–${Number(answer.gap.oldest) - 1} were pruned`, true);
        for (const message of answer.messages) onMessage(message);
        since = answer.lastId;
      } catch {
        if (stopped) return;
        setState("reconnecting", "long-poll");
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      abort.abort();
    },
    publish: (data, event) => httpPublish(channel, data, event),
  };
}

// ---- wiring ------------------------------------------------------------------------------------

function connect() {
  disconnect();
  const channel = ui.channel.value.trim();
  const mode = ui.mode.value;
  const replay = ui.history.checked;
  if (!ui.channel.checkValidity()) return system("That is not a channel name: 1–128 of A–Z a–z 0–9 . _ - : ~ @, starting with a letter or digit.", true);
  demo.mode = mode;
  demo.channel = channel;
  system(`subscribing to ${channel} (${ui.mode.selectedOptions[0].textContent}${replay ? ", history first" : ""})`);
  if (mode.startsWith("sdk-")) session = startSdk(channel, mode.slice(4), replay);
  else if (mode === "ws") session = startWebSocket(channel, replay);
  else if (mode === "sse") session = startEventSource(channel, replay);
  else session = startLongPoll(channel, replay);
  session.channel = channel;
  ui.disconnect.disabled = false;
  // The address bar now links to this subscription.
  const search = new URLSearchParams({ channel, mode });
  if (replay) search.set("history", "1");
  history.replaceState(null, "", `?${search}`);
}

function disconnect() {
  if (!session) return;
  session.stop();
  session = null;
  setState("closed", "");
  ui.disconnect.disabled = true;
  system("disconnected");
}

async function publish() {
  const data = ui.message.value;
  const event = ui.event.value.trim() || undefined;
  if (event !== undefined && !ui.event.checkValidity()) {
    ui.publishResult.textContent = "Event names are 1–64 of A–Z a–z 0–9 . _ : -";
    return;
  }
  const channel = session?.channel ?? ui.channel.value.trim();
  const startedAt = performance.now();
  ui.publishResult.textContent = "publishing…";
  try {
    const { id } = await (session ? session.publish(data, event) : httpPublish(channel, data, event));
    published(channel, id, startedAt);
    ui.publishResult.textContent = `published #${id}`;
  } catch (error) {
    ui.publishResult.textContent = `not published: ${error.message}`;
  }
}

ui.connectForm.addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});
ui.disconnect.addEventListener("click", disconnect);
ui.publishForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void publish();
});
ui.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    ui.publishForm.requestSubmit();
  }
});
ui.clear.addEventListener("click", () => {
  ui.log.replaceChildren();
  ui.logEmpty.hidden = false;
});
ui.mode.addEventListener("change", updateNote);
ui.channel.addEventListener("input", updateCurl);

// Links can preselect: /?channel=news&mode=sse&history=1&connect=1
const params = new URLSearchParams(location.search);
if (params.get("channel")) ui.channel.value = params.get("channel");
if (params.get("mode") && NOTES[params.get("mode")]) ui.mode.value = params.get("mode");
if (params.get("history") === "1") ui.history.checked = true;
updateNote();
updateCurl();
if (params.get("connect") === "1") connect();
