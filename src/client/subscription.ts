import type { MessageHandler, RelayMessage, Subscription, TransportPreference } from "./types";

/** What became of a message offered to a subscription. */
export type Offer = "delivered" | "duplicate" | "ahead";

/**
 * One `subscribe()`: its handler and its own resume cursor. Delivery is strictly contiguous: a
 * message is handed to the application only if its id is the next one after the cursor, so
 * duplicates (replays after a reconnect or a transport switch) and anything arriving early are
 * never seen by the application. Gaps the relay announces move the cursor explicitly.
 */
export class ClientSubscription implements Subscription {
  readonly channel: string;
  readonly preference: TransportPreference;
  /** Id of the last message delivered, or where delivery resumes after; `undefined`: from now on. */
  cursor: number | undefined;
  active = true;
  readonly #handler: MessageHandler;
  readonly #onUnsubscribe: (subscription: ClientSubscription) => void;

  constructor(
    channel: string,
    handler: MessageHandler,
    cursor: number | undefined,
    preference: TransportPreference,
    onUnsubscribe: (subscription: ClientSubscription) => void,
  ) {
    this.channel = channel;
    this.#handler = handler;
    this.cursor = cursor;
    this.preference = preference;
    this.#onUnsubscribe = onUnsubscribe;
  }

  get lastId(): string | undefined {
    return this.cursor === undefined ? undefined : String(this.cursor);
  }

  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.#onUnsubscribe(this);
  }

  /** Delivers `message` (id `seq`) if it is the next one; a throwing handler is reported, not fatal. */
  offer(seq: number, message: RelayMessage, onHandlerError: (error: unknown) => void): Offer {
    if (!this.active) return "duplicate";
    if (this.cursor !== undefined) {
      if (seq <= this.cursor) return "duplicate";
      if (seq > this.cursor + 1) return "ahead";
    }
    this.cursor = seq;
    try {
      this.#handler(message);
    } catch (error) {
      onHandlerError(error);
    }
    return "delivered";
  }
}
