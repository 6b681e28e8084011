/**
 * A hostile-input corpus: requests a public relay must survive, each with the status and error code
 * API.md says it gets. Plain data (method, path, headers, body), so the same table runs against the
 * Worker in workerd (test/worker/hostile-corpus.test.ts) and against a real relay end to end.
 *
 * The relay under test runs with HOSTILE_CORPUS_VARS (no secret, anonymous publishing allowed,
 * 1024-byte messages): the vars of the "worker" vitest project, and of `startRelay({ vars })`.
 *
 * Every request that publishes carries a marker, `[HOSTILE-<id>]` (batch entries
 * `[HOSTILE-<id>.<entry>]`), in its data. After the corpus, no channel of HOSTILE_CHANNELS may hold a
 * message whose data holds the marker of a rejected request or batch entry.
 */

export interface HostileCase {
  /** Stable number; the marker of its data is `[HOSTILE-<id>]`. */
  id: number;
  name: string;
  method: string;
  /** Path and query, relative to the relay's origin; already percent-encoded as it goes on the wire. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** The data markers this request tries to publish: one for a single publish, one per batch entry. */
  markers?: string[];
  expect: {
    status: number;
    /** The JSON error code; `null` for a success (or a body-less answer such as HEAD or a preflight). */
    code: string | null;
    /** For a batch answered 200: per entry, "ok" (stored) or the entry's error code. */
    results?: string[];
  };
}

/** A WebSocket frame a client sends on an open socket, and the error frame it must get back. */
export interface HostileFrame {
  id: number;
  name: string;
  /** `/v1/channels/hostile-ws/ws` or `/v1/ws`. */
  path: string;
  /** A text frame, or a binary one. */
  frame: string | Uint8Array;
  /** Data markers the frame tries to publish. */
  markers?: string[];
  expect: { code: string; ref?: string };
}

/** The settings the corpus's expectations assume. */
export const HOSTILE_CORPUS_VARS = {
  ALLOW_ANONYMOUS: "true",
  MAX_MESSAGE_BYTES: "1024",
  MAX_BATCH_MESSAGES: "100",
  MAX_CHANNELS_PER_CONNECTION: "100",
  MAX_FRAME_BYTES: "262144",
} as const;

const MAX_MESSAGE_BYTES = 1024;
const MAX_FRAME_BYTES = 262144;

/** The channels corpus requests may publish to (when accepted); checked for rejected markers afterwards. */
export const HOSTILE_CHANNELS = [
  "hostile-a",
  "hostile-b",
  "hostile-sse",
  "hostile-ws",
  "hostile-mux",
  "constructor",
  "hasOwnProperty",
  "toString",
  "123",
  "1e3",
  "messages",
];

export const marker = (id: number, entry?: number) => (entry === undefined ? `[HOSTILE-${id}]` : `[HOSTILE-${id}.${entry}]`);

