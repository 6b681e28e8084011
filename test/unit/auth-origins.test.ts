import { describe, expect, it } from "vitest";
import type { Identity } from "../../src/auth/identity";
import { checkWebSocketOrigin, isAllowedOrigin } from "../../src/auth/origins";
import { DEFAULTS, type RelayConfig } from "../../src/config";
import { RelayError } from "../../src/protocol/errors";

const RELAY = "https://relay.example";
const APP = "https://app.example";
const EVIL = "https://evil.example";

const config = (corsOrigins: string[]): RelayConfig => ({ ...DEFAULTS, corsOrigins });
const anonymous: Identity = { kind: "anonymous" };
const tokenFrom = (source: "header" | "query" | "cookie"): Identity => ({
  kind: "token",
  source,
  claims: { subject: "alice", publish: [], subscribe: ["*"], expiresAt: 1_900_000_000 },
});

function upgrade(origin?: string): Request {
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (origin !== undefined) headers.Origin = origin;
  return new Request(`${RELAY}/v1/channels/news/ws`, { headers });
}

/** "ok", or the error's status and code. */
function outcome(request: Request, cfg: RelayConfig, identity: Identity): string {
  try {
    checkWebSocketOrigin(request, cfg, identity);
    return "ok";
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    return `${error.status} ${error.code}`;
  }
}

describe("checkWebSocketOrigin with listed origins", () => {
  const listed = config([APP]);

  it("lets in clients without Origin (non-browsers), the relay's own pages and listed origins", () => {
    for (const identity of [anonymous, tokenFrom("header"), tokenFrom("query"), tokenFrom("cookie")]) {
      expect(outcome(upgrade(), listed, identity)).toBe("ok");
      expect(outcome(upgrade(RELAY), listed, identity)).toBe("ok");
      expect(outcome(upgrade(APP), listed, identity)).toBe("ok");
    }
  });

  it("refuses a foreign origin with 403, whatever the token", () => {
    for (const identity of [anonymous, tokenFrom("header"), tokenFrom("query"), tokenFrom("cookie"), { kind: "invalid", reason: "x" } as Identity]) {
      expect(outcome(upgrade(EVIL), listed, identity)).toBe("403 forbidden");
    }
  });

  it("compares origins exactly: scheme, host, port and case matter; no prefix or suffix tricks", () => {
    const near = [
      "http://app.example",
      "https://app.example:8443",
      "https://APP.example",
      "https://app.example.evil.example",
      "https://evil-app.example",
      "https://app.examplex",
      "https://sub.app.example",
      "null",
      "",
      "https://app.example/",
      "https://relay.example:444",
      "http://relay.example",
    ];
    for (const origin of near) expect(outcome(upgrade(origin), listed, anonymous), JSON.stringify(origin)).toBe("403 forbidden");
  });

  it("the error message names the setting", () => {
    expect(() => checkWebSocketOrigin(upgrade(EVIL), listed, anonymous)).toThrow(/CORS_ORIGINS/);
  });
});

describe("checkWebSocketOrigin with CORS_ORIGINS=*", () => {
  const any = config(["*"]);

  it("lets any origin in with no token or a header or query token", () => {
    for (const identity of [anonymous, tokenFrom("header"), tokenFrom("query")]) expect(outcome(upgrade(EVIL), any, identity)).toBe("ok");
  });

  it("refuses a foreign page riding on the cookie (cross-site WebSocket hijacking)", () => {
    expect(outcome(upgrade(EVIL), any, tokenFrom("cookie"))).toBe("403 forbidden");
    expect(outcome(upgrade("null"), any, tokenFrom("cookie"))).toBe("403 forbidden");
  });

  it("a cookie from the relay's own pages or a non-browser client is fine", () => {
    expect(outcome(upgrade(RELAY), any, tokenFrom("cookie"))).toBe("ok");
    expect(outcome(upgrade(), any, tokenFrom("cookie"))).toBe("ok");
  });

  it("an origin listed next to * may use the cookie", () => {
    expect(outcome(upgrade(APP), config(["*", APP]), tokenFrom("cookie"))).toBe("ok");
    expect(outcome(upgrade(EVIL), config(["*", APP]), tokenFrom("cookie"))).toBe("403 forbidden");
  });
});

describe("isAllowedOrigin", () => {
  it("is an exact list, or anything with *", () => {
    expect(isAllowedOrigin(config([APP]), APP)).toBe(true);
    expect(isAllowedOrigin(config([APP]), EVIL)).toBe(false);
    expect(isAllowedOrigin(config([APP, EVIL]), EVIL)).toBe(true);
    expect(isAllowedOrigin(config(["*"]), EVIL)).toBe(true);
    expect(isAllowedOrigin(config([APP]), `${APP}.evil.example`)).toBe(false);
  });
});
