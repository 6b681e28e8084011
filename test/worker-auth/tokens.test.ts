import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { eventually, expectError } from "../worker/helpers";
import {
  base64url,
  craft,
  frameOutcome,
  mint,
  nowSeconds,
  outcomeOf,
  PREVIOUS_SECRET,
  randomChannel,
  relay,
  SECRET,
  send,
  type TokenSource,
  Ws,
} from "./auth-helpers";

const SOURCES: TokenSource[] = ["header", "query", "cookie"];

async function publishWith(channel: string, token: string | undefined, source: TokenSource = "header"): Promise<string> {
  return outcomeOf(await send(`/v1/channels/${channel}/messages`, token, { method: "POST", body: "x", source }), 201);
}

async function readWith(channel: string, token: string | undefined, source: TokenSource = "header"): Promise<string> {
  return outcomeOf(await send(`/v1/channels/${channel}/messages`, token, { source }), 200);
}

describe("hand-crafted bad tokens are 401 from every source", () => {
  const cases: Array<[string, (channel: string) => Promise<string>]> = [
    ["alg none, no signature", (c) => craft({ alg: "none", typ: "JWT" }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } }, null)],
    ["alg none with an HS256 signature", (c) => craft({ alg: "none", typ: "JWT" }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } })],
    ["alg NONE", (c) => craft({ alg: "NONE" }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } }, null)],
    [
      "HS512 with the right secret",
      (c) => craft({ alg: "HS512", typ: "JWT" }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } }, SECRET, "SHA-512"),
    ],
    ["HS384 from hono/jwt", (c) => sign({ exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } }, SECRET, "HS384")],
    ["RS256 header over an HMAC signature", (c) => craft({ alg: "RS256", typ: "JWT" }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } })],
    ["ES256 header", (c) => craft({ alg: "ES256", typ: "JWT" }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } })],
    ["no alg", (c) => craft({ typ: "JWT" }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } })],
    ["a crit header", (c) => craft({ alg: "HS256", crit: ["exp"] }, { exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } })],
    ["wrong signature", (c) => mint({ publish: [c], subscribe: [c] }, {}, "wrong-secret")],
    ["no exp", (c) => mint({ publish: [c], subscribe: [c] }, { exp: undefined })],
    ["exp as a string", (c) => mint({ publish: [c], subscribe: [c] }, { exp: String(nowSeconds() + 300) })],
    ["expired an hour ago", (c) => mint({ publish: [c], subscribe: [c] }, { exp: nowSeconds() - 3600 })],
    ["expired just past the leeway", (c) => mint({ publish: [c], subscribe: [c] }, { exp: nowSeconds() - 45 })],
    ["nbf in an hour", (c) => mint({ publish: [c], subscribe: [c] }, { nbf: nowSeconds() + 3600 })],
    ["nbf just past the leeway", (c) => mint({ publish: [c], subscribe: [c] }, { nbf: nowSeconds() + 45 })],
    ["relay claim as a string", (c) => sign({ exp: nowSeconds() + 300, relay: c }, SECRET, "HS256")],
    ["patterns as a string", (c) => sign({ exp: nowSeconds() + 300, relay: { publish: c, subscribe: c } }, SECRET, "HS256")],
    ["sub as a number", (c) => mint({ publish: [c], subscribe: [c] }, { sub: 42 })],
    ["payload null", () => craft({ alg: "HS256", typ: "JWT" }, null)],
    ["payload an array", () => craft({ alg: "HS256", typ: "JWT" }, [1, 2, 3])],
    ["malformed: one part", async () => "abc"],
    ["malformed: two parts", async () => "abc.def"],
    ["malformed: four parts", async (c) => `${await mint({ publish: [c], subscribe: [c] })}.x`],
    ["malformed: not base64", async () => "!!!.???.***"],
    ["malformed: header not JSON", async () => `${base64url("not json")}.${base64url("{}")}.sig`],
    ["malformed: padded signature garbage", async (c) => `${(await mint({ publish: [c], subscribe: [c] })).slice(0, -4)}====`],
    [
      "tampered payload widening the grant",
      async (c) => {
        const [header, , signature] = (await mint({ subscribe: ["nothing"] })).split(".");
        return `${header}.${base64url(JSON.stringify({ exp: nowSeconds() + 300, relay: { publish: [c], subscribe: [c] } }))}.${signature}`;
      },
    ],
    ["oversized (9000 characters)", async () => "a".repeat(9000)],
  ];

  it.each(cases)("%s", async (_name, make) => {
    const channel = randomChannel("bad");
    const token = await make(channel);
    for (const source of SOURCES) {
      expect(await publishWith(channel, token, source), `publish, ${source}`).toBe("401 unauthorized");
      expect(await readWith(channel, token, source), `history, ${source}`).toBe("401 unauthorized");
    }
    expect(await readWith("public.news", token)).toBe("401 unauthorized");
  });

  it("a hand-made token with the right header and secret works, so the cases above fail for their flaw alone", async () => {
    const channel = randomChannel("crafted");
    const token = await craft(
      { alg: "HS256", typ: "JWT" },
      { sub: `u-${crypto.randomUUID()}`, exp: nowSeconds() + 300, relay: { publish: [channel], subscribe: [channel] } },
    );
    expect(await publishWith(channel, token)).toBe("ok");
    expect(await readWith(channel, token)).toBe("ok");
  });

  it("tokens inside the 30 s leeway are accepted", async () => {
    const channel = randomChannel("leeway");
    const grants = { publish: [channel], subscribe: [channel] };
    expect(await publishWith(channel, await mint(grants, { exp: nowSeconds() - 10 }))).toBe("ok");
    expect(await publishWith(channel, await mint(grants, { nbf: nowSeconds() + 10 }))).toBe("ok");
  });

  it("a malformed Authorization header is 401, even when a good token is also in the query", async () => {
    const channel = randomChannel("authz");
    const good = await mint({ publish: [channel], subscribe: [channel] });
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", `Bearer ${good} extra`, "Bearer "]) {
      const res = await relay(`/v1/channels/${channel}/messages?token=${good}`, { headers: { Authorization: authorization } });
      await expectError(res, 401, "unauthorized");
    }
  });

  it("the header wins over the query, which wins over the cookie", async () => {
    const channel = randomChannel("precedence");
    const good = await mint({ subscribe: [channel] });
    const bad = await mint({ subscribe: [channel] }, {}, "wrong-secret");
    const path = `/v1/channels/${channel}/messages`;
    expect(await outcomeOf(await relay(`${path}?token=${bad}`, { headers: { Authorization: `Bearer ${good}`, Cookie: `relay_token=${bad}` } }), 200)).toBe(
      "ok",
    );
    expect(await outcomeOf(await relay(`${path}?token=${good}`, { headers: { Authorization: `Bearer ${bad}` } }), 200)).toBe("401 unauthorized");
    expect(await outcomeOf(await relay(`${path}?token=${good}`, { headers: { Cookie: `relay_token=${bad}` } }), 200)).toBe("ok");
    expect(await outcomeOf(await relay(`${path}?token=${bad}`, { headers: { Cookie: `relay_token=${good}` } }), 200)).toBe("401 unauthorized");
  });
});

