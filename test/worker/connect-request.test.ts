import { describe, expect, it } from "vitest";
import { type ConnectParams, connectRequest, readConnectRequest } from "../../src/room/connect-request";

const socket: ConnectParams = { channel: "news", delivery: "socket", transport: "ws", clientId: "c1", presence: false };

describe("the connect request's batch option", () => {
  it("carries batch frames from the Worker to the room", () => {
    expect(readConnectRequest(connectRequest({ ...socket, batch: true }))).toEqual({ ...socket, since: undefined, expiresAt: undefined, batch: true });
    expect(readConnectRequest(connectRequest(socket))?.batch).toBeUndefined();
  });

  it("refuses batch frames for an SSE stream, and any other frames value", () => {
    const stream = new URL(connectRequest({ ...socket, delivery: "stream", transport: "sse" }).url);
    stream.searchParams.set("frames", "batch");
    expect(readConnectRequest(new Request(stream))).toBeUndefined();
    const other = new URL(connectRequest(socket).url);
    other.searchParams.set("frames", "all");
    expect(readConnectRequest(new Request(other, { headers: { Upgrade: "websocket" } }))).toBeUndefined();
  });
});
