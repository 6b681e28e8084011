import { WorkerEntrypoint } from "cloudflare:workers";
import { createApp } from "./app";
import { readConfig, webhookTarget } from "./config";
import { publish, SERVICE_PUBLISHER } from "./room/publish";
import { deliverWebhooks } from "./webhooks/delivery";
import type { WebhookEvent } from "./webhooks/events";

export { Shard } from "./fanout/shard";
export { ConnectionLimiter } from "./limits/connection-limiter";
export { Room } from "./room/room";

const app = createApp();

export interface RpcPublishOptions {
  event?: string;
  idempotencyKey?: string;
}

/**
 * The relay Worker: HTTP for everyone, and typed RPC for other Workers of the same account
 * through a service binding, with no HTTP in between.
 *
 * @example
 * // wrangler.toml of the calling Worker: services = [{ binding = "RELAY", service = "edge-relay" }]
 * const id = await env.RELAY.publish("news", JSON.stringify({ headline }), { event: "update" });
 */
export default class Relay extends WorkerEntrypoint<Env> {
  override fetch(request: Request): Response | Promise<Response> {
    return app.fetch(request, this.env, this.ctx);
  }

  /** The webhook queue's consumer: POSTs each batch of events to WEBHOOK_URL, signed. */
  override async queue(batch: MessageBatch<WebhookEvent>): Promise<void> {
    await deliverWebhooks(batch, webhookTarget(readConfig(this.env)));
  }

  /**
   * Publishes one message and returns its id once it is stored, through the same checks as every
   * other publish. Service bindings are trusted: no token is asked, and the publish rate limit does
   * not count them (see SERVICE_PUBLISHER). Bad input throws an Error whose message starts with
   * API.md's error code.
   */
  async publish(channel: string, data: string | ArrayBuffer | Uint8Array, options: RpcPublishOptions = {}): Promise<string> {
    const config = readConfig(this.env);
    const body = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    try {
      const receipt = await publish(this.env, config, SERVICE_PUBLISHER, { channel, data: body, event: options.event, idempotencyKey: options.idempotencyKey });
      return receipt.id;
    } catch (error) {
      // RPC carries an Error's message, not its fields: put the code where a caller can read it.
      if (error instanceof Error && "code" in error) throw new Error(`${String(error.code)}: ${error.message}`);
      throw error;
    }
  }
}
