import { DurableObject } from "cloudflare:workers";

/**
 * How long a lease held by a Worker-side session (`/v1/ws`, `/v1/events`, a long-poll) lasts
 * unless renewed; the session renews it every SESSION_RENEW_MS while it runs, so a session that
 * died with its isolate stops counting within this long.
 */
export const SESSION_LEASE_MS = 60_000;
export const SESSION_RENEW_MS = 20_000;

/** A room is asked again about its leases at most this often. */
const ROOM_CHECK_INTERVAL_MS = 5_000;
/**
 * A lease is handed to its room a moment after it is taken; until it is this old, a room that
 * does not know it yet is not taken to have lost it.
 */
const HANDOFF_GRACE_MS = 10_000;
/** Rooms asked per acquire at most (those holding the oldest leases first), so one acquire stays bounded. */
const MAX_ROOMS_PER_CHECK = 50;

/** The room that holds a lease (its channel), or `null` for a Worker-side session that renews it. */
export type LeaseHolder = string | null;

type LeaseRow = { id: string; holder: string; created: number };

/**
 * Counts one client address's open connections (one object per address key), so a single client
 * cannot take every socket of the relay. Each connection holds a lease with one owner, which ends
 * within a bounded time after its connection does, also when nothing ran to give it back (the
 * relay was killed, a deploy restarted the rooms):
 * - a Worker-side session's lease expires SESSION_LEASE_MS after its last renewal;
 * - a room's lease lives while the room holds its subscriber. Rooms are not woken to renew (idle
 *   WebSockets hibernate); instead, when the address is at its limit, the limiter asks each room
 *   holding its leases which it still holds (a restarted room holds none) and drops the others.
 */
export class ConnectionLimiter extends DurableObject<Env> {
  /** When each room was last asked. */
  readonly #checkedAt = new Map<string, number>();
  /** The check in progress, shared by acquires that arrive meanwhile. */
  #checking: Promise<void> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID");
    const columns = new Set(
      sql
        .exec<{ name: string }>("PRAGMA table_info(leases)")
        .toArray()
        .map((column) => column.name),
    );
    // Leases from before holders were recorded end like a session's, within SESSION_LEASE_MS.
    if (!columns.has("holder")) sql.exec("ALTER TABLE leases ADD COLUMN holder TEXT");
    if (!columns.has("created")) {
      sql.exec("ALTER TABLE leases ADD COLUMN created INTEGER NOT NULL DEFAULT 0");
      sql.exec("UPDATE leases SET expires = min(expires, ?)", Date.now() + SESSION_LEASE_MS);
    }
    sql.exec("CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires)");
  }

  /** Takes a lease for `holder` unless `max` are held already. */
  async acquire(leaseId: string, max: number, holder: LeaseHolder): Promise<boolean> {
    if (this.#held() >= max) await this.#checkRooms();
    if (this.#held() >= max) return false;
    const now = Date.now();
    const expires = holder === null ? now + SESSION_LEASE_MS : Number.MAX_SAFE_INTEGER;
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO leases (id, expires, holder, created) VALUES (?, ?, ?, ?)", leaseId, expires, holder, now);
    return true;
  }

  /** Extends Worker-side sessions' leases by another SESSION_LEASE_MS. */
  async renew(leaseIds: string[]): Promise<void> {
    const expires = Date.now() + SESSION_LEASE_MS;
    for (const id of leaseIds) this.ctx.storage.sql.exec("UPDATE leases SET expires = ? WHERE id = ? AND holder IS NULL", expires, id);
  }

  async release(leaseId: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM leases WHERE id = ?", leaseId);
  }

  /** Leases held now, once the expired ones are gone. */
  #held(): number {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM leases WHERE expires < ?", Date.now());
    return sql.exec<{ n: number }>("SELECT count(*) AS n FROM leases").one().n;
  }

  #checkRooms(): Promise<void> {
    this.#checking ??= this.#askRooms().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  /** Asks the rooms holding this address's leases which they still hold, and drops the rest. */
  async #askRooms(): Promise<void> {
    const now = Date.now();
    const rows = this.ctx.storage.sql
      .exec<LeaseRow>("SELECT id, holder, created FROM leases WHERE holder IS NOT NULL AND created < ? ORDER BY created", now - HANDOFF_GRACE_MS)
      .toArray();
    const byRoom = new Map<string, string[]>();
    for (const { id, holder } of rows) {
      if (!byRoom.has(holder) && (byRoom.size >= MAX_ROOMS_PER_CHECK || now - (this.#checkedAt.get(holder) ?? 0) < ROOM_CHECK_INTERVAL_MS)) continue;
      const ids = byRoom.get(holder);
      if (ids) ids.push(id);
      else byRoom.set(holder, [id]);
    }
    await Promise.all(
      Array.from(byRoom, async ([channel, ids]) => {
        this.#checkedAt.set(channel, now);
        let held: Set<string>;
        try {
          held = new Set(await this.env.ROOMS.get(this.env.ROOMS.idFromName(channel)).heldLeases(ids));
        } catch (error) {
          // Unreachable just now: its leases stand until the next check.
          console.error("connection lease check failed", error);
          return;
        }
        for (const id of ids) if (!held.has(id)) this.ctx.storage.sql.exec("DELETE FROM leases WHERE id = ?", id);
      }),
    );
    // Rooms not asked for a while are forgotten, so the map stays as small as the set of holders.
    for (const [channel, at] of this.#checkedAt) if (now - at > ROOM_CHECK_INTERVAL_MS) this.#checkedAt.delete(channel);
  }
}
