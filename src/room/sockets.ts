/** Closes a socket that may already be closed. */
export function closeQuietly(socket: WebSocket, code = 1000, reason = ""): void {
  try {
    socket.close(code, reason);
  } catch {
    // Already closed.
  }
}
