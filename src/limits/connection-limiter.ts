import { DurableObject } from "cloudflare:workers";

/** A lease outlives a crashed holder by at most this long, so a lost release cannot lock a client out. */
const LEASE_MS = 24 * 60 * 60 * 1000;

/**
 * Counts one client address's open connections (one object per address), so a single client
 * cannot take every socket of the relay. Each connection holds a lease until it closes.
 */
export class ConnectionLimiter extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires);
    `);
  }

  /** Takes a lease unless `max` are held already. */
  async acquire(leaseId: string, max: number): Promise<boolean> {
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM leases WHERE expires < ?", now);
    const held = sql.exec<{ n: number }>("SELECT count(*) AS n FROM leases").one().n;
    if (held >= max) return false;
    sql.exec("INSERT OR REPLACE INTO leases (id, expires) VALUES (?, ?)", leaseId, now + LEASE_MS);
    return true;
  }

  async release(leaseId: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM leases WHERE id = ?", leaseId);
  }
}