const JSON_TYPE = { "Content-Type": "application/json" };
const K100 = 100_000;
const deepArray = (levels: number) => "[".repeat(levels) + "]".repeat(levels);
const deepObject = (levels: number, leaf = "1") => '{"a":'.repeat(levels) + leaf + "}".repeat(levels);
const bytes = (...parts: Array<string | number[]>) => {
  const encoder = new TextEncoder();
  const chunks = parts.map((part) => (typeof part === "string" ? encoder.encode(part) : Uint8Array.from(part)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
};
const manyChannels = (count: number, name: (i: number) => string) => Array.from({ length: count }, (_, i) => `channel=${name(i)}`).join("&");

type Draft = Omit<HostileCase, "id" | "markers"> & { markers?: number };

/** Cases are written as functions of their id, so a case's data can carry its own marker. */
const drafts: Array<(id: number) => Draft> = [];
const add = (draft: (id: number) => Draft) => drafts.push(draft);
const error = (status: number, code: string) => ({ status, code });
const ok = (status = 200) => ({ status, code: null });

/** A single publish to `path` whose body holds the marker; `body` builds it around the marker. */
function publish(
  name: string,
  path: string,
  expect: HostileCase["expect"],
  init: { headers?: Record<string, string>; body?: (m: string) => string | Uint8Array; method?: string } = {},
) {
  add((id) => ({ name, method: init.method ?? "POST", path, headers: init.headers, body: (init.body ?? ((m) => m))(marker(id)), markers: 1, expect }));
}

/** A batch publish; `entries` builds the body's entries from their markers. */
function batch(
  name: string,
  body: (m: (entry: number) => string) => string | Uint8Array,
  expect: HostileCase["expect"],
  entries: number,
  headers: Record<string, string> = JSON_TYPE,
) {
  add((id) => ({ name, method: "POST", path: "/v1/publish", headers, body: body((entry) => marker(id, entry)), markers: entries, expect }));
}

function get(name: string, path: string, expect: HostileCase["expect"], headers?: Record<string, string>) {
  add(() => ({ name, method: "GET", path, headers, expect }));
}

// ── Path traversal, encoded slashes and odd channel names ──────────────────────────────────────
publish("encoded slash in the channel", "/v1/channels/a%2Fb/messages", error(400, "invalid_channel"));
publish("lowercase encoded slash", "/v1/channels/a%2fb/messages", error(400, "invalid_channel"));
publish("double-encoded slash", "/v1/channels/a%252Fb/messages", error(400, "invalid_channel"));
publish("raw slash in the channel", "/v1/channels/a/b/messages", error(400, "invalid_channel"));
publish("empty channel segment", "/v1/channels//messages", error(400, "invalid_channel"));
publish("encoded backslash", "/v1/channels/a%5Cb/messages", error(400, "invalid_channel"));
publish("encoded dot-dot segment (normalised away: no such route)", "/v1/channels/%2e%2e/messages", error(404, "not_found"));
publish("dot-dot segments climbing out of /v1", "/v1/channels/../../healthz", error(405, "method_not_allowed"));
publish("dot segment (normalised to the channel 'messages', which has no POST)", "/v1/channels/./messages", error(405, "method_not_allowed"));
publish("dot-dot inside a longer name", "/v1/channels/a..b/messages", ok(201));
publish("traversal into another channel after normalisation", "/v1/channels/nothing/../hostile-b/messages", ok(201));
publish("encoded dot-dot then encoded slash", "/v1/channels/%2e%2e%2fhealthz/messages", error(400, "invalid_channel"));
publish("overlong UTF-8 dots", "/v1/channels/%C0%AE%C0%AE/messages", error(400, "invalid_channel"));
publish("NUL byte in the channel", "/v1/channels/a%00b/messages", error(400, "invalid_channel"));
publish("CRLF in the channel", "/v1/channels/a%0D%0Ab/messages", error(400, "invalid_channel"));
publish("space in the channel", "/v1/channels/a%20b/messages", error(400, "invalid_channel"));
publish("invalid UTF-8 in the channel", "/v1/channels/%FF%FE/messages", error(400, "invalid_channel"));
publish("lone surrogate encoding in the channel", "/v1/channels/%ED%A0%80/messages", error(400, "invalid_channel"));
publish("malformed percent escape in the channel", "/v1/channels/news%/messages", error(400, "invalid_channel"));
publish("malformed percent escape %zz", "/v1/channels/news%zz/messages", error(400, "invalid_channel"));
publish("right-to-left override in the channel", "/v1/channels/%E2%80%AEswen/messages", error(400, "invalid_channel"));
publish("Cyrillic homoglyph in the channel", "/v1/channels/n%D0%B5ws/messages", error(400, "invalid_channel"));
publish("channel of 129 characters", `/v1/channels/${"a".repeat(129)}/messages`, error(400, "invalid_channel"));
publish("channel of 100 KB", `/v1/channels/${"a".repeat(K100)}/messages`, error(400, "invalid_channel"));
publish("channel named __proto__", "/v1/channels/__proto__/messages", error(400, "invalid_channel"));
publish("channel named constructor", "/v1/channels/constructor/messages", ok(201));
publish("channel named hasOwnProperty", "/v1/channels/hasOwnProperty/messages", ok(201));
publish("channel that looks like a number", "/v1/channels/123/messages", ok(201));
publish("channel that looks like an exponent", "/v1/channels/1e3/messages", ok(201));
get("history of an encoded-slash channel", "/v1/channels/a%2Fb/messages", error(400, "invalid_channel"));
get("info of an invalid channel", "/v1/channels/a%20b", error(400, "invalid_channel"));
get("SSE on an invalid channel", "/v1/channels/%FF/events", error(400, "invalid_channel"));
get("WebSocket route on a slashed channel", "/v1/channels/a/b/ws", error(400, "invalid_channel"));
get("poll on an invalid channel", "/v1/channels/-x/poll?timeout=0", error(400, "invalid_channel"));
get("presence on an invalid channel", "/v1/channels/_x/presence", error(400, "invalid_channel"));
get("unknown sub-resource of a channel", "/v1/channels/hostile-a/secrets", error(404, "not_found"));
get("trailing slash after a resource", "/v1/channels/hostile-a/messages/", error(404, "not_found"));
get("no channel at all", "/v1/channels", error(404, "not_found"));
get("unknown API version", "/v2/channels/hostile-a/messages", error(404, "not_found"));
get("encoded path to /healthz", "/%68ealthz", ok());

// ── CRLF and injection through query values and headers ────────────────────────────────────────
publish("CRLF in the event name", "/v1/channels/hostile-a/messages?event=a%0D%0Adata:%20injected", error(400, "invalid_event"));
publish("LF and an id field in the event name", "/v1/channels/hostile-a/messages?event=x%0Aid:%20999", error(400, "invalid_event"));
publish("lone CR in the event name", "/v1/channels/hostile-a/messages?event=x%0Dy", error(400, "invalid_event"));
publish("colon-space in the event name", "/v1/channels/hostile-a/messages?event=x:%20y", error(400, "invalid_event"));
publish("reserved relay. event", "/v1/channels/hostile-a/messages?event=relay.gap", error(400, "invalid_event"));
publish("empty event", "/v1/channels/hostile-a/messages?event=", error(400, "invalid_event"));
publish("event of 65 characters", `/v1/channels/hostile-a/messages?event=${"e".repeat(65)}`, error(400, "invalid_event"));
publish("invalid UTF-8 in the event", "/v1/channels/hostile-a/messages?event=%FF", error(400, "invalid_event"));
publish("NUL in the event", "/v1/channels/hostile-a/messages?event=a%00", error(400, "invalid_event"));
publish("event of 100 KB", `/v1/channels/hostile-a/messages?event=${"e".repeat(K100)}`, error(400, "invalid_event"));
publish("percent-encoded CRLF in the Idempotency-Key is just printable text", "/v1/channels/hostile-a/messages", ok(201), {
  headers: { "Idempotency-Key": "k%0D%0Aevent:%20x" },
});
publish("tab inside the Idempotency-Key", "/v1/channels/hostile-a/messages", error(400, "invalid_idempotency_key"), { headers: { "Idempotency-Key": "a\tb" } });
publish("Idempotency-Key of 129 characters", "/v1/channels/hostile-a/messages", error(400, "invalid_idempotency_key"), {
  headers: { "Idempotency-Key": "k".repeat(129) },
});
publish("Latin-1 byte in the Idempotency-Key", "/v1/channels/hostile-a/messages", error(400, "invalid_idempotency_key"), {
  headers: { "Idempotency-Key": "caf\u00e9" },
});
publish("If-Match not in the channel", "/v1/channels/hostile-a/messages", error(412, "precondition_failed"), { headers: { "If-Match": '"999999"' } });
publish("If-Match that is not an id", "/v1/channels/hostile-a/messages", error(400, "invalid_request"), { headers: { "If-Match": '"abc"' } });
publish("If-Match as a weak ETag", "/v1/channels/hostile-a/messages", error(400, "invalid_request"), { headers: { "If-Match": 'W/"1"' } });
publish("If-Match with an exponent", "/v1/channels/hostile-a/messages", error(400, "invalid_request"), { headers: { "If-Match": '"1e3"' } });
publish("If-Match negative", "/v1/channels/hostile-a/messages", error(400, "invalid_request"), { headers: { "If-Match": '"-1"' } });
publish("If-Match of 100 KB of digits", "/v1/channels/hostile-a/messages", error(400, "invalid_request"), { headers: { "If-Match": `"${"9".repeat(K100)}"` } });
get("CRLF and a field in since (SSE)", "/v1/channels/hostile-sse/events?since=1%0D%0Aevent:%20x", error(400, "invalid_request"));
get("percent-encoded CRLF in Last-Event-ID", "/v1/channels/hostile-sse/events", error(400, "invalid_request"), { "Last-Event-ID": "1%0D%0Aevent: x" });
get("Last-Event-ID with spaces and a field", "/v1/channels/hostile-sse/events", error(400, "invalid_request"), { "Last-Event-ID": "1 event: x" });
get("Last-Event-ID negative", "/v1/channels/hostile-sse/events", error(400, "invalid_request"), { "Last-Event-ID": "-1" });
get("Last-Event-ID of 100 KB", "/v1/channels/hostile-sse/events", error(400, "invalid_request"), { "Last-Event-ID": "1".repeat(K100) });
get("multi-channel cursor with a field injected", "/v1/events?channel=hostile-sse&since=hostile-sse%3D1%0Aevent:%20x", error(400, "invalid_request"));
get("multi-channel cursor naming a channel twice", "/v1/events?channel=hostile-sse", error(400, "invalid_request"), {
  "Last-Event-ID": "hostile-sse=1,hostile-sse=2",
});
get("multi-channel cursor naming another channel", "/v1/events?channel=hostile-sse", error(400, "invalid_request"), { "Last-Event-ID": "hostile-a=1" });
get("multi-channel cursor with __proto__", "/v1/events?channel=hostile-sse", error(400, "invalid_request"), { "Last-Event-ID": "__proto__=1" });

// ── 100 KB query strings and 10,000 parameters ────────────────────────────────────────────────
get("100 KB of an unknown query parameter", `/v1/channels/hostile-a/messages?pad=${"a".repeat(K100)}`, ok());
get("100 KB since", `/v1/channels/hostile-a/messages?since=${"9".repeat(K100)}`, error(400, "invalid_request"));
get("100 KB limit of digits counts as the maximum", `/v1/channels/hostile-a/messages?limit=${"9".repeat(K100)}`, ok());
get("10,000 since parameters, the first one counts", `/v1/channels/hostile-a/messages?${"since=0&".repeat(10_000)}`, ok());
get("100 KB channel name on /v1/events", `/v1/events?channel=${"c".repeat(K100)}`, error(400, "invalid_channel"));
get("10,000 distinct channel= parameters on /v1/events", `/v1/events?${manyChannels(10_000, (i) => `c${i}`)}`, error(400, "invalid_request"));
get("10,000 channel= parameters with invalid names", `/v1/events?${manyChannels(10_000, (i) => `_${i}`)}`, error(400, "invalid_request"));
get("101 distinct channels on /v1/events", `/v1/events?${manyChannels(101, (i) => `c${i}`)}`, error(400, "invalid_request"));
get("10,000 copies of one channel= parameter are one channel", `/v1/events?${manyChannels(10_000, () => "hostile-sse")}`, ok());
get("an empty channel= on /v1/events", "/v1/events?channel=", error(400, "invalid_channel"));
get("no channel= on /v1/events", "/v1/events", error(400, "invalid_request"));
get("channel[]= array syntax on /v1/events", "/v1/events?channel[]=hostile-sse", error(400, "invalid_request"));
get("an encoded slash in a /v1/events channel", "/v1/events?channel=a%2Fb", error(400, "invalid_channel"));
get("__proto__ as a /v1/events channel", "/v1/events?channel=__proto__", error(400, "invalid_channel"));
get("a token of 100 KB is not looked at without a secret", `/v1/channels/hostile-a/messages?token=${"t".repeat(K100)}`, ok());

// ── Numbers as strings, strings as numbers ─────────────────────────────────────────────────────
for (const [label, value] of [
  ["negative", "-1"],
  ["plus sign", "%2B5"],
  ["exponent", "1e3"],
  ["hex", "0x10"],
  ["fraction", "1.5"],
  ["Infinity", "Infinity"],
  ["NaN", "NaN"],
  ["empty", ""],
  ["leading space", "%205"],
  ["beyond 2^53", "9007199254740993"],
] as const) {
  get(`since ${label} on history`, `/v1/channels/hostile-a/messages?since=${value}`, error(400, "invalid_request"));
}
get("limit as an exponent", "/v1/channels/hostile-a/messages?limit=1e2", error(400, "invalid_request"));
get("limit negative", "/v1/channels/hostile-a/messages?limit=-5", error(400, "invalid_request"));
get("leading zeros are still a number", "/v1/channels/hostile-a/messages?since=000&limit=0010", ok());
get("poll timeout as a fraction", "/v1/channels/hostile-a/poll?timeout=0.5", error(400, "invalid_request"));
get("poll timeout negative", "/v1/channels/hostile-a/poll?timeout=-1", error(400, "invalid_request"));
get("poll since as hex", "/v1/channels/hostile-a/poll?since=0x1&timeout=0", error(400, "invalid_request"));
get("SSE since as a fraction", "/v1/channels/hostile-sse/events?since=1.0", error(400, "invalid_request"));
batch(
  "batch: channel as a number",
  (m) => JSON.stringify({ messages: [{ channel: 123, data: m(0) }] }),
  { status: 200, code: null, results: ["invalid_channel"] },
  1,
);
batch(
  "batch: data as a number",
  (m) => `{"messages":[{"channel":"hostile-a","data":1,"note":"${m(0)}"},{"channel":"hostile-a","data":"${m(1)}"}]}`,
  { status: 200, code: null, results: ["invalid_request", "ok"] },
  2,
);
batch(
  "batch: data as an object with the marker",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: { text: m(0) } }] }),
  { status: 200, code: null, results: ["invalid_request"] },
  1,
);
batch(
  "batch: data as an array",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: [m(0)] }] }),
  { status: 200, code: null, results: ["invalid_request"] },
  1,
);
batch(
  "batch: data null",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: null, marker: m(0) }] }),
  { status: 200, code: null, results: ["invalid_request"] },
  1,
);
batch(
  "batch: event as a number",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: m(0), event: 42 }] }),
  { status: 200, code: null, results: ["invalid_event"] },
  1,
);
batch(
  "batch: event null",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: m(0), event: null }] }),
  { status: 200, code: null, results: ["invalid_event"] },
  1,
);
batch(
  "batch: idempotencyKey as a number",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: m(0), idempotencyKey: 7 }] }),
  { status: 200, code: null, results: ["invalid_idempotency_key"] },
  1,
);
batch(
  "batch: messages as a string",
  (m) => JSON.stringify({ messages: JSON.stringify([{ channel: "hostile-a", data: m(0) }]) }),
  error(400, "invalid_request"),
  1,
);
batch(
  "batch: messages as an array-like object",
  (m) => JSON.stringify({ messages: { 0: { channel: "hostile-a", data: m(0) }, length: 1 } }),
  error(400, "invalid_request"),
  1,
);
batch("batch: messages as a number", () => '{"messages":1}', error(400, "invalid_request"), 0);

