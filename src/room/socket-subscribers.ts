import { tokenDeadlineMs } from "../auth/claims";
import type { ConnectionLease } from "../limits/connections";
import { CloseCode } from "../protocol/close-codes";
import type { PresenceMember } from "../protocol/frames";
import type { Transport } from "../protocol/transports";
import type { ConnectParams, OwnSocket } from "./connect-request";
import { closeQuietly } from "./sockets";
import { subscriberFormats } from "./subscriber-formats";
import type { Audience, Subscriber, SubscriberSet } from "./subscribers";

/** Per-socket state that survives hibernation. */
export interface SocketAttachment {
  clientId: string;
  /** The token's `sub`, when it has one. */
  subject?: string;
  transport: Transport;
  joinedAt: number;
  /** Set for a client's own channel socket, whose frames the room answers. */
  ownSocket?: OwnSocket;
  /** The client's token's `exp`, in seconds since the epoch; closed at tokenDeadlineMs(expiresAt). */
  expiresAt?: number;
  lease?: ConnectionLease;
  /** Set once its leave was announced, so a close and an error announce it once. */
  left?: true;
  /** Takes batch frames: its messages go out through the room's batcher. */
  batch?: true;
  /** Set while it is sent its replay page by page; a room evicted meanwhile closes it so it resumes. */
  catchingUp?: true;
}

/**
 * Hibernation tags: every socket takes messages, one at a time or in batch frames; found by its
 * transport and whether it wants presence.
 */
const Tag = {
  messages: "json",
  batchMessages: "json:batch",
  transport: (transport: Transport) => `t:${transport}`,
  presence: "presence:json",
};

export interface SocketSubscribersOptions {
  /** A socket still being sent its replay page by page: live messages skip it (its next page reads them). */
  waiting(ws: WebSocket): boolean;
  /** A socket whose token expired: the room lets it leave and closes it. */
  expire(ws: WebSocket): void;
}

/**
 * The hibernatable WebSockets a room holds: a client's own channel socket, or an internal one the
 * Worker holds for a multi-channel or long-poll client. What the room must know of each survives
 * hibernation in its attachment and tags, so this holds nothing of its own but the room's state.
 */
export class SocketSubscribers implements SubscriberSet {
  readonly format = subscriberFormats.json;
  readonly #ctx: DurableObjectState;
  readonly #options: SocketSubscribersOptions;

  constructor(ctx: DurableObjectState, options: SocketSubscribersOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  get size(): number {
    return this.#ctx.getWebSockets().length;
  }

  *subscribers(): Iterable<Subscriber> {
    for (const ws of this.#ctx.getWebSockets()) {
      const attachment = attachmentOf(ws);
      if (attachment.left) continue;
      const subscriber = subscriberOf(attachment);
      // A socket on its way out is still counted, but no longer listed as present.
      if (ws.readyState !== WebSocket.OPEN) delete subscriber.member;
      yield subscriber;
    }
  }

  count(transport: Transport): number {
    return this.#ctx.getWebSockets(Tag.transport(transport)).length;
  }

  /** Messages go to the sockets without batch frames here; those with them take them from the room's batcher (`withBatches`). */
  broadcast(text: string, audience: Audience, except?: WebSocket): number {
    let sent = 0;
    for (const ws of this.#ctx.getWebSockets(audience === "messages" ? Tag.messages : Tag.presence)) {
      if (ws === except || (audience === "messages" && this.#options.waiting(ws))) continue;
      sendOrClose(ws, text);
      sent += 1;
    }
    return sent;
  }

  /** Sends to every socket, batch frames or not, except those still catching up (a gap notice). */
  broadcastToAll(text: string): void {
    for (const ws of this.#ctx.getWebSockets()) if (!this.#options.waiting(ws)) sendOrClose(ws, text);
  }

  /** The sockets that take batch frames. */
  withBatches(): WebSocket[] {
    return this.#ctx.getWebSockets(Tag.batchMessages);
  }

  endExpired(nowMs: number): void {
    for (const ws of this.#ctx.getWebSockets()) {
      const { expiresAt, left } = attachmentOf(ws);
      if (!left && expiresAt !== undefined && tokenDeadlineMs(expiresAt) <= nowMs) this.#options.expire(ws);
    }
  }

  /** Takes a newcomer's socket (hibernatable, tagged for what it takes), joined at `joinedAt` as its join said; returns it as a subscriber. */
  accept(ws: WebSocket, params: ConnectParams, joinedAt: number): Subscriber {
    const tags = [params.batch ? Tag.batchMessages : Tag.messages, Tag.transport(params.transport)];
    if (params.presence) tags.push(Tag.presence);
    const attachment: SocketAttachment = {
      clientId: params.clientId,
      subject: params.subject,
      transport: params.transport,
      joinedAt,
      ownSocket: params.ownSocket,
      expiresAt: params.expiresAt,
      lease: params.lease,
    };
    if (params.batch) attachment.batch = true;
    this.#ctx.acceptWebSocket(ws, tags);
    ws.serializeAttachment(attachment);
    return subscriberOf(attachment);
  }

  /** Marks a socket as gone; returns it as a subscriber the first time, undefined after (a close and an error both come). */
  leave(ws: WebSocket): Subscriber | undefined {
    const attachment = attachmentOf(ws);
    if (attachment.left) return undefined;
    ws.serializeAttachment({ ...attachment, left: true } satisfies SocketAttachment);
    return subscriberOf(attachment);
  }

  /** Marks a socket as being sent its replay page by page, or done with it. */
  setCatchingUp(ws: WebSocket, catchingUp: boolean): void {
    if (catchingUp || ws.readyState === WebSocket.OPEN)
      ws.serializeAttachment({ ...attachmentOf(ws), catchingUp: catchingUp || undefined } satisfies SocketAttachment);
  }

  all(): WebSocket[] {
    return this.#ctx.getWebSockets();
  }
}

export function attachmentOf(ws: WebSocket): SocketAttachment {
  return ws.deserializeAttachment() as SocketAttachment;
}

/** Long-pollers come and go with each request; presence lists the connections that stay. */
export function isPresenceMember(transport: Transport): transport is PresenceMember["transport"] {
  return transport !== "poll";
}

function subscriberOf({ clientId, subject, transport, joinedAt, lease, expiresAt }: SocketAttachment): Subscriber {
  const subscriber: Subscriber = { transport, subject, lease };
  if (isPresenceMember(transport)) subscriber.member = { id: clientId, transport, since: joinedAt };
  if (expiresAt !== undefined) subscriber.deadline = tokenDeadlineMs(expiresAt);
  return subscriber;
}

/** A send that throws means that socket is gone or broken: close it, and only it. */
export function sendOrClose(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    closeQuietly(ws, CloseCode.InternalError, "send failed");
  }
}
