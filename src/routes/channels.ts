import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { authorize } from "../auth/policy";
import { RelayError } from "../errors";
import { encodeData } from "../protocol/envelope";
import { DEFAULT_EVENT } from "../protocol/names";
import { connectRequest } from "../room/connect-request";
import { sseResponse } from "../sse/sse-response";
import { channelParam, countQuery, cursor, eventQuery, idempotencyKeyHeader, ifMatchHeader, invalidChannel, readBody, resumeCursor } from "./params";
import { resource } from "./resource";

const HISTORY_DEFAULT_LIMIT = 100;
const HISTORY_MAX_LIMIT = 1000;

function roomOf(env: Env, channel: string) {
  return env.ROOMS.get(env.ROOMS.idFromName(channel));
}

/** `/v1/channels/{channel}/…`: validate, authorize, hand over to the channel's room. */
export const channels = new Hono<AppEnv>();

resource(channels, "/:channel/messages", {
  POST: async (c) => {
    const config = c.get("config");
    const channel = channelParam(c);
    authorize(config, channel, "publish");
    const event = eventQuery(c) ?? DEFAULT_EVENT;
    const idempotencyKey = idempotencyKeyHeader(c);
    const ifMatch = ifMatchHeader(c);
    const body = await readBody(c.req.raw, config.maxMessageBytes);

    const result = await roomOf(c.env, channel).publish(channel, { ...encodeData(body), event, idempotencyKey, ifMatch });
    if (result.status === "conflict") {
      throw new RelayError("precondition_failed", `The channel's last id is ${result.lastId}, not the one in If-Match.`, {
        details: { lastId: result.lastId },
      });
    }
    const { id, ts } = result.message;
    return c.json({ id, channel, event: result.message.event, ts }, 201);
  },

  GET: async (c) => {
    const channel = channelParam(c);
    authorize(c.get("config"), channel, "subscribe");
    const since = cursor("since", c.req.query("since")) ?? 0;
    const limit = countQuery(c, "limit", HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT);
    return c.json(await roomOf(c.env, channel).history(channel, since, limit));
  },
});

resource(channels, "/:channel/events", {
  GET: async (c) => {
    const config = c.get("config");
    const channel = channelParam(c);
    authorize(config, channel, "subscribe");
    const since = resumeCursor(c);
    const response = await roomOf(c.env, channel).fetch(connectRequest({ channel, kind: "sse", since, canPublish: false }));
    if (!response.webSocket) throw new Error(`room refused an SSE subscriber: ${response.status}`);
    return sseResponse(response.webSocket, { keepaliveSeconds: config.keepaliveSeconds, bufferBytes: config.sseBufferBytes });
  },
});

resource(channels, "/:channel/ws", {
  GET: async (c) => {
    const channel = channelParam(c);
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      throw new RelayError("upgrade_required", "This endpoint speaks WebSocket: connect with a WebSocket client (Upgrade: websocket).");
    }
    const { canPublish } = authorize(c.get("config"), channel, "subscribe");
    const since = cursor("since", c.req.query("since"));
    // The room accepts the socket itself (hibernation); the Worker only passes the 101 through.
    return roomOf(c.env, channel).fetch(connectRequest({ channel, kind: "ws", since, canPublish }));
  },
});

resource(channels, "/:channel", {
  GET: async (c) => {
    const channel = channelParam(c);
    authorize(c.get("config"), channel, "subscribe");
    return c.json(await roomOf(c.env, channel).info(channel));
  },
});

// A channel name holding a slash ("a/b") or nothing at all splits the path differently;
// name the real problem instead of answering 404.
const CHANNEL_RESOURCE = /^\/v1\/channels\/(.*\/)?(messages|events|ws|poll)$/;
channels.all("/*", (c, next) => {
  if (CHANNEL_RESOURCE.test(new URL(c.req.url).pathname)) throw invalidChannel();
  return next();
});
