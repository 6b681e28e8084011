/**
 * Edge Relay's client SDK: `import { RelayClient } from "edge-relay/client"`, or in a page served by
 * the relay, `import { RelayClient } from "/client.js"`. ESM, no dependencies.
 */
export { RelayClient } from "./client";
export { RelayClientError } from "./errors";
export { DEFAULTS } from "./defaults";
export { backoffDelay, backoffCeiling, type BackoffOptions } from "./backoff";
export type * from "./types";
export type { WebSocketLike, WebSocketConstructor, FetchLike, ResponseLike, EventTargetLike, DocumentLike } from "./platform";
