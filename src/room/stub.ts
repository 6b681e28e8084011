import type { RelayConfig } from "../config";
import { connectSubscriber } from "../fanout/placement";
import { RelayError } from "../protocol/errors";
import type { ConnectParams } from "./connect-request";

/** The channel's room; `idFromName` makes every Worker in the world reach the same one. */
export function roomOf(env: Env, channel: string) {
  return env.ROOMS.get(env.ROOMS.idFromName(channel));
}

export interface RoomSocketHandlers {
  message(text: string): void;
  /** The room closed the socket (with this code), or it broke (1006). */
  close(code: number): void;
}

/**
 * Opens a subscriber socket on a channel's room (or the shard it is placed on): the one way
 * multi-channel and long-poll subscribers reach a channel. Handlers are attached before the socket is accepted, so nothing the
 * room sends first (greeting, replay) is missed. A room's refusal (a limit) is thrown as the
 * RelayError it answered with.
 */
export async function openRoomSocket(env: Env, config: RelayConfig, params: ConnectParams, handlers: RoomSocketHandlers): Promise<WebSocket> {
  const response = await connectSubscriber(env, config, params);
  const socket = response.webSocket;
  if (!socket) throw await RelayError.fromResponse(response);
  socket.addEventListener("message", (event) => handlers.message(event.data as string));
  socket.addEventListener("close", (event) => handlers.close(event.code));
  socket.addEventListener("error", () => handlers.close(1006));
  socket.accept();
  return socket;
}
