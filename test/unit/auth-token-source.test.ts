import { describe, expect, it } from "vitest";
import { findToken, TOKEN_COOKIE } from "../../src/auth/token-source";

function request(init: { query?: string; authorization?: string; cookie?: string } = {}): Request {
  const headers = new Headers();
  if (init.authorization !== undefined) headers.set("Authorization", init.authorization);
  if (init.cookie !== undefined) headers.set("Cookie", init.cookie);
  return new Request(`https://relay.test/v1/channels/news/events${init.query ?? ""}`, { headers });
}

describe("findToken: sources and precedence", () => {
  it("finds nothing when no token is sent", () => {
    expect(findToken(request())).toBeUndefined();
    expect(findToken(request({ cookie: "other=1; session=abc" }))).toBeUndefined();
    expect(findToken(request({ query: "?since=0&tokens=x" }))).toBeUndefined();
  });

  it("reads each source alone", () => {
    expect(findToken(request({ authorization: "Bearer h.h.h" }))).toEqual({ token: "h.h.h", source: "header" });
    expect(findToken(request({ query: "?token=q.q.q" }))).toEqual({ token: "q.q.q", source: "query" });
    expect(findToken(request({ cookie: `${TOKEN_COOKIE}=c.c.c` }))).toEqual({ token: "c.c.c", source: "cookie" });
    expect(TOKEN_COOKIE).toBe("relay_token");
  });

  it("header beats query beats cookie", () => {
    const all = { authorization: "Bearer h.h.h", query: "?token=q.q.q", cookie: "relay_token=c.c.c" };
    expect(findToken(request(all))).toEqual({ token: "h.h.h", source: "header" });
    expect(findToken(request({ query: all.query, cookie: all.cookie }))).toEqual({ token: "q.q.q", source: "query" });
    expect(findToken(request({ authorization: all.authorization, cookie: all.cookie }))).toEqual({ token: "h.h.h", source: "header" });
  });

  it("a malformed header is reported, not passed over for the query or the cookie", () => {
    const found = findToken(request({ authorization: "Basic dXNlcjpwYXNz", query: "?token=q.q.q", cookie: "relay_token=c.c.c" }));
    expect(found).toHaveProperty("invalid");
  });

  it("an empty query token is invalid, not absent", () => {
    expect(findToken(request({ query: "?token=" }))).toHaveProperty("invalid");
    expect(findToken(request({ query: "?token=", cookie: "relay_token=c.c.c" }))).toHaveProperty("invalid");
  });

  it("the first of repeated query tokens counts", () => {
    expect(findToken(request({ query: "?token=first&token=second" }))).toEqual({ token: "first", source: "query" });
  });

  it("percent-decodes the query token", () => {
    expect(findToken(request({ query: "?token=a%2Eb%2Ec" }))).toEqual({ token: "a.b.c", source: "query" });
  });
});

describe("findToken: the Authorization header", () => {
  it("accepts the scheme in any case and extra spaces", () => {
    for (const value of ["Bearer t.t.t", "bearer t.t.t", "BEARER t.t.t", "Bearer    t.t.t", "  Bearer t.t.t  "]) {
      expect(findToken(request({ authorization: value })), value).toEqual({ token: "t.t.t", source: "header" });
    }
  });

  it("refuses anything but 'Bearer <one token>'", () => {
    const malformed = [
      "",
      "Bearer",
      "Bearer ",
      "Bearert.t.t",
      "Basic dXNlcjpwYXNz",
      "Token t.t.t",
      "Bearer a b",
      "t.t.t",
      "Bearer\tt.t.t",
      "Bearer: t.t.t",
      "Bearer t.t.t, Bearer u.u.u",
    ];
    for (const value of malformed) expect(findToken(request({ authorization: value })), JSON.stringify(value)).toHaveProperty("invalid");
  });
});

describe("findToken: size", () => {
  it("accepts 8192 characters and refuses more, from every source", () => {
    const ok = "a".repeat(8192);
    const tooLong = "a".repeat(8193);
    expect(findToken(request({ authorization: `Bearer ${ok}` }))).toEqual({ token: ok, source: "header" });
    expect(findToken(request({ authorization: `Bearer ${tooLong}` }))).toHaveProperty("invalid");
    expect(findToken(request({ query: `?token=${ok}` }))).toEqual({ token: ok, source: "query" });
    expect(findToken(request({ query: `?token=${tooLong}` }))).toHaveProperty("invalid");
    expect(findToken(request({ cookie: `relay_token=${ok}` }))).toEqual({ token: ok, source: "cookie" });
    expect(findToken(request({ cookie: `relay_token=${tooLong}` }))).toHaveProperty("invalid");
    expect(findToken(request({ query: `?token=${"a".repeat(200_000)}` }))).toHaveProperty("invalid");
  });
});

describe("findToken: cookies", () => {
  it("finds the cookie among others, with or without spaces", () => {
    for (const cookie of ["a=1; relay_token=c.c.c; b=2", "a=1;relay_token=c.c.c;b=2", "relay_token=c.c.c", " relay_token = c.c.c ", "a=1; relay_token=c.c.c"]) {
      expect(findToken(request({ cookie })), cookie).toEqual({ token: "c.c.c", source: "cookie" });
    }
  });

  it("takes the first of repeated cookies", () => {
    expect(findToken(request({ cookie: "relay_token=first; relay_token=second" }))).toEqual({ token: "first", source: "cookie" });
  });

  it("keeps '=' inside the value", () => {
    expect(findToken(request({ cookie: "relay_token=a.b.c==" }))).toEqual({ token: "a.b.c==", source: "cookie" });
  });

  it("does not confuse cookies whose names merely contain relay_token", () => {
    for (const cookie of ["xrelay_token=c.c.c", "relay_token_old=c.c.c", "relay_tokenx=c.c.c", "=relay_token", "relay_token", "Relay_Token=c.c.c"]) {
      expect(findToken(request({ cookie })), cookie).toBeUndefined();
    }
  });

  it("an empty cookie value is invalid", () => {
    expect(findToken(request({ cookie: "relay_token=" }))).toHaveProperty("invalid");
    expect(findToken(request({ cookie: "a=1; relay_token=; b=2" }))).toHaveProperty("invalid");
  });
});
