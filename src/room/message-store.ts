import type { MessageLog, StoredMessage } from "./message-log";

export interface NewMessage {
  event: string;
  data: string;
  encoding?: "base64";
  ts: number;
  idempotencyKey?: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    encoding TEXT,
    ts INTEGER NOT NULL,
    idempotency_key TEXT
  );
  CREATE INDEX IF NOT EXISTS messages_by_idempotency_key ON messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
`;

type MessageRow = StoredMessage & Record<string, SqlStorageValue>;

/**
 * The channel's durable state in the room's SQLite storage: the sequence counter, the retained
 * messages and their idempotency keys. Every method is synchronous, so a caller that does not
 * `await` in between sees and changes the channel atomically.
 */
export class MessageStore implements MessageLog {
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  #lastSeq: number;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.#sql.exec(SCHEMA);
    this.#lastSeq = Number(this.getMeta("last_seq") ?? 0);
  }

  /** The id of the last message ever stored; pruning never lowers it. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  getMeta(key: string): SqlStorageValue | undefined {
    return this.#sql.exec<{ value: SqlStorageValue }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  }

  setMeta(key: string, value: SqlStorageValue): void {
    this.#sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  /** Stores a message under the next id and keeps at most `limit` messages. */
  append(message: NewMessage, limit: number): StoredMessage {
    return this.#storage.transactionSync(() => {
      const seq = this.#lastSeq + 1;
      this.#sql.exec(
        "INSERT INTO messages (seq, event, data, encoding, ts, idempotency_key) VALUES (?, ?, ?, ?, ?, ?)",
        seq,
        message.event,
        message.data,
        message.encoding ?? null,
        message.ts,
        message.idempotencyKey ?? null,
      );
      this.setMeta("last_seq", seq);
      if (seq > limit) this.#sql.exec("DELETE FROM messages WHERE seq <= ?", seq - limit);
      this.#lastSeq = seq;
      return { seq, event: message.event, data: message.data, encoding: message.encoding ?? null, ts: message.ts };
    });
  }

  /** The retained message published with this idempotency key, if any. */
  findByIdempotencyKey(key: string, notBefore: number): StoredMessage | undefined {
    return this.#sql
      .exec<MessageRow>("SELECT seq, event, data, encoding, ts FROM messages WHERE idempotency_key = ? AND ts >= ? ORDER BY seq DESC LIMIT 1", key, notBefore)
      .toArray()[0];
  }

  /** The oldest retained id not older than `notBefore`, or null when nothing is retained. */
  oldestSeq(notBefore: number): number | null {
    const row = this.#sql.exec<{ seq: number }>("SELECT seq FROM messages WHERE ts >= ? ORDER BY seq LIMIT 1", notBefore).toArray()[0];
    return row?.seq ?? null;
  }

  /** The time of the oldest retained message, or null when there is none. */
  oldestTs(): number | null {
    const row = this.#sql.exec<{ ts: number }>("SELECT ts FROM messages ORDER BY seq LIMIT 1").toArray()[0];
    return row?.ts ?? null;
  }

  /** Retained messages after `seq`, oldest first, not older than `notBefore`. Iterate before the next `await`. */
  after(seq: number, limit: number, notBefore: number): Iterable<StoredMessage> {
    return this.#sql.exec<MessageRow>(
      "SELECT seq, event, data, encoding, ts FROM messages WHERE seq > ? AND ts >= ? ORDER BY seq LIMIT ?",
      seq,
      notBefore,
      limit,
    );
  }

  /** Deletes the messages older than `notBefore`; the counter stays. */
  pruneOlderThan(notBefore: number): void {
    this.#sql.exec("DELETE FROM messages WHERE ts < ?", notBefore);
  }
}
