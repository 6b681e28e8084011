import type { RelayConfig } from "../config";
import { RelayError } from "../protocol/errors";
import { clientAddress } from "./client-address";

/** A held connection slot: which client address, which lease. */
export interface ConnectionLease {
  key: string;
  id: string;
}

function limiterOf(env: Env, key: string) {
  return env.CONNECTION_LIMITER.get(env.CONNECTION_LIMITER.idFromName(key));
}

/**
 * Takes one of the client address's MAX_CONNECTIONS_PER_IP slots for a long-lived connection
 * (WebSocket or SSE); throws 429 when all are taken. `undefined` when the limit is off (0).
 */
export async function acquireConnection(env: Env, config: RelayConfig, request: Request): Promise<ConnectionLease | undefined> {
  if (config.maxConnectionsPerIp === 0) return undefined;
  const lease = { key: clientAddress(request), id: crypto.randomUUID() };
  if (!(await limiterOf(env, lease.key).acquire(lease.id, config.maxConnectionsPerIp))) {
    throw new RelayError("rate_limited", `This address already holds ${config.maxConnectionsPerIp} connections (MAX_CONNECTIONS_PER_IP); close some first.`, {
      headers: { "Retry-After": "5" },
    });
  }
  return lease;
}

/** Gives the slot back when the connection ends; failures only delay it until the lease expires. */
export function releaseConnection(env: Env, lease: ConnectionLease | undefined): Promise<void> {
  if (!lease) return Promise.resolve();
  return limiterOf(env, lease.key)
    .release(lease.id)
    .catch((error: unknown) => console.error("connection lease release failed", error));
}