// ── Prototype pollution ────────────────────────────────────────────────────────────────────────
batch(
  "batch: __proto__ at the top holding the messages",
  (m) => `{"__proto__":{"messages":[{"channel":"hostile-a","data":"${m(0)}"}]}}`,
  error(400, "invalid_request"),
  1,
);
batch(
  "batch: constructor.prototype at the top holding the messages",
  (m) => `{"constructor":{"prototype":{"messages":[{"channel":"hostile-a","data":"${m(0)}"}]}}}`,
  error(400, "invalid_request"),
  1,
);
batch(
  "batch: entry fields only under __proto__",
  (m) => `{"messages":[{"__proto__":{"channel":"hostile-a","data":"${m(0)}"}}]}`,
  { status: 200, code: null, results: ["invalid_channel"] },
  1,
);
batch(
  "batch: entry channel only under constructor.prototype",
  (m) => `{"messages":[{"constructor":{"prototype":{"channel":"hostile-a"}},"data":"${m(0)}"}]}`,
  { status: 200, code: null, results: ["invalid_channel"] },
  1,
);
batch(
  "batch: data only under __proto__",
  (m) => `{"messages":[{"channel":"hostile-a","__proto__":{"data":"${m(0)}"}}]}`,
  { status: 200, code: null, results: ["invalid_request"] },
  1,
);
batch(
  "batch: __proto__ next to good fields is ignored",
  (m) => `{"messages":[{"channel":"hostile-a","data":"${m(0)}","__proto__":{"event":"relay.gap","channel":"hostile-b"}}]}`,
  { status: 200, code: null, results: ["ok"] },
  1,
);
batch(
  "batch: channel __proto__",
  (m) => JSON.stringify({ messages: [{ channel: "__proto__", data: m(0) }] }),
  { status: 200, code: null, results: ["invalid_channel"] },
  1,
);
batch(
  "batch: channels named like Object.prototype members",
  (m) =>
    JSON.stringify({
      messages: [
        { channel: "constructor", data: m(0) },
        { channel: "toString", data: m(1) },
        { channel: "hasOwnProperty", data: m(2) },
      ],
    }),
  { status: 200, code: null, results: ["ok", "ok", "ok"] },
  3,
);
batch(
  "batch: idempotencyKey __proto__ is just a key",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-b", data: m(0), idempotencyKey: "__proto__" }] }),
  { status: 200, code: null, results: ["ok"] },
  1,
);
batch(
  "batch: messages array with a __proto__ entry string",
  (m) => `{"messages":["__proto__",{"channel":"hostile-a","data":"${m(1)}"}]}`,
  { status: 200, code: null, results: ["invalid_channel", "ok"] },
  2,
);

