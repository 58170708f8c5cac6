/**
 * Where word events travel (the event target of server/events.ts's pub/sub):
 *
 * - {@linkcode redisEventTarget}: with `EVENTS_URL`, Redis pub/sub over two
 *   ioredis connections, so every instance sharing that Redis gets every
 *   instance's events, its own included (they come back through Redis, so
 *   every instance sees one order). One publishing connection keeps one
 *   instance's events in the order they were published.
 * - {@linkcode broadcastEventTarget}: without it, a `BroadcastChannel`, so
 *   every isolate of this process (`deno serve --parallel`, workers) gets
 *   them, and no other instance.
 *
 * Neither replays: an event published while a subscriber (or the Redis
 * connection) is away is not delivered later.
 *
 * @module
 */
import { Redis } from "ioredis";
import { clientOptions } from "../stores/redis.ts";
import type { StoreConfig } from "../stores/types.ts";
import type { WordEventTarget } from "./events.ts";

/** An event target and how to release it. */
export interface EventTransport {
  target: WordEventTarget;
  /** Closes its connections or channel. */
  close(): Promise<void>;
  /** Resolves once events published from now on are received (Redis: the channel is subscribed). */
  ready: Promise<void>;
}

/** The topic every word event is published on (a Redis channel name, too). */
export const WORD_EVENT_TOPIC = "wordEvent";

/**
 * Redis pub/sub at `config.url`, with the Redis store's connection settings
 * (TLS for `rediss:` or with `caCert`, connect timeout, capped reconnect
 * backoff; stores/redis.ts `clientOptions`). A publish while Redis is
 * unreachable is dropped and logged (never thrown into the write that caused
 * it); the subscribing connection reconnects and subscribes again on its own.
 * The channel is subscribed once, for the process's life: no
 * SUBSCRIBE/UNSUBSCRIBE churn as clients come and go.
 */
export function redisEventTarget(
  config: StoreConfig,
  log: (line: string) => void,
): EventTransport {
  const options = {
    ...clientOptions(config),
    lazyConnect: false,
    connectionName: "grand_tour_events",
  };
  // Publishing fails at once during an outage (the store's settings): an event is not worth a queue.
  const publisher = new Redis(config.url, options);
  // SUBSCRIBE waits for the connection, and is sent again after every reconnect.
  const subscriber = new Redis(config.url, {
    ...options,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
    autoResubscribe: true,
  });
  let warned = false;
  const quiet = (which: string) => (e: Error) => {
    if (warned) return;
    warned = true;
    log(`events: Redis ${which} connection: ${e.name} (EVENTS_URL); retrying`);
    setTimeout(() => warned = false, 30_000);
  };
  publisher.on("error", quiet("publishing"));
  subscriber.on("error", quiet("subscribing"));

  const local = new EventTarget();
  subscriber.on("message", (channel: string, message: string) => {
    let detail: unknown;
    try {
      detail = JSON.parse(message);
    } catch {
      return log(`events: a message on ${channel} was not JSON; dropped`);
    }
    local.dispatchEvent(new CustomEvent(channel, { detail }));
  });
  // Queued until connected (no retry limit on this connection); settles once subscribed.
  const subscribed = subscriber.subscribe(WORD_EVENT_TOPIC).then(() => {}, (e: Error) => {
    log(`events: subscribing failed: ${e.name} (EVENTS_URL)`);
  });
  // A publish before the publisher is connected would be dropped: ready waits for both.
  const publishing = new Promise<void>((resolve) => {
    if (publisher.status === "ready") resolve();
    else publisher.once("ready", () => resolve());
  });
  const ready = Promise.all([subscribed, publishing]).then(() => {});
  const target = {
    addEventListener: local.addEventListener.bind(local),
    removeEventListener: local.removeEventListener.bind(local),
    dispatchEvent(event: CustomEvent) {
      publisher.publish(event.type, JSON.stringify(event.detail ?? null)).catch((e: Error) => {
        log(`events: an event was not published: ${e.name} (EVENTS_URL unreachable)`);
      });
      return true;
    },
  } as unknown as WordEventTarget;
  return {
    target,
    ready,
    close() {
      publisher.disconnect();
      subscriber.disconnect();
      return Promise.resolve();
    },
  };
}

/**
 * A `BroadcastChannel` named `name`: an event is dispatched here at once and
 * posted to the other isolates of this process, which dispatch it there.
 */
export function broadcastEventTarget(name = "grand-tour-word-events"): EventTransport {
  const local = new EventTarget();
  const channel = new BroadcastChannel(name);
  channel.onmessage = (m: MessageEvent<{ type: string; detail: unknown }>) => {
    local.dispatchEvent(new CustomEvent(m.data.type, { detail: m.data.detail }));
  };
  const target = {
    addEventListener: local.addEventListener.bind(local),
    removeEventListener: local.removeEventListener.bind(local),
    dispatchEvent(event: CustomEvent) {
      local.dispatchEvent(new CustomEvent(event.type, { detail: event.detail }));
      channel.postMessage({ type: event.type, detail: event.detail });
      return true;
    },
  } as unknown as WordEventTarget;
  return {
    target,
    ready: Promise.resolve(),
    close() {
      channel.close();
      return Promise.resolve();
    },
  };
}
