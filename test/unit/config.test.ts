import { describe, expect, it } from "vitest";
import { DEFAULTS, readConfig } from "../../src/config";

const NUMERIC = [
  "MAX_MESSAGE_BYTES",
  "HISTORY_LIMIT",
  "HISTORY_TTL_SECONDS",
  "KEEPALIVE_SECONDS",
  "SSE_BUFFER_BYTES",
  "MAX_CHANNELS_PER_CONNECTION",
  "MAX_POLLERS_PER_CHANNEL",
  "MAX_BATCH_MESSAGES",
  "MAX_SUBSCRIBERS_PER_CHANNEL",
  "MAX_SUBSCRIBERS_PER_SHARD",
  "MAX_FRAME_BYTES",
  "WS_PUBLISH_RATE",
  "WS_PUBLISH_BURST",
  "BATCH_MAX_BYTES",
  "PING_TIMEOUT_SECONDS",
] as const;

describe("readConfig", () => {
  it("uses API.md's defaults when nothing is set", () => {
    const expected = {
      maxMessageBytes: 65536,
      historyLimit: 1000,
      historyTtlSeconds: 86400,
      keepaliveSeconds: 15,
      sseBufferBytes: 1048576,
      allowAnonymous: false,
      maxChannelsPerConnection: 100,
      maxPollersPerChannel: 1000,
      maxBatchMessages: 100,
      jwtSecrets: [],
      jwksUrls: [],
      jwtIssuer: "",
      jwtAudience: "",
      relayClaim: "relay",
      webhookUrl: "",
      webhookSecret: "",
      publicChannels: [],
      corsOrigins: ["*"],
      maxSubscribersPerChannel: 1_000_000,
      maxSubscribersPerShard: 10000,
      hotChannels: [],
      fanoutAfter: 5000,
      maxFrameBytes: 262144,
      wsPublishRate: 50,
      wsPublishBurst: 100,
      maxConnectionsPerIp: 1000,
      batchMaxDelayMs: 5,
      batchMaxBytes: 65536,
      pingTimeoutSeconds: 60,
    };
    expect(readConfig({})).toEqual(expected);
    expect(DEFAULTS).toEqual(expected);
  });

  it("treats an empty string as unset", () => {
    expect(readConfig({ MAX_MESSAGE_BYTES: "", ALLOW_ANONYMOUS: "" })).toEqual(DEFAULTS);
  });

  it("reads every setting from strings, as Worker vars arrive", () => {
    expect(
      readConfig({
        MAX_MESSAGE_BYTES: "1024",
        HISTORY_LIMIT: "50",
        HISTORY_TTL_SECONDS: "60",
        KEEPALIVE_SECONDS: "1",
        SSE_BUFFER_BYTES: "4096",
        ALLOW_ANONYMOUS: "true",
        MAX_CHANNELS_PER_CONNECTION: "3",
        MAX_POLLERS_PER_CHANNEL: "7",
        MAX_BATCH_MESSAGES: "9",
        RELAY_JWT_SECRET: "new",
        RELAY_JWT_SECRET_PREVIOUS: "old",
        RELAY_JWKS_URL: "https://a.example/jwks.json, https://b.example/keys",
        RELAY_JWT_ISSUER: "https://a.example/",
        RELAY_JWT_AUDIENCE: "edge-relay",
        RELAY_CLAIM: "https://app.example/relay",
        WEBHOOK_URL: "https://app.example/hooks/relay",
        WEBHOOK_SECRET: "whsec",
        PUBLIC_CHANNELS: " status.* , lobby ,",
        CORS_ORIGINS: "https://a.example,https://b.example",
        MAX_SUBSCRIBERS_PER_CHANNEL: "11",
        MAX_SUBSCRIBERS_PER_SHARD: "3",
        HOT_CHANNELS: "scores.*:32, news:8",
        FANOUT_AFTER: "0",
        MAX_FRAME_BYTES: "2048",
        WS_PUBLISH_RATE: "2",
        WS_PUBLISH_BURST: "4",
        MAX_CONNECTIONS_PER_IP: "0",
        BATCH_MAX_DELAY_MS: "20",
        BATCH_MAX_BYTES: "8192",
        PING_TIMEOUT_SECONDS: "5",
      }),
    ).toEqual({
      maxMessageBytes: 1024,
      historyLimit: 50,
      historyTtlSeconds: 60,
      keepaliveSeconds: 1,
      sseBufferBytes: 4096,
      allowAnonymous: true,
      maxChannelsPerConnection: 3,
      maxPollersPerChannel: 7,
      maxBatchMessages: 9,
      jwtSecrets: ["new", "old"],
      jwksUrls: ["https://a.example/jwks.json", "https://b.example/keys"],
      jwtIssuer: "https://a.example/",
      jwtAudience: "edge-relay",
      relayClaim: "https://app.example/relay",
      webhookUrl: "https://app.example/hooks/relay",
      webhookSecret: "whsec",
      publicChannels: ["status.*", "lobby"],
      corsOrigins: ["https://a.example", "https://b.example"],
      maxSubscribersPerChannel: 11,
      maxSubscribersPerShard: 3,
      hotChannels: [
        { pattern: "scores.*", shards: 32 },
        { pattern: "news", shards: 8 },
      ],
      fanoutAfter: 0,
      maxFrameBytes: 2048,
      wsPublishRate: 2,
      wsPublishBurst: 4,
      maxConnectionsPerIp: 0,
      batchMaxDelayMs: 20,
      batchMaxBytes: 8192,
      pingTimeoutSeconds: 5,
    });
  });

  it("reads numbers and booleans, as wrangler.toml can give them", () => {
    expect(readConfig({ HISTORY_LIMIT: 10, ALLOW_ANONYMOUS: true })).toMatchObject({ historyLimit: 10, allowAnonymous: true });
    expect(readConfig({ ALLOW_ANONYMOUS: false }).allowAnonymous).toBe(false);
    expect(readConfig({ ALLOW_ANONYMOUS: "false" }).allowAnonymous).toBe(false);
  });

  it("changes only the setting that is given", () => {
    expect(readConfig({ KEEPALIVE_SECONDS: "5" })).toEqual({ ...DEFAULTS, keepaliveSeconds: 5 });
  });

  describe.each(NUMERIC)("a malformed %s", (name) => {
    it.each<unknown>(["0", "-1", "1.5", "abc", "10 items", " ", "1e3", "0x10", " 42 ", "Infinity", "NaN", "9007199254740992", 0, -5, 2.5, Number.NaN, null])(
      "%j throws naming the setting",
      (value) => {
        expect(() => readConfig({ [name]: value })).toThrow(name);
      },
    );
  });

  // Number(true) is 1 and Number([64]) is 64: a boolean or a list in wrangler.toml must not slip through as a size.
  it.each<[string, unknown]>([
    ["true", true],
    ["false", false],
    ["a list", [64]],
    ["an object", { value: 64 }],
  ])("refuses %s for a numeric setting", (_, value) => {
    expect(() => readConfig({ MAX_MESSAGE_BYTES: value })).toThrow("MAX_MESSAGE_BYTES");
  });

  it.each<unknown>(["yes", "1", "0", "TRUE", "True", "on", 1, 0, null])("throws naming ALLOW_ANONYMOUS for %j", (value) => {
    expect(() => readConfig({ ALLOW_ANONYMOUS: value })).toThrow("ALLOW_ANONYMOUS");
  });

  it("shows the bad value in the message", () => {
    expect(() => readConfig({ HISTORY_LIMIT: "lots" })).toThrow('Setting HISTORY_LIMIT must be a positive whole number, got "lots"');
  });

  it("lets MAX_CONNECTIONS_PER_IP be 0 (off) but nothing negative or fractional", () => {
    expect(readConfig({ MAX_CONNECTIONS_PER_IP: "0" }).maxConnectionsPerIp).toBe(0);
    for (const value of ["-1", "1.5", "many"]) expect(() => readConfig({ MAX_CONNECTIONS_PER_IP: value })).toThrow("MAX_CONNECTIONS_PER_IP");
  });

  it("lets BATCH_MAX_DELAY_MS be 0 (wait only for the room's next turn) but nothing negative or fractional", () => {
    expect(readConfig({ BATCH_MAX_DELAY_MS: "0" }).batchMaxDelayMs).toBe(0);
    for (const value of ["-1", "2.5", "soon"]) expect(() => readConfig({ BATCH_MAX_DELAY_MS: value })).toThrow("BATCH_MAX_DELAY_MS");
  });

  it("names HOT_CHANNELS when an entry is not a pattern:shards pair", () => {
    expect(() => readConfig({ HOT_CHANNELS: "news" })).toThrow("HOT_CHANNELS");
    expect(() => readConfig({ FANOUT_AFTER: "-1" })).toThrow("FANOUT_AFTER");
  });

  it("keeps only the secrets that are set", () => {
    expect(readConfig({ RELAY_JWT_SECRET: "s" }).jwtSecrets).toEqual(["s"]);
    expect(readConfig({ RELAY_JWT_SECRET_PREVIOUS: "old" }).jwtSecrets).toEqual(["old"]);
  });
});

describe("readConfig: webhooks", () => {
  it("turns them on only with an http(s) URL and a secret, and says what is missing", () => {
    expect(readConfig({ WEBHOOK_SECRET: "whsec" }).webhookUrl).toBe("");
    expect(() => readConfig({ WEBHOOK_URL: "https://app.example/hooks" })).toThrow(/WEBHOOK_SECRET/);
    expect(() => readConfig({ WEBHOOK_URL: "ftp://app.example/hooks", WEBHOOK_SECRET: "s" })).toThrow(/WEBHOOK_URL must be an http\(s\) URL/);
    expect(() => readConfig({ WEBHOOK_URL: "not a url", WEBHOOK_SECRET: "s" })).toThrow(/WEBHOOK_URL/);
  });
});
