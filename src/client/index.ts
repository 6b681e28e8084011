/**
 * Edge Relay's client SDK: `import { RelayClient } from "edge-relay/client"`, or in a page served by
 * the relay, `import { RelayClient } from "/client.js"`. ESM, no dependencies.
 */

export { type BackoffOptions, backoffCeiling, backoffDelay } from "./backoff";
export { RelayClient } from "./client";
export { DEFAULTS } from "./defaults";
export { RelayClientError } from "./errors";
export type { DocumentLike, EventTargetLike, FetchLike, ResponseLike, WebSocketConstructor, WebSocketLike } from "./platform";
export type * from "./types";
