import { describe, expect, it } from "vitest";
import type { Identity } from "../../src/auth/identity";
import { checkWriteOrigin } from "../../src/auth/origins";
import { authorizeSomePublishing } from "../../src/auth/policy";
import { DEFAULTS, type RelayConfig } from "../../src/config";
import { RelayError } from "../../src/protocol/errors";

const RELAY = "https://relay.example";
const APP = "https://app.example";
const EVIL = "https://evil.example";

const tokenFrom = (source: "header" | "query" | "cookie", publish: string[] = ["news"]): Identity => ({
  kind: "token",
  source,
  claims: { subject: "alice", publish, subscribe: ["*"], expiresAt: 1_900_000_000 },
});

/** "ok", or the error's status and code. */
function outcome(check: () => void): string {
  try {
    check();
    return "ok";
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    return `${error.status} ${error.code}`;
  }
}

function post(origin?: string): Request {
  return new Request(`${RELAY}/v1/channels/news/messages`, { method: "POST", headers: origin === undefined ? {} : { Origin: origin } });
}

describe("checkWriteOrigin: cookie-authenticated writes follow the WebSocket origin rule", () => {
  const write = (corsOrigins: string[], identity: Identity, origin?: string) =>
    outcome(() => checkWriteOrigin(post(origin), { ...DEFAULTS, corsOrigins }, identity));

  it("with a list: the cookie writes from listed origins, the relay's own and no Origin; any other is 403", () => {
    const cookie = tokenFrom("cookie");
    for (const origin of [APP, RELAY, undefined]) expect(write([APP], cookie, origin), String(origin)).toBe("ok");
    for (const origin of [EVIL, "null", `${APP}.evil.example`, "http://app.example"]) expect(write([APP], cookie, origin), origin).toBe("403 forbidden");
  });

  it('under CORS_ORIGINS="*" the cookie authorizes no write from another origin; the relay\'s own pages and non-browsers still write', () => {
    const cookie = tokenFrom("cookie");
    expect(write(["*"], cookie, EVIL)).toBe("403 forbidden");
    expect(write(["*"], cookie, APP)).toBe("403 forbidden");
    expect(write(["*"], cookie, RELAY)).toBe("ok");
    expect(write(["*"], cookie)).toBe("ok");
  });

  it("a token in the header or the query, or none, is not the check's business: a page holding the token can use it anyway", () => {
    for (const identity of [tokenFrom("header"), tokenFrom("query"), { kind: "anonymous" } as Identity]) {
      expect(write([APP], identity, EVIL)).toBe("ok");
      expect(write(["*"], identity, EVIL)).toBe("ok");
    }
  });
});

describe("authorizeSomePublishing: refuses, before a body is read, who may publish nowhere", () => {
  const withSecret: RelayConfig = { ...DEFAULTS, jwtSecrets: ["s"], publicChannels: ["public.*"] };
  const check = (config: RelayConfig, identity: Identity) => outcome(() => authorizeSomePublishing(config, identity));

  it("with a secret: no token or a bad one is 401, a token with an empty publish list 403, any publish pattern passes", () => {
    expect(check(withSecret, { kind: "anonymous" })).toBe("401 unauthorized");
    expect(check(withSecret, { kind: "invalid", reason: "The token has expired." })).toBe("401 unauthorized");
    expect(check(withSecret, tokenFrom("header", []))).toBe("403 forbidden");
    expect(check(withSecret, tokenFrom("header", ["other-*"]))).toBe("ok");
  });

  it("without a secret: ALLOW_ANONYMOUS decides, as for every publish", () => {
    expect(check({ ...DEFAULTS, allowAnonymous: false }, { kind: "anonymous" })).toBe("401 unauthorized");
    expect(check({ ...DEFAULTS, allowAnonymous: true }, { kind: "anonymous" })).toBe("ok");
  });
});
