import { type Context, Hono } from "hono";
import type { AppEnv } from "../app-env";
import { grantFor } from "../auth/grant";
import { checkWebSocketOrigin } from "../auth/origins";
import { clientIdOf, type Grant } from "../auth/policy";
import { connectSubscriber } from "../fanout/placement";
import { acquireRoomLease, acquireSessionLease, releaseConnection } from "../limits/connections";
import { publisherKey } from "../limits/publish-rate";
import { batchFramesOption, cursor, HISTORY_PAGE, invalidChannel, POLL_TIMEOUT_SECONDS, REWIND } from "../protocol/validate";
import type { ConnectParams } from "../room/connect-request";
import { type BodyReader, publish } from "../room/publish";
import { roomOf } from "../room/stub";
import { longPoll } from "../subscribers/long-poll";
import { channelParam, countQuery, ifMatchHeader, readBody, requireUpgrade, resumeFrom } from "./params";
import { writePublisher } from "./publisher";
import { resource } from "./resource";

/** `/v1/channels/{channel}/…`: validate, authorize, hand over to the channel's room. */
export const channels = new Hono<AppEnv>();

resource(channels, "/:channel/messages", {
  POST: async (c) => {
    const publisher = writePublisher(c);
    const channel = channelParam(c);
    const ifMatch = ifMatchHeader(c);
    // The body is read only once the publisher is authorized and counted.
    const data: BodyReader = (maxBytes, tooLarge) => readBody(c.req.raw, maxBytes, tooLarge);
    const receipt = await publish(c.env, c.get("config"), publisher, {
      channel,
      data,
      event: c.req.query("event"),
      idempotencyKey: c.req.header("Idempotency-Key"),
      ifMatch,
    });
    return c.json(receipt, 201);
  },

  GET: async (c) => {
    const channel = channelParam(c);
    grantFor(c, channel, "subscribe");
    const since = cursor("since", c.req.query("since")) ?? 0;
    const limit = countQuery(c, "limit", HISTORY_PAGE);
    return c.json(await roomOf(c.env, channel).history(channel, since, limit));
  },
});

resource(
  channels,
  "/:channel/events",
  {
    GET: async (c) => {
      const channel = channelParam(c);
      const grant = grantFor(c, channel, "subscribe");
      const since = resumeFrom(c);
      // The room holds the stream and writes each message's bytes to it; the Worker passes it through.
      return connectToRoom(c, { channel, delivery: "stream", transport: "sse", since, ...subscriberOf(c, grant) });
    },
  },
  { subscribes: true },
);

resource(
  channels,
  "/:channel/ws",
  {
    GET: async (c) => {
      const channel = channelParam(c);
      requireUpgrade(c.req.header("Upgrade"));
      checkWebSocketOrigin(c.req.raw, c.get("config"), c.get("identity"));
      const grant = grantFor(c, channel, "subscribe");
      const since = cursor("since", c.req.query("since"));
      const batch = batchFramesOption(c.req.query("frames"));
      const ownSocket = { canPublish: grant.canPublish, publishRefusal: grant.publishRefusal, publisherKey: publisherKey(c.get("identity"), c.req.raw) };
      // The room accepts the client's socket itself (hibernation); the Worker passes the 101 through.
      return connectToRoom(c, { channel, delivery: "socket", transport: "ws", since, batch, ownSocket, ...subscriberOf(c, grant) });
    },
  },
  { subscribes: true },
);

resource(
  channels,
  "/:channel/poll",
  {
    GET: async (c) => {
      const channel = channelParam(c);
      const grant = grantFor(c, channel, "subscribe");
      const since = cursor("since", c.req.query("since"));
      const rewind = countQuery(c, "rewind", REWIND);
      const timeoutSeconds = countQuery(c, "timeout", POLL_TIMEOUT_SECONDS);
      // A waiting poll holds one of the address's connection slots until it is answered.
      const lease = await acquireSessionLease(c.env, c.get("config"), c.req.raw, (promise) => c.executionCtx.waitUntil(promise));
      try {
        return c.json(
          await longPoll(c.env, c.get("config"), { channel, since, rewind, timeoutMs: timeoutSeconds * 1000, clientId: clientIdOf(grant.subject) }),
        );
      } finally {
        lease.end();
      }
    },
  },
  { subscribes: true },
);

resource(channels, "/:channel/presence", {
  GET: async (c) => {
    const channel = channelParam(c);
    grantFor(c, channel, "subscribe");
    return c.json(await roomOf(c.env, channel).presence(channel));
  },
});

resource(channels, "/:channel", {
  GET: async (c) => {
    const channel = channelParam(c);
    grantFor(c, channel, "subscribe");
    return c.json(await roomOf(c.env, channel).info(channel));
  },
});

/** Who subscribes and how, the same for every single-channel subscribe route: its name, `rewind`, presence, token expiry. */
function subscriberOf(c: Context<AppEnv>, grant: Grant) {
  return {
    clientId: clientIdOf(grant.subject),
    subject: grant.subject,
    rewind: countQuery(c, "rewind", REWIND),
    presence: c.req.query("presence") === "1",
    expiresAt: grant.expiresAt,
  };
}

/**
 * Hands a long-lived subscriber (a WebSocket, or an SSE stream) to its room, holding one of the
 * address's connection slots for it, which the room gives back when the subscriber leaves.
 */
async function connectToRoom(c: Context<AppEnv>, params: Omit<ConnectParams, "lease">): Promise<Response> {
  const lease = await acquireRoomLease(c.env, c.get("config"), c.req.raw, params.channel);
  // Refused (a limit) or unreachable: the room never took the slot, so give it back here.
  const giveBack = () => c.executionCtx.waitUntil(releaseConnection(c.env, lease));
  try {
    const response = await connectSubscriber(c.env, c.get("config"), { ...params, lease });
    if (response.status !== 101 && !response.ok) giveBack();
    return response;
  } catch (error) {
    giveBack();
    throw error;
  }
}

// A channel name holding a slash ("a/b") or nothing at all splits the path differently;
// name the real problem instead of answering 404.
const CHANNEL_RESOURCE = /^\/v1\/channels\/(.*\/)?(messages|events|ws|poll|presence)$/;
channels.all("/*", (c, next) => {
  if (CHANNEL_RESOURCE.test(new URL(c.req.url).pathname)) throw invalidChannel();
  return next();
});
