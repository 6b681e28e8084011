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
  | "MAX_BATCH_MESSAGES";
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
  };
}

function positiveInt(vars: Vars, name: SettingName, fallback: number): number {
  const raw = vars[name];
  if (raw === undefined || raw === "") return fallback;
  // Only numbers and plain digit strings: `true`, "1e3" or "0x10" are typos, not settings.
  const value = typeof raw === "number" ? raw : typeof raw === "string" && /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`Setting ${name} must be a positive whole number, got ${JSON.stringify(raw)}`);
  return value;
}

function flag(vars: Vars, name: SettingName, fallback: boolean): boolean {
  const raw = vars[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw === true || raw === "true") return true;
  if (raw === false || raw === "false") return false;
  throw new Error(`Setting ${name} must be "true" or "false", got ${JSON.stringify(raw)}`);
}
