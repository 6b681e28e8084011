import type { ShardOccupants } from "./events";

/** Subjects per report at most: a reconnect storm onto a shard goes to the room in a few calls. */
const MAX_SUBJECTS_PER_REPORT = 1000;
/** A report that failed is sent again after this long (what it names, as it is by then). */
const RETRY_MS = 1000;

export interface OccupancyReporterOptions {
  /** Hands a report to the room. */
  send: (occupants: ShardOccupants) => Promise<void>;
  /** How many connections the shard holds for `subject` now ("" for those without one). */
  connectionsOf: (subject: string) => number;
  setTimer?: (fn: () => void, ms: number) => void;
}

/**
 * A shard's side of a hot channel's webhooks: tells the room how many connections each subject
 * holds here whenever that changes, so the room's ledger sees the whole channel. One report in
 * flight; subjects that change meanwhile go in the next, counted as they are when it is sent, so
 * a burst of joins and leaves costs a few calls and the last report is always the truth. A report
 * that fails is sent again, and the set of subjects waiting is bounded by the subjects here.
 *
 * @example
 * const reporter = new OccupancyReporter({ send: (o) => room.shardOccupancy(channel, index, epoch, o), connectionsOf });
 * reporter.changed("alice"); // one call now; changes meanwhile wait for it
 */
export class OccupancyReporter {
  readonly #options: OccupancyReporterOptions;
  readonly #changed = new Set<string>();
  #sending = false;

  constructor(options: OccupancyReporterOptions) {
    this.#options = options;
  }

  changed(subject: string): void {
    this.#changed.add(subject);
    this.#pump();
  }

  /** Whether nothing waits or is in flight (tests). */
  get idle(): boolean {
    return !this.#sending && this.#changed.size === 0;
  }

  #pump(): void {
    if (this.#sending || this.#changed.size === 0) return;
    const subjects = [...this.#changed].slice(0, MAX_SUBJECTS_PER_REPORT);
    for (const subject of subjects) this.#changed.delete(subject);
    this.#sending = true;
    const { send, connectionsOf, setTimer = (fn, ms) => setTimeout(fn, ms) } = this.#options;
    const done = () => {
      this.#sending = false;
      this.#pump();
    };
    send(subjects.map((subject) => [subject, connectionsOf(subject)])).then(done, () => {
      for (const subject of subjects) this.#changed.add(subject);
      setTimer(done, RETRY_MS);
    });
  }
}
