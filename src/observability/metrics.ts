/**
 * What the relay counts in Workers Analytics Engine (the optional `METRICS` dataset binding). One
 * data point per event, never per message delivered: a broadcast is one point with its count.
 * Columns, for the queries in README:
 *   index1 = channel (the sampling key), blob1 = metric, blob2 = transport or error code,
 *   double1 = count, double2 = milliseconds (publish-to-store time).
 */
export const Metric = {
  Publish: "publish",
  Delivery: "delivery",
  Connect: "connect",
  Disconnect: "disconnect",
  Refusal: "refusal",
  Gap: "gap",
  SlowConsumerDrop: "slow_consumer_drop",
} as const;

export type Metric = (typeof Metric)[keyof typeof Metric];

/** The part of the Analytics Engine binding the relay uses. */
export interface MetricsDataset {
  writeDataPoint(point: { indexes?: string[]; blobs?: string[]; doubles?: number[] }): void;
}

/**
 * Writes metrics when a dataset is bound and does nothing otherwise, so callers never ask.
 *
 * @example new Metrics(env.METRICS).count(Metric.Connect, "news", "ws")
 */
export class Metrics {
  constructor(readonly dataset: MetricsDataset | undefined) {}

  /** `count` events of `metric` on `channel` (`""` when none applies), by transport or error code. */
  count(metric: Metric, channel: string, label = "", count = 1, ms = 0): void {
    if (!this.dataset || count === 0) return;
    try {
      this.dataset.writeDataPoint({ indexes: [channel], blobs: [metric, label], doubles: [count, ms] });
    } catch (error) {
      // Metrics must never fail a publish or a connection.
      console.error(JSON.stringify({ level: "error", event: "metrics.write_failed", error: String(error) }));
    }
  }
}
