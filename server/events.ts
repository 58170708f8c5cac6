/**
 * Word events: the one place the gateway publishes `wordEvents` from, and
 * the one place subscriptions are counted, capped and ended.
 *
 * An {@linkcode EventBus} wraps graphql-yoga's `createPubSub` over an event
 * target: in-process only (tests), a `BroadcastChannel` (every isolate of one
 * instance, e.g. `deno serve --parallel`), or Redis pub/sub (`EVENTS_URL`,
 * every instance; see server/event_targets.ts). Resolvers publish after the
 * store acknowledged the write; nothing is replayed, so a client re-reads the
 * list after it reconnects.
 *
 * Each subscriber has a bounded queue: one that falls `maxQueue` events
 * behind gets a last event whose error is `SUBSCRIBER_TOO_SLOW`, and its
 * subscription ends, rather than the gateway buffering without bound.
 *
 * @module
 */
import { createGraphQLError, createPubSub, type PubSubEventTarget, Repeater } from "graphql-yoga";
import { SHUTTING_DOWN, SUBSCRIBER_TOO_SLOW, SUBSCRIPTION_LIMIT } from "./error_codes.ts";
import type { StoreName, WordRecord } from "../stores/types.ts";

/** The values of the `WordEventKind` enum. */
export type WordEventKind = "ADDED" | "UPDATED" | "DELETED";

/** One `WordEvent`: `word` after the change (before it, for DELETED). */
export interface WordEvent {
  kind: WordEventKind;
  store: StoreName;
  word: WordRecord & { store: StoreName };
}

/** The pub/sub's topics and their payloads (yoga's typed `createPubSub`). */
export type EventTopics = { wordEvent: [WordEvent] };

/** The event target the pub/sub dispatches on. */
export type WordEventTarget = PubSubEventTarget<EventTopics>;

/** What resolvers see of the bus: publishing only. */
export interface WordEventPublisher {
  publish(event: WordEvent): void;
}

/** Caps of {@linkcode EventBus}. */
export interface SubscriptionLimits {
  /** Open subscriptions per client address (`SUBSCRIPTIONS_PER_CLIENT`). */
  perClient: number;
  /** Open subscriptions in total, per process (`SUBSCRIPTIONS_MAX`). */
  total: number;
  /** Events a subscriber may fall behind before it is disconnected (`SUBSCRIPTION_QUEUE`). */
  maxQueue: number;
}

/** The defaults of {@linkcode SubscriptionLimits}. */
export const DEFAULT_LIMITS: SubscriptionLimits = { perClient: 10, total: 1000, maxQueue: 256 };

/** A payload the resolver turns into an error: the subscription ends after it. */
export interface EventError {
  error: { code: string; message: string };
}

/** Publishes word events and hands out capped subscriptions to them. */
export class EventBus implements WordEventPublisher {
  readonly #pubsub;
  readonly #limits: SubscriptionLimits;
  readonly #perClient = new Map<string, number>();
  readonly #stops = new Set<() => void>();
  readonly #closeTarget: () => void | Promise<void>;
  #open = 0;
  #closed = false;

  /**
   * @param target where events travel (default: this process only)
   * @param limits caps on subscriptions
   * @param closeTarget releases the target's resources at {@linkcode close}
   */
  constructor(
    target?: WordEventTarget,
    limits: Partial<SubscriptionLimits> = {},
    closeTarget: () => void | Promise<void> = () => {},
  ) {
    this.#pubsub = createPubSub<EventTopics>(target ? { eventTarget: target } : {});
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    this.#closeTarget = closeTarget;
  }

  /** Open subscriptions of this process. */
  get open(): number {
    return this.#open;
  }

  /** Publishes `event` to every subscriber of its store (and of every store). */
  publish(event: WordEvent): void {
    if (this.#closed) return;
    this.#pubsub.publish("wordEvent", event);
  }

  /**
   * A subscription to `store`'s events (every store's when absent) for
   * `client`; throws a GraphQL error `SUBSCRIPTION_LIMIT` over a cap, and
   * `SHUTTING_DOWN` once the bus is closed.
   */
  subscribe(store: StoreName | undefined, client = "unknown"): AsyncIterableIterator<
    WordEvent | EventError
  > {
    if (this.#closed) {
      throw createGraphQLError("The gateway is shutting down: subscribe to another instance.", {
        extensions: { code: SHUTTING_DOWN },
      });
    }
    const mine = this.#perClient.get(client) ?? 0;
    if (mine >= this.#limits.perClient || this.#open >= this.#limits.total) {
      const which = mine >= this.#limits.perClient
        ? `${this.#limits.perClient} per client address`
        : `${this.#limits.total} in total`;
      throw createGraphQLError(`Too many open subscriptions (at most ${which}).`, {
        extensions: { code: SUBSCRIPTION_LIMIT },
      });
    }
    this.#open++;
    this.#perClient.set(client, mine + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#open--;
      const n = (this.#perClient.get(client) ?? 1) - 1;
      if (n > 0) this.#perClient.set(client, n);
      else this.#perClient.delete(client);
    };
    const source = this.#pubsub.subscribe("wordEvent");
    const maxQueue = this.#limits.maxQueue;
    const stops = this.#stops;
    const repeater = new Repeater<WordEvent | EventError>(async (push, stop) => {
      let behind = 0;
      let ended = false;
      const end = (last?: EventError) => {
        if (ended) return;
        ended = true;
        if (last) push(last).catch(() => {});
        stop();
      };
      const closeAll = () =>
        end({ error: { code: SHUTTING_DOWN, message: "The gateway is shutting down." } });
      stops.add(closeAll);
      stop.then(() => {
        stops.delete(closeAll);
        source.return?.();
        release();
      });
      try {
        for await (const event of source) {
          if (ended) break;
          if (store && event.store !== store) continue;
          if (behind >= maxQueue) {
            end({
              error: {
                code: SUBSCRIBER_TOO_SLOW,
                message: `This subscriber fell ${maxQueue} events behind and was disconnected.`,
              },
            });
            break;
          }
          behind++;
          push(event).then(() => behind--, () => {});
        }
      } finally {
        end();
      }
    });
    const iterator = repeater[Symbol.asyncIterator]();
    return {
      next: () => iterator.next(),
      return: (value?: unknown) => {
        release();
        return iterator.return(value as undefined);
      },
      throw: (e?: unknown) => {
        release();
        return iterator.throw(e);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Ends every open subscription (each gets a last `SHUTTING_DOWN` event) and refuses new ones. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stop of [...this.#stops]) stop();
    await this.#closeTarget();
  }
}
