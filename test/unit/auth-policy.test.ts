import { describe, expect, it } from "vitest";
import type { Identity } from "../../src/auth/identity";
import { type Action, authorize } from "../../src/auth/policy";
import { DEFAULTS, type RelayConfig } from "../../src/config";
import { RelayError } from "../../src/protocol/errors";

const EXP = 1_900_000_000;

function config(overrides: Partial<RelayConfig> = {}): RelayConfig {
  return { ...DEFAULTS, ...overrides };
}

const withSecret = (overrides: Partial<RelayConfig> = {}) => config({ jwtSecrets: ["s3cret"], publicChannels: ["public.*", "lobby"], ...overrides });

const anonymous: Identity = { kind: "anonymous" };
const invalid: Identity = { kind: "invalid", reason: "The token has expired." };
function token(publish: string[], subscribe: string[], ...rest: [subject?: string]): Identity {
  const subject = rest.length > 0 ? rest[0] : "alice";
  return { kind: "token", source: "header", claims: { subject, publish, subscribe, expiresAt: EXP } };
}

/** The outcome of authorize as a short string: "ok", or the error's status and code. */
function outcome(cfg: RelayConfig, identity: Identity, channel: string, action: Action): string {
  try {
    authorize(cfg, identity, channel, action);
    return "ok";
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    return `${error.status} ${error.code}`;
  }
}

describe("authorize without a secret", () => {
  it("ALLOW_ANONYMOUS off: subscribing is open, publishing is 401 with a message on how to configure auth", () => {
    const cfg = config({ allowAnonymous: false });
    expect(outcome(cfg, anonymous, "news", "subscribe")).toBe("ok");
    expect(authorize(cfg, anonymous, "news", "subscribe")).toEqual({ canPublish: false, publishRefusal: "unauthorized" });
    expect(outcome(cfg, anonymous, "news", "publish")).toBe("401 unauthorized");
    try {
      authorize(cfg, anonymous, "news", "publish");
    } catch (error) {
      expect((error as RelayError).message).toMatch(/RELAY_JWT_SECRET/);
      expect((error as RelayError).message).toMatch(/ALLOW_ANONYMOUS/);
    }
  });

  it("ALLOW_ANONYMOUS on: everyone may publish and subscribe", () => {
    const cfg = config({ allowAnonymous: true });
    expect(authorize(cfg, anonymous, "news", "publish")).toEqual({ canPublish: true });
    expect(authorize(cfg, anonymous, "news", "subscribe")).toEqual({ canPublish: true });
  });

  it("an invalid identity is 401 whatever ALLOW_ANONYMOUS says", () => {
    for (const allowAnonymous of [true, false]) {
      for (const action of ["publish", "subscribe"] as const) {
        expect(outcome(config({ allowAnonymous }), invalid, "news", action)).toBe("401 unauthorized");
      }
    }
  });
});

describe("authorize with a secret", () => {
  it("ALLOW_ANONYMOUS has no effect: anonymous publishing and private subscribing are 401", () => {
    for (const allowAnonymous of [true, false]) {
      const cfg = withSecret({ allowAnonymous });
      expect(outcome(cfg, anonymous, "news", "publish"), `allowAnonymous=${allowAnonymous}`).toBe("401 unauthorized");
      expect(outcome(cfg, anonymous, "news", "subscribe"), `allowAnonymous=${allowAnonymous}`).toBe("401 unauthorized");
      expect(outcome(cfg, anonymous, "public.news", "publish"), `allowAnonymous=${allowAnonymous}`).toBe("401 unauthorized");
    }
  });

  it("anonymous clients may subscribe to public channels only, and may not publish there", () => {
    const cfg = withSecret();
    expect(authorize(cfg, anonymous, "public.news", "subscribe")).toEqual({ canPublish: false, publishRefusal: "unauthorized" });
    expect(authorize(cfg, anonymous, "lobby", "subscribe")).toEqual({ canPublish: false, publishRefusal: "unauthorized" });
    expect(outcome(cfg, anonymous, "lobby2", "subscribe")).toBe("401 unauthorized");
    expect(outcome(cfg, anonymous, "public", "subscribe")).toBe("401 unauthorized");
    expect(outcome(cfg, anonymous, "xpublic.news", "subscribe")).toBe("401 unauthorized");
    expect(outcome(cfg, anonymous, "lobby", "publish")).toBe("401 unauthorized");
  });

  it("an invalid identity is 401 everywhere, public channels included", () => {
    const cfg = withSecret();
    for (const channel of ["news", "public.news", "lobby"]) {
      for (const action of ["publish", "subscribe"] as const) expect(outcome(cfg, invalid, channel, action), `${action} ${channel}`).toBe("401 unauthorized");
    }
  });

  it("a token needs a matching pattern for the action: else 403", () => {
    const cfg = withSecret();
    const id = token(["news", "chat.*"], ["sports"]);
    expect(outcome(cfg, id, "news", "publish")).toBe("ok");
    expect(outcome(cfg, id, "chat.lobby", "publish")).toBe("ok");
    expect(outcome(cfg, id, "sports", "publish")).toBe("403 forbidden");
    expect(outcome(cfg, id, "sports", "subscribe")).toBe("ok");
    // Publishing does not imply subscribing.
    expect(outcome(cfg, id, "news", "subscribe")).toBe("403 forbidden");
    expect(outcome(cfg, id, "chat", "publish")).toBe("403 forbidden");
  });

  it("a token with no grants is 403 on private channels and may still read public ones", () => {
    const cfg = withSecret();
    const id = token([], []);
    expect(outcome(cfg, id, "news", "subscribe")).toBe("403 forbidden");
    expect(outcome(cfg, id, "news", "publish")).toBe("403 forbidden");
    expect(outcome(cfg, id, "public.news", "subscribe")).toBe("ok");
    expect(outcome(cfg, id, "lobby", "subscribe")).toBe("ok");
    expect(outcome(cfg, id, "public.news", "publish")).toBe("403 forbidden");
  });

  it("the grant says whether the connection may publish, who it is and when it expires", () => {
    const cfg = withSecret();
    expect(authorize(cfg, token(["news"], ["*"]), "news", "subscribe")).toEqual({ canPublish: true, subject: "alice", expiresAt: EXP });
    expect(authorize(cfg, token([], ["*"]), "news", "subscribe")).toEqual({ canPublish: false, publishRefusal: "forbidden", subject: "alice", expiresAt: EXP });
    expect(authorize(cfg, token([], [], undefined), "lobby", "subscribe")).toEqual({
      canPublish: false,
      publishRefusal: "forbidden",
      subject: undefined,
      expiresAt: EXP,
    });
  });

  it("the 401 message names the ways to send a token, the 403 names the action", () => {
    const cfg = withSecret();
    expect(() => authorize(cfg, anonymous, "news", "subscribe")).toThrow(/Authorization: Bearer.*token=.*relay_token/);
    expect(() => authorize(cfg, token([], []), "news", "publish")).toThrow(/may not publish/);
  });

  it("patterns in a token match whole names only and never as regexes", () => {
    const cfg = withSecret({ publicChannels: [] });
    const id = token(["a.b"], ["news"]);
    expect(outcome(cfg, id, "axb", "publish")).toBe("403 forbidden");
    expect(outcome(cfg, id, "a.b", "publish")).toBe("ok");
    expect(outcome(cfg, id, "news2", "subscribe")).toBe("403 forbidden");
  });
});