// ── Deep nesting ───────────────────────────────────────────────────────────────────────────────
batch("batch: 10,000 nested arrays as the body", () => deepArray(10_000), error(400, "invalid_request"), 0);
batch("batch: 10,000 nested objects as the body", () => deepObject(10_000), error(400, "invalid_request"), 0);
batch("batch: 10,000 nested arrays as an entry", () => `{"messages":[${deepArray(10_000)}]}`, { status: 200, code: null, results: ["invalid_channel"] }, 1);
batch(
  "batch: 10,000 nested objects as an entry's data",
  (m) => `{"messages":[{"channel":"hostile-a","data":${deepObject(10_000, JSON.stringify(m(0)))}}]}`,
  { status: 200, code: null, results: ["invalid_request"] },
  1,
);
batch("batch: 10,000 unclosed brackets", () => "[".repeat(10_000), error(400, "invalid_request"), 0);
batch("batch: 100,000 nested arrays", () => deepArray(K100), error(400, "invalid_request"), 0);
publish("single publish of 10,000 nested arrays is just too large", "/v1/channels/hostile-a/messages", error(413, "message_too_large"), {
  body: (m) => `${m}${deepArray(10_000)}`,
});

// ── Bodies: invalid UTF-8, sizes, shapes ───────────────────────────────────────────────────────
publish("invalid UTF-8 body is stored base64", "/v1/channels/hostile-b/messages", ok(201), { body: (m) => bytes(m, [0xff, 0xfe, 0x80]) });
publish("overlong NUL in the body is stored base64", "/v1/channels/hostile-b/messages", ok(201), { body: (m) => bytes(m, [0xc0, 0x80]) });
publish("invalid UTF-8 body over the size limit", "/v1/channels/hostile-a/messages", error(413, "message_too_large"), {
  body: (m) => bytes(m, new Array(MAX_MESSAGE_BYTES).fill(0xff)),
});
publish("body one byte over the limit", "/v1/channels/hostile-a/messages", error(413, "message_too_large"), {
  body: (m) => m + "x".repeat(MAX_MESSAGE_BYTES + 1 - m.length),
});
publish("multi-byte body one byte over the limit", "/v1/channels/hostile-a/messages", error(413, "message_too_large"), {
  body: (m) => m + "\u00e9".repeat(Math.ceil((MAX_MESSAGE_BYTES + 1 - m.length) / 2)),
});
publish("body of 1 MB", "/v1/channels/hostile-a/messages", error(413, "message_too_large"), { body: (m) => m + "x".repeat(1 << 20) });
publish("body at exactly the limit", "/v1/channels/hostile-b/messages", ok(201), { body: (m) => m + "x".repeat(MAX_MESSAGE_BYTES - m.length) });
publish("JSON with __proto__ as a plain message body is just data", "/v1/channels/hostile-b/messages", ok(201), {
  body: (m) => `{"__proto__":{"polluted":"${m}"}}`,
  headers: JSON_TYPE,
});
publish("SSE field injection inside the data is split into data lines", "/v1/channels/hostile-sse/messages", ok(201), {
  body: (m) => `${m}\r\nevent: injected\nid: 999\r\rdata: x`,
});
batch(
  "batch: invalid UTF-8 outside any string",
  (m) => bytes(`{"messages":[{"channel":"hostile-a","data":"${m(0)}"}]`, [0xff], "}"),
  error(400, "invalid_request"),
  1,
);
batch(
  "batch: entry data one byte over the limit",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: m(0) + "x".repeat(MAX_MESSAGE_BYTES + 1 - m(0).length) }] }),
  { status: 200, code: null, results: ["message_too_large"] },
  1,
);
batch(
  "batch: 101 entries",
  (m) => JSON.stringify({ messages: Array.from({ length: 101 }, (_, i) => ({ channel: "hostile-a", data: m(i) })) }),
  error(400, "invalid_request"),
  101,
);
batch(
  "batch: body of 1 MB",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: m(0) }], pad: "x".repeat(1 << 20) }),
  error(413, "message_too_large"),
  1,
);
batch("batch: empty body", () => "", error(400, "invalid_request"), 0);
batch("batch: JSON null", () => "null", error(400, "invalid_request"), 0);
batch(
  "batch: duplicate messages keys, the last one wins",
  (m) => `{"messages":[{"channel":"hostile-a","data":"${m(0)}"}],"messages":"nope"}`,
  error(400, "invalid_request"),
  1,
);
batch("batch: trailing garbage after the JSON", (m) => `{"messages":[{"channel":"hostile-a","data":"${m(0)}"}]} trailing`, error(400, "invalid_request"), 1);
batch("batch: single quotes are not JSON", (m) => `{'messages':[{'channel':'hostile-a','data':'${m(0)}'}]}`, error(400, "invalid_request"), 1);

