import { type HotChannelRule, parseHotChannels } from "./fanout/settings";

/** The relay's settings, read from Worker vars (API.md "Retention" and README "Settings"). */
export interface RelayConfig {
  maxMessageBytes: number;
  historyLimit: number;
  historyTtlSeconds: number;
  keepaliveSeconds: number;
  /** Bytes an SSE subscriber may fall behind before it is dropped (it can resume). */
  sseBufferBytes: number;
  allowAnonymous: boolean;
  /** Channels one multi-channel WebSocket or SSE stream may subscribe to. */
  maxChannelsPerConnection: number;
  /** Long-poll requests that may wait on one channel at once. */
  maxPollersPerChannel: number;
  /** Messages in one batch publish. */
  maxBatchMessages: number;
  /** HS256 secrets tokens may be signed with: the current one, then the previous during a rotation. */
  jwtSecrets: string[];
  /** JSON Web Key Set URLs of identity providers whose RS256 / ES256 / EdDSA tokens are taken. */
  jwksUrls: string[];
  /** When set, a provider token's `iss` must be this… */
  jwtIssuer: string;
  /** …and its `aud` must name this. */
  jwtAudience: string;
  /** The token claim that holds the relay rights. */
  relayClaim: string;
  /** Where webhooks go (with `webhookSecret`); empty for none. */
  webhookUrl: string;
  /** The HMAC secret webhooks are signed with (the secret WEBHOOK_SECRET). */
  webhookSecret: string;
  /** Channel patterns anyone may subscribe to without a token. */
  publicChannels: string[];
  /** Origins allowed to read HTTP responses and open WebSockets; `["*"]` for any. */
  corsOrigins: string[];
  /** Live subscribers one channel holds at most (WebSocket, SSE and long-poll together), over all its shards. */
  maxSubscribersPerChannel: number;
  /** Live subscribers one object holds at most: a shard of a hot channel, or the room of any other. */
  maxSubscribersPerShard: number;
  /** Channels served through a fan-out tree of shards, by pattern (HOT_CHANNELS). */
  hotChannels: HotChannelRule[];
  /** A channel not in HOT_CHANNELS fans out by itself once its room holds this many subscribers; 0 never. */
  fanoutAfter: number;
  /** Largest WebSocket frame a client may send, in bytes. */
  maxFrameBytes: number;
  /** Publishes per second one WebSocket may sustain, and the burst it may send at once. */
  wsPublishRate: number;
  wsPublishBurst: number;
  /** Open WebSocket and SSE connections one client address may hold; 0 turns the limit off. */
  maxConnectionsPerIp: number;
  /** Longest a message waits to share a batch frame with the next ones, in ms; 0 waits only for the room's next turn. */
  batchMaxDelayMs: number;
  /** Largest batch frame, in UTF-8 bytes. */
  batchMaxBytes: number;
  /** A WebSocket client that has pinged is closed after this long without another ping, in seconds. */
  pingTimeoutSeconds: number;
}

