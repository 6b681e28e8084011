/** The client's address as Cloudflare reports it; local development has none. */
export function clientAddress(request: Request): string {
  return request.headers.get("CF-Connecting-IP") ?? "local";
}