// ── Content types ──────────────────────────────────────────────────────────────────────────────
for (const [label, type] of [
  ["text/plain", "text/plain"],
  ["form-encoded", "application/x-www-form-urlencoded"],
  ["multipart", "multipart/form-data; boundary=x"],
  ["a JSON look-alike", "application/jsonx"],
  ["a JSON suffix type", "application/merge-patch+json"],
  ["text/json", "text/json"],
] as const) {
  batch(`batch sent as ${label}`, (m) => JSON.stringify({ messages: [{ channel: "hostile-a", data: m(0) }] }), error(415, "unsupported_media_type"), 1, {
    "Content-Type": type,
  });
}
batch(
  "batch without a Content-Type",
  (m) => bytes(JSON.stringify({ messages: [{ channel: "hostile-a", data: m(0) }] })),
  error(415, "unsupported_media_type"),
  1,
  {},
);
batch(
  "batch as APPLICATION/JSON with a charset",
  (m) => JSON.stringify({ messages: [{ channel: "hostile-b", data: m(0) }] }),
  { status: 200, code: null, results: ["ok"] },
  1,
  { "Content-Type": "APPLICATION/JSON; charset=utf-8" },
);
publish("single publish takes any content type", "/v1/channels/hostile-b/messages", ok(201), {
  headers: { "Content-Type": 'application/x-evil; charset="\\"' },
});