export const DEFAULTS: RelayConfig = {
  maxMessageBytes: 65536,
  historyLimit: 1000,
  historyTtlSeconds: 86400,
  keepaliveSeconds: 15,
  sseBufferBytes: 1 << 20,
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

type SettingName =
  | "MAX_MESSAGE_BYTES"
  | "HISTORY_LIMIT"
  | "HISTORY_TTL_SECONDS"
  | "KEEPALIVE_SECONDS"
  | "SSE_BUFFER_BYTES"
  | "ALLOW_ANONYMOUS"
  | "MAX_CHANNELS_PER_CONNECTION"
  | "MAX_POLLERS_PER_CHANNEL"
  | "MAX_BATCH_MESSAGES"
  | "RELAY_JWT_SECRET"
  | "RELAY_JWT_SECRET_PREVIOUS"
  | "RELAY_JWKS_URL"
  | "RELAY_JWT_ISSUER"
  | "RELAY_JWT_AUDIENCE"
  | "RELAY_CLAIM"
  | "WEBHOOK_URL"
  | "WEBHOOK_SECRET"
  | "PUBLIC_CHANNELS"
  | "CORS_ORIGINS"
  | "MAX_SUBSCRIBERS_PER_CHANNEL"
  | "MAX_SUBSCRIBERS_PER_SHARD"
  | "HOT_CHANNELS"
  | "FANOUT_AFTER"
  | "MAX_FRAME_BYTES"
  | "WS_PUBLISH_RATE"
  | "WS_PUBLISH_BURST"
  | "MAX_CONNECTIONS_PER_IP"
  | "BATCH_MAX_DELAY_MS"
  | "BATCH_MAX_BYTES"
  | "PING_TIMEOUT_SECONDS";
type Vars = { readonly [name in SettingName]?: unknown };

/**
 * Reads the settings, with API.md's defaults for unset ones. A malformed value is an operator
 * error that must not pass silently, so it throws (and every request answers 500 until fixed).
 */
export function readConfig(vars: Vars): RelayConfig {
  return {
    maxMessageBytes: positiveInt(vars, "MAX_MESSAGE_BYTES", DEFAULTS.maxMessageBytes),
    historyLimit: positiveInt(vars, "HISTORY_LIMIT", DEFAULTS.historyLimit),
    historyTtlSeconds: positiveInt(vars, "HISTORY_TTL_SECONDS", DEFAULTS.historyTtlSeconds),
    keepaliveSeconds: positiveInt(vars, "KEEPALIVE_SECONDS", DEFAULTS.keepaliveSeconds),
    sseBufferBytes: positiveInt(vars, "SSE_BUFFER_BYTES", DEFAULTS.sseBufferBytes),
    allowAnonymous: flag(vars, "ALLOW_ANONYMOUS", DEFAULTS.allowAnonymous),
    maxChannelsPerConnection: positiveInt(vars, "MAX_CHANNELS_PER_CONNECTION", DEFAULTS.maxChannelsPerConnection),
    maxPollersPerChannel: positiveInt(vars, "MAX_POLLERS_PER_CHANNEL", DEFAULTS.maxPollersPerChannel),
    maxBatchMessages: positiveInt(vars, "MAX_BATCH_MESSAGES", DEFAULTS.maxBatchMessages),
    jwtSecrets: [text(vars, "RELAY_JWT_SECRET"), text(vars, "RELAY_JWT_SECRET_PREVIOUS")].filter((secret) => secret !== ""),
    jwksUrls: list(vars, "RELAY_JWKS_URL", DEFAULTS.jwksUrls),
    jwtIssuer: text(vars, "RELAY_JWT_ISSUER").trim(),
    jwtAudience: text(vars, "RELAY_JWT_AUDIENCE").trim(),
    relayClaim: text(vars, "RELAY_CLAIM").trim() || DEFAULTS.relayClaim,
    ...webhookSettings(vars),
    publicChannels: list(vars, "PUBLIC_CHANNELS", DEFAULTS.publicChannels),
    corsOrigins: list(vars, "CORS_ORIGINS", DEFAULTS.corsOrigins),
    maxSubscribersPerChannel: positiveInt(vars, "MAX_SUBSCRIBERS_PER_CHANNEL", DEFAULTS.maxSubscribersPerChannel),
    maxSubscribersPerShard: positiveInt(vars, "MAX_SUBSCRIBERS_PER_SHARD", DEFAULTS.maxSubscribersPerShard),
    hotChannels: parseHotChannels(text(vars, "HOT_CHANNELS")),
    fanoutAfter: wholeNumber(vars, "FANOUT_AFTER", DEFAULTS.fanoutAfter),
    maxFrameBytes: positiveInt(vars, "MAX_FRAME_BYTES", DEFAULTS.maxFrameBytes),
    wsPublishRate: positiveInt(vars, "WS_PUBLISH_RATE", DEFAULTS.wsPublishRate),
    wsPublishBurst: positiveInt(vars, "WS_PUBLISH_BURST", DEFAULTS.wsPublishBurst),
    maxConnectionsPerIp: wholeNumber(vars, "MAX_CONNECTIONS_PER_IP", DEFAULTS.maxConnectionsPerIp),
    batchMaxDelayMs: wholeNumber(vars, "BATCH_MAX_DELAY_MS", DEFAULTS.batchMaxDelayMs),
    batchMaxBytes: positiveInt(vars, "BATCH_MAX_BYTES", DEFAULTS.batchMaxBytes),
    pingTimeoutSeconds: positiveInt(vars, "PING_TIMEOUT_SECONDS", DEFAULTS.pingTimeoutSeconds),
  };
}

/** WEBHOOK_URL turns webhooks on and must be an http(s) URL; unsigned webhooks are not sent. */
function webhookSettings(vars: Vars): Pick<RelayConfig, "webhookUrl" | "webhookSecret"> {
  const webhookUrl = text(vars, "WEBHOOK_URL").trim();
  const webhookSecret = text(vars, "WEBHOOK_SECRET");
  if (webhookUrl === "") return { webhookUrl, webhookSecret };
  if (!isHttpUrl(webhookUrl)) throw new Error(`Setting WEBHOOK_URL must be an http(s) URL, got ${JSON.stringify(webhookUrl)}`);
  if (webhookSecret === "")
    throw new Error("Setting WEBHOOK_URL needs the secret WEBHOOK_SECRET (wrangler secret put WEBHOOK_SECRET): webhooks are always signed");
  return { webhookUrl, webhookSecret };
}

function isHttpUrl(value: string): boolean {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

function positiveInt(vars: Vars, name: SettingName, fallback: number): number {
  return wholeNumber(vars, name, fallback, 1);
}

function wholeNumber(vars: Vars, name: SettingName, fallback: number, min = 0): number {
  const raw = vars[name];
  if (raw === undefined || raw === "") return fallback;
  // Only numbers and plain digit strings: `true`, "1e3" or "0x10" are typos, not settings.
  const value = typeof raw === "number" ? raw : typeof raw === "string" && /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`Setting ${name} must be ${min === 1 ? "a positive whole number" : "a whole number from 0 up"}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function flag(vars: Vars, name: SettingName, fallback: boolean): boolean {
  const raw = vars[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw === true || raw === "true") return true;
  if (raw === false || raw === "false") return false;
  throw new Error(`Setting ${name} must be "true" or "false", got ${JSON.stringify(raw)}`);
}

function text(vars: Vars, name: SettingName): string {
  const raw = vars[name];
  if (raw === undefined) return "";
  if (typeof raw !== "string") throw new Error(`Setting ${name} must be a string`);
  return raw;
}

/** A comma-separated setting; unset or blank keeps the default. */
function list(vars: Vars, name: SettingName, fallback: string[]): string[] {
  const items = text(vars, name)
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  return items.length > 0 ? items : fallback;
}

/** Where and how webhooks are sent, when WEBHOOK_URL is set. */
export function webhookTarget(config: RelayConfig): { url: string; secret: string } | undefined {
  return config.webhookUrl === "" ? undefined : { url: config.webhookUrl, secret: config.webhookSecret };
}
