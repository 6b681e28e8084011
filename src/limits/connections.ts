import type { RelayConfig } from "../config";
import { RelayError } from "../protocol/errors";
import { clientAddress } from "./client-address";
import { type LeaseHolder, SESSION_RENEW_MS } from "./connection-limiter";

/** A held connection slot: which client address, which lease. */
export interface ConnectionLease {
  key: string;
  id: string;
}

/** A slot held by a Worker-side session, renewed until `end()` gives it back. */
export interface SessionLease {
  end(): void;
}

function limiterOf(env: Env, key: string) {
  return env.CONNECTION_LIMITER.get(env.CONNECTION_LIMITER.idFromName(key));
}

/**
 * Takes one of the client address's MAX_CONNECTIONS_PER_IP slots for a subscriber its room holds
 * (a channel's own WebSocket or SSE stream). The room gives it back when the subscriber leaves, and
 * answers for it when the limiter asks (a restarted room holds none). Throws 429 when all are
 * taken; `undefined` when the limit is off (0).
 */
export function acquireRoomLease(env: Env, config: RelayConfig, request: Request, channel: string): Promise<ConnectionLease | undefined> {
  return acquire(env, config, request, channel);
}

/**
 * Takes a slot for a session the Worker holds (`/v1/ws`, `/v1/events`, a long-poll) and renews it
 * while the session runs, so it ends within SESSION_LEASE_MS of the session even if `end()` never
 * runs. Throws 429 when all are taken.
 */
export async function acquireSessionLease(
  env: Env,
  config: RelayConfig,
  request: Request,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<SessionLease> {
  const lease = await acquire(env, config, request, null);
  if (!lease) return { end: () => {} };
  const renewal = setInterval(() => {
    limiterOf(env, lease.key)
      .renew([lease.id])
      .catch((error: unknown) => console.error("connection lease renewal failed", error));
  }, SESSION_RENEW_MS);
  let ended = false;
  return {
    end: () => {
      if (ended) return;
      ended = true;
      clearInterval(renewal);
      waitUntil(releaseConnection(env, lease));
    },
  };
}

async function acquire(env: Env, config: RelayConfig, request: Request, holder: LeaseHolder): Promise<ConnectionLease | undefined> {
  if (config.maxConnectionsPerIp === 0) return undefined;
  const lease = { key: clientAddress(request), id: crypto.randomUUID() };
  if (!(await limiterOf(env, lease.key).acquire(lease.id, config.maxConnectionsPerIp, holder))) {
    throw new RelayError("rate_limited", `This address already holds ${config.maxConnectionsPerIp} connections (MAX_CONNECTIONS_PER_IP); close some first.`, {
      headers: { "Retry-After": "5" },
    });
  }
  return lease;
}

/** Gives the slot back when the connection ends; a failure only delays it until the lease is found dead or expires. */
export function releaseConnection(env: Env, lease: ConnectionLease | undefined): Promise<void> {
  if (!lease) return Promise.resolve();
  return limiterOf(env, lease.key)
    .release(lease.id)
    .catch((error: unknown) => console.error("connection lease release failed", error));
}