describe("secret rotation", () => {
  it("tokens signed with the previous secret are still accepted, on every kind of route", async () => {
    const channel = randomChannel("rotation");
    const old = await mint({ publish: [channel], subscribe: [channel] }, {}, PREVIOUS_SECRET);
    expect(await publishWith(channel, old)).toBe("ok");
    expect(await readWith(channel, old)).toBe("ok");
    const ws = await Ws.connect(channel, old, { source: "query" });
    const ack = await ws.request({ type: "publish", data: "via old secret", ref: "r" }, (f) => f.ref === "r", "ack");
    expect(ack.type).toBe("ack");
    ws.close();
    const res = await send(`/v1/channels/${channel}/events`, old, { source: "cookie" });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });

  it("a token signed with any third secret is refused", async () => {
    const channel = randomChannel("rotation");
    expect(await readWith(channel, await mint({ subscribe: [channel] }, {}, "older-secret"))).toBe("401 unauthorized");
  });
});

describe("the token's sub names the client", () => {
  async function presenceIds(channel: string): Promise<Array<{ id: string; transport: string }>> {
    const res = await send(`/v1/channels/${channel}/presence`, await mint({ subscribe: [channel] }));
    expect(res.status).toBe(200);
    return ((await res.json()) as { subscribers: Array<{ id: string; transport: string }> }).subscribers;
  }

  it("as the presence id on the channel socket, SSE, and the multi-channel socket and stream", async () => {
    const channel = randomChannel("presence");
    const token = (sub: string) => mint({ subscribe: [channel] }, { sub });
    const ws = await Ws.connect(channel, await token("alice"));
    const sse = await send(`/v1/channels/${channel}/events`, await token("bob"));
    expect(sse.status).toBe(200);
    const mux = await Ws.open("/v1/ws", await token("carol"));
    await mux.request({ type: "subscribe", channel }, (f) => f.type === "subscribed", "subscribed");
    const muxSse = await send(`/v1/events?channel=${channel}`, await token("dave"));
    expect(muxSse.status).toBe(200);
    await eventually(async () => (await presenceIds(channel)).length === 4, "four members");
    const members = (await presenceIds(channel)).map((m) => `${m.id}/${m.transport}`).sort();
    expect(members).toEqual(["alice/ws", "bob/sse", "carol/ws", "dave/sse"]);
    ws.close();
    mux.close();
    await sse.body?.cancel();
    await muxSse.body?.cancel();
  });

  it("in join frames other subscribers see", async () => {
    const channel = randomChannel("presence");
    const watcher = await Ws.connect(channel, await mint({ subscribe: [channel] }, { sub: "watcher" }), { query: "presence=1" });
    const visitor = await Ws.connect(channel, await mint({ subscribe: [channel] }, { sub: "visitor-7" }));
    const join = await watcher.waitFor((f) => f.type === "join", "join");
    expect(join).toMatchObject({ subscriber: { id: "visitor-7", transport: "ws" } });
    visitor.close();
    watcher.close();
  });

  it("a token without sub gets a random connection id", async () => {
    const channel = randomChannel("presence");
    const ws = await Ws.connect(channel, await mint({ subscribe: [channel] }, { sub: undefined }));
    const [member] = await presenceIds(channel);
    expect(member?.id).toMatch(/^[0-9a-f-]{36}$/);
    ws.close();
  });

  /** What each subscribe route answers a token: "ok" or "<status> <code>". */
  async function subscribeOutcomes(channel: string, token: string): Promise<Record<string, string>> {
    const outcomes: Record<string, string> = {};
    for (const [path, headers, success] of [
      [`/v1/channels/${channel}/ws`, { Upgrade: "websocket" }, 101],
      [`/v1/channels/${channel}/events`, {}, 200],
      [`/v1/channels/${channel}/poll?timeout=0`, {}, 200],
      [`/v1/events?channel=${channel}`, {}, 200],
    ] as const) {
      outcomes[path.replace(channel, "{c}")] = await outcomeOf(await send(path, token, { headers }), success);
    }
    const upgrade = await send("/v1/ws", token, { headers: { Upgrade: "websocket" } });
    if (upgrade.status !== 101) {
      outcomes["/v1/ws subscribe"] = await outcomeOf(upgrade, 101);
      return outcomes;
    }
    const mux = new Ws(upgrade.webSocket!);
    outcomes["/v1/ws subscribe"] = frameOutcome(
      await mux.request({ type: "subscribe", channel, ref: "s" }, (f) => f.type === "subscribed" || f.ref === "s", "an answer"),
    );
    mux.close();
    return outcomes;
  }

  const ALL_OK = {
    "/v1/channels/{c}/ws": "ok",
    "/v1/channels/{c}/events": "ok",
    "/v1/channels/{c}/poll?timeout=0": "ok",
    "/v1/events?channel={c}": "ok",
    "/v1/ws subscribe": "ok",
  };

  // An empty sub names nobody: the client gets a connection id, as an anonymous one would.
  it("an empty sub is a valid token: subscribing works everywhere (with a random id)", async () => {
    const channel = randomChannel("empty-sub");
    const token = await mint({ publish: [channel], subscribe: [channel] }, { sub: "" });
    expect(await subscribeOutcomes(channel, token)).toEqual(ALL_OK);
  });

  // A sub longer than presence lists can show makes the token invalid, on every route alike.
  it("a long sub is refused at the door (401) or works: never a 400 about internal connect requests", async () => {
    const channel = randomChannel("long-sub");
    const token = await mint({ publish: [channel], subscribe: [channel] }, { sub: "s".repeat(300) });
    const outcomes = await subscribeOutcomes(channel, token);
    expect(Object.entries(outcomes).filter(([, outcome]) => !["ok", "401 unauthorized"].includes(outcome))).toEqual([]);
    expect(Object.values(outcomes).filter((o) => o === "ok").length === 5 || Object.values(outcomes).every((o) => o !== "ok"), JSON.stringify(outcomes)).toBe(
      true,
    );
  });
});