// ── Methods ────────────────────────────────────────────────────────────────────────────────────
publish("PUT on messages", "/v1/channels/hostile-a/messages", error(405, "method_not_allowed"), { method: "PUT" });
publish("PATCH on messages", "/v1/channels/hostile-a/messages", error(405, "method_not_allowed"), { method: "PATCH" });
publish("DELETE on messages", "/v1/channels/hostile-a/messages", error(405, "method_not_allowed"), { method: "DELETE" });
publish("a made-up method on messages", "/v1/channels/hostile-a/messages", error(405, "method_not_allowed"), { method: "PURGE" });
publish("POST on channel info", "/v1/channels/hostile-a", error(405, "method_not_allowed"));
publish("POST on the SSE route", "/v1/channels/hostile-a/events", error(405, "method_not_allowed"));
publish("POST on the WebSocket route", "/v1/channels/hostile-a/ws", error(405, "method_not_allowed"));
publish("POST on /v1/ws", "/v1/ws", error(405, "method_not_allowed"));
publish("POST on /v1/events", "/v1/events?channel=hostile-a", error(405, "method_not_allowed"));
publish("POST on /healthz", "/healthz", error(405, "method_not_allowed"));
get("GET on /v1/publish", "/v1/publish", error(405, "method_not_allowed"));
add(() => ({ name: "HEAD on /healthz", method: "HEAD", path: "/healthz", expect: ok() }));
add(() => ({ name: "HEAD with a bad since", method: "HEAD", path: "/v1/channels/hostile-a/messages?since=x", expect: { status: 400, code: null } }));
add(() => ({
  name: "HEAD on the SSE route must not leave a subscriber behind",
  method: "HEAD",
  path: "/v1/channels/hostile-sse/events",
  expect: { status: 405, code: null },
}));
add(() => ({ name: "HEAD on long-poll", method: "HEAD", path: "/v1/channels/hostile-a/poll?timeout=0", expect: { status: 405, code: null } }));
add(() => ({ name: "HEAD on /v1/events", method: "HEAD", path: "/v1/events?channel=hostile-sse", expect: { status: 405, code: null } }));
add(() => ({ name: "OPTIONS without Origin", method: "OPTIONS", path: "/v1/channels/hostile-a/messages", expect: { status: 204, code: null } }));

// ── WebSocket routes without an upgrade ────────────────────────────────────────────────────────
get("channel WebSocket route without Upgrade", "/v1/channels/hostile-a/ws", error(426, "upgrade_required"));
get("/v1/ws without Upgrade", "/v1/ws", error(426, "upgrade_required"));

// ── Tokens when no secret is configured: not looked at ─────────────────────────────────────────
get("oversized bearer token on history", "/v1/channels/hostile-a/messages", ok(), { Authorization: `Bearer ${"t".repeat(K100)}` });
get("malformed Authorization on history", "/v1/channels/hostile-a/messages", ok(), { Authorization: "Basic %0D%0Ainjected" });
get("oversized relay_token cookie on history", "/v1/channels/hostile-a/messages", ok(), { Cookie: `relay_token=${"t".repeat(K100)}` });
publish("alg-none token on a publish (anonymous publishing is on)", "/v1/channels/hostile-b/messages", ok(201), {
  headers: { Authorization: "Bearer eyJhbGciOiJub25lIn0.eyJyZWxheSI6e319." },
});

