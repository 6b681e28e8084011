import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { grantFor } from "../auth/grant";
import { checkWebSocketOrigin } from "../auth/origins";
import { clientIdOf, subjectOf } from "../auth/policy";
import { acquireSessionLease } from "../limits/connections";
import { publisherKey } from "../limits/publish-rate";
import { type Cursor, parseCursor } from "../protocol/cursor";
import { RelayError } from "../protocol/errors";
import { batchFramesOption, REWIND, requireChannel } from "../protocol/validate";
import { clientPublisher } from "../room/publish";
import { multiplexSSE } from "../sse/multiplex";
import { MultiplexSession } from "../subscribers/multiplex-ws";
import { countQuery, requireUpgrade } from "./params";
import { resource } from "./resource";

/** `/v1/ws` and `/v1/events`: one connection for many channels. */
export const multiplex = new Hono<AppEnv>();

resource(
  multiplex,
  "/ws",
  {
    GET: async (c) => {
      requireUpgrade(c.req.header("Upgrade"));
      const config = c.get("config");
      const identity = c.get("identity");
      checkWebSocketOrigin(c.req.raw, config, identity);
      // A bad token is refused at the door, not on every frame.
      if (identity.kind === "invalid") throw new RelayError("unauthorized", identity.reason);
      const batchFrames = batchFramesOption(c.req.query("frames"));
      const lease = await acquireSessionLease(c.env, config, c.req.raw, (promise) => c.executionCtx.waitUntil(promise));
      const { 0: client, 1: server } = new WebSocketPair();
      new MultiplexSession(server, {
        env: c.env,
        config,
        authorize: (channel, action) => grantFor(c, channel, action),
        clientId: clientIdOf(subjectOf(identity)),
        subject: subjectOf(identity),
        publisher: clientPublisher(config, identity, publisherKey(identity, c.req.raw)),
        batchFrames,
        onClose: () => lease.end(),
        expiresAt: identity.kind === "token" ? identity.claims.expiresAt : undefined,
      });
      return new Response(null, { status: 101, webSocket: client });
    },
  },
  { subscribes: true },
);

resource(
  multiplex,
  "/events",
  {
    GET: async (c) => {
      const config = c.get("config");
      const names = c.req.queries("channel") ?? [];
      if (names.length === 0) throw new RelayError("invalid_request", "Name the channels to subscribe to: /v1/events?channel=a&channel=b.");
      const channels = [...new Set(names)];
      if (channels.length > config.maxChannelsPerConnection) {
        throw new RelayError("invalid_request", `A stream subscribes to at most ${config.maxChannelsPerConnection} channels (MAX_CHANNELS_PER_CONNECTION).`);
      }
      for (const channel of channels) {
        requireChannel(channel);
        grantFor(c, channel, "subscribe");
      }
      const resume = streamResume(c.req.header("Last-Event-ID") || c.req.query("since"), channels);
      const rewind = countQuery(c, "rewind", REWIND);
      const identity = c.get("identity");
      const lease = await acquireSessionLease(c.env, config, c.req.raw, (promise) => c.executionCtx.waitUntil(promise));
      return multiplexSSE(c.env, config, {
        channels,
        resume,
        rewind,
        clientId: clientIdOf(subjectOf(identity)),
        subject: subjectOf(identity),
        presence: c.req.query("presence") === "1",
        expiresAt: identity.kind === "token" ? identity.claims.expiresAt : undefined,
        onEnd: () => lease.end(),
      });
    },
  },
  { subscribes: true },
);

/** The stream's resume point: `Last-Event-ID` (a reconnecting browser) or `since`, naming only the stream's channels. */
function streamResume(text: string | undefined, channels: string[]): Cursor {
  if (text === undefined) return new Map();
  const cursor = parseCursor(text);
  if (!cursor) throw new RelayError("invalid_request", "The resume cursor must be channel=id pairs joined by commas, as the stream's event ids are.");
  for (const channel of cursor.keys()) {
    if (!channels.includes(channel)) throw new RelayError("invalid_request", `The resume cursor names ${channel}, which this stream does not subscribe to.`);
  }
  return cursor;
}