export const HOSTILE_CASES: HostileCase[] = drafts.map((draft, index) => {
  const id = index + 1;
  const { markers, ...rest } = draft(id);
  const out: HostileCase = { id, ...rest };
  if (markers !== undefined) out.markers = rest.path === "/v1/publish" ? Array.from({ length: markers }, (_, entry) => marker(id, entry)) : [marker(id)];
  return out;
});

/** The markers of requests (or batch entries) that were refused: none of these may be stored anywhere. */
export function rejectedMarkers(cases: readonly HostileCase[] = HOSTILE_CASES): string[] {
  return cases.flatMap((c) => {
    if (!c.markers) return [];
    if (c.expect.status >= 400) return c.markers;
    if (c.expect.results) return c.markers.filter((_, i) => c.expect.results![i] !== "ok");
    return [];
  });
}

// ── WebSocket frames ───────────────────────────────────────────────────────────────────────────
export const HOSTILE_WS_CHANNEL = "hostile-ws";
const CHANNEL_WS = `/v1/channels/${HOSTILE_WS_CHANNEL}/ws`;
const MUX_WS = "/v1/ws";

const frameDrafts: Array<(id: number) => Omit<HostileFrame, "id">> = [];
const frame = (name: string, path: string, build: (m: string) => string | Uint8Array, code: string, ref?: string, publishes = true) =>
  frameDrafts.push((id) => ({
    name,
    path,
    frame: build(`[HOSTILE-F${id}]`),
    ...(publishes ? { markers: [`[HOSTILE-F${id}]`] } : {}),
    expect: ref === undefined ? { code } : { code, ref },
  }));

for (const path of [CHANNEL_WS, MUX_WS]) {
  const where = path === CHANNEL_WS ? "channel socket" : "/v1/ws";
  const channel = path === CHANNEL_WS ? {} : { channel: "hostile-mux" };
  const pub = (fields: Record<string, unknown>) => JSON.stringify({ type: "publish", ...channel, ...fields });
  frame(`${where}: 10,000 nested arrays`, path, () => deepArray(10_000), "invalid_frame", undefined, false);
  frame(`${where}: 10,000 nested objects under type`, path, () => `{"type":${deepObject(10_000)}}`, "invalid_frame", undefined, false);
  frame(
    `${where}: 10,000 nested arrays as ref`,
    path,
    (m) => `{"type":"publish",${path === MUX_WS ? '"channel":"hostile-mux",' : ""}"data":"${m}","ref":${deepArray(10_000)}}`,
    "invalid_frame",
  );
  frame(
    `${where}: 10,000 nested objects as data`,
    path,
    (m) => `{"type":"publish",${path === MUX_WS ? '"channel":"hostile-mux",' : ""}"data":${deepObject(10_000, JSON.stringify(m))},"ref":"deep"}`,
    "invalid_frame",
    "deep",
  );
  frame(`${where}: the whole frame under __proto__`, path, (m) => `{"__proto__":{"type":"publish","channel":"hostile-mux","data":"${m}"}}`, "invalid_frame");
  frame(
    `${where}: data only under __proto__`,
    path,
    (m) => `{"type":"publish",${path === MUX_WS ? '"channel":"hostile-mux",' : ""}"ref":"p1","__proto__":{"data":"${m}"}}`,
    "invalid_frame",
    "p1",
  );
  frame(
    `${where}: type under constructor.prototype`,
    path,
    (m) => `{"constructor":{"prototype":{"type":"publish"}},"channel":"hostile-mux","data":"${m}"}`,
    "invalid_frame",
  );
  frame(`${where}: type __proto__`, path, () => '{"type":"__proto__","ref":"t1"}', "invalid_frame", "t1", false);
  frame(`${where}: type constructor`, path, () => '{"type":"constructor","ref":"t2"}', "invalid_frame", "t2", false);
  frame(`${where}: type toString`, path, () => '{"type":"toString"}', "invalid_frame", undefined, false);
  frame(`${where}: ref of 129 characters`, path, (m) => pub({ data: m, ref: "r".repeat(129) }), "invalid_frame");
  frame(`${where}: ref of 100 KB`, path, (m) => pub({ data: m, ref: "r".repeat(K100) }), "invalid_frame");
  frame(`${where}: ref as a number`, path, (m) => pub({ data: m, ref: 1 }), "invalid_frame");
  frame(`${where}: ref as an object`, path, (m) => pub({ data: m, ref: { toString: "x" } }), "invalid_frame");
  frame(`${where}: binary frame holding a valid publish`, path, (m) => new TextEncoder().encode(pub({ data: m })), "invalid_frame");
  frame(`${where}: binary frame of invalid UTF-8`, path, () => Uint8Array.from([0xff, 0xfe, 0x00, 0x80]), "invalid_frame", undefined, false);
  frame(`${where}: data as a number`, path, () => pub({ data: 1, ref: "n1" }), "invalid_frame", "n1", false);
  frame(`${where}: data as a numeric string is fine, but event as a number is not`, path, (m) => pub({ data: m, event: 1, ref: "n2" }), "invalid_event", "n2");
  frame(`${where}: data as an array`, path, (m) => pub({ data: [m], ref: "n3" }), "invalid_frame", "n3");
  frame(`${where}: data null`, path, () => pub({ data: null, ref: "n4" }), "invalid_frame", "n4", false);
  frame(`${where}: event with a newline`, path, (m) => pub({ data: m, event: "x\nid: 1", ref: "e1" }), "invalid_event", "e1");
  frame(`${where}: reserved relay. event`, path, (m) => pub({ data: m, event: "relay.gap", ref: "e2" }), "invalid_event", "e2");
  frame(`${where}: channel as a number`, path, (m) => JSON.stringify({ type: "publish", channel: 5, data: m, ref: "c1" }), "invalid_channel", "c1");
  frame(`${where}: channel __proto__`, path, (m) => JSON.stringify({ type: "publish", channel: "__proto__", data: m, ref: "c2" }), "invalid_channel", "c2");
  frame(`${where}: data over MAX_MESSAGE_BYTES`, path, (m) => pub({ data: m + "x".repeat(MAX_MESSAGE_BYTES), ref: "big" }), "message_too_large", "big");
  frame(`${where}: frame over MAX_FRAME_BYTES`, path, (m) => pub({ data: m, ref: "huge", pad: "x".repeat(MAX_FRAME_BYTES) }), "message_too_large");
  frame(`${where}: ping with a space is not the ping`, path, () => '{"type":"ping" }', "invalid_frame", undefined, false);
  frame(`${where}: PUBLISH in capitals`, path, (m) => JSON.stringify({ type: "PUBLISH", ...channel, data: m }), "invalid_frame");
  frame(
    `${where}: duplicate type keys, the last one wins`,
    path,
    (m) => `{"type":"publish","channel":"hostile-mux","data":"${m}","type":"nope"}`,
    "invalid_frame",
  );
  frame(`${where}: JSON null`, path, () => "null", "invalid_frame", undefined, false);
  frame(`${where}: a JSON string`, path, () => '"publish"', "invalid_frame", undefined, false);
  frame(`${where}: an empty text frame`, path, () => "", "invalid_frame", undefined, false);
  frame(`${where}: not JSON`, path, (m) => `publish ${m}`, "invalid_frame");
}
frame(
  "channel socket: publishing to another channel",
  CHANNEL_WS,
  (m) => JSON.stringify({ type: "publish", channel: "hostile-a", data: m, ref: "x1" }),
  "invalid_channel",
  "x1",
);
frame(
  "channel socket: subscribe frames belong on /v1/ws",
  CHANNEL_WS,
  () => JSON.stringify({ type: "subscribe", channel: "hostile-a", ref: "x2" }),
  "invalid_frame",
  "x2",
  false,
);
frame(
  "/v1/ws: since as a number",
  MUX_WS,
  () => JSON.stringify({ type: "subscribe", channel: "hostile-a", since: 5, ref: "s1" }),
  "invalid_request",
  "s1",
  false,
);
frame(
  "/v1/ws: since as a fraction string",
  MUX_WS,
  () => JSON.stringify({ type: "subscribe", channel: "hostile-a", since: "5.0", ref: "s2" }),
  "invalid_request",
  "s2",
  false,
);
frame(
  "/v1/ws: since negative",
  MUX_WS,
  () => JSON.stringify({ type: "subscribe", channel: "hostile-a", since: "-1", ref: "s3" }),
  "invalid_request",
  "s3",
  false,
);
frame(
  "/v1/ws: since as an exponent",
  MUX_WS,
  () => JSON.stringify({ type: "subscribe", channel: "hostile-a", since: "1e3", ref: "s4" }),
  "invalid_request",
  "s4",
  false,
);
frame(
  "/v1/ws: presence as a string",
  MUX_WS,
  () => JSON.stringify({ type: "subscribe", channel: "hostile-a", presence: "true", ref: "s5" }),
  "invalid_request",
  "s5",
  false,
);
frame("/v1/ws: subscribe to a number", MUX_WS, () => JSON.stringify({ type: "subscribe", channel: 7, ref: "s6" }), "invalid_channel", "s6", false);
frame("/v1/ws: subscribe to __proto__", MUX_WS, () => JSON.stringify({ type: "subscribe", channel: "__proto__", ref: "s7" }), "invalid_channel", "s7", false);
frame("/v1/ws: subscribe to a slashed name", MUX_WS, () => JSON.stringify({ type: "subscribe", channel: "a/b", ref: "s8" }), "invalid_channel", "s8", false);
frame(
  "/v1/ws: subscribe to 129 characters",
  MUX_WS,
  () => JSON.stringify({ type: "subscribe", channel: "a".repeat(129), ref: "s9" }),
  "invalid_channel",
  "s9",
  false,
);
frame(
  "/v1/ws: unsubscribe from constructor (never subscribed)",
  MUX_WS,
  () => JSON.stringify({ type: "unsubscribe", channel: "constructor", ref: "u1" }),
  "invalid_request",
  "u1",
  false,
);
frame("/v1/ws: publish without a channel", MUX_WS, (m) => JSON.stringify({ type: "publish", data: m, ref: "p2" }), "invalid_channel", "p2");
frame(
  "/v1/ws: a subscribe frame over MAX_FRAME_BYTES",
  MUX_WS,
  () => JSON.stringify({ type: "unsubscribe", channel: "hostile-a", pad: "x".repeat(MAX_FRAME_BYTES) }),
  "message_too_large",
  undefined,
  false,
);

export const HOSTILE_FRAMES: HostileFrame[] = frameDrafts.map((draft, index) => ({ id: index + 1, ...draft(index + 1) }));
