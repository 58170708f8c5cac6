/**
 * Where word events travel (the event target of server/events.ts's pub/sub):
 *
 * - {@linkcode redisEventTarget}: with `EVENTS_URL`, Redis pub/sub through
 *   `@graphql-yoga/redis-event-target` and two ioredis connections, so every
 *   instance sharing that Redis gets every instance's events. One publishing
 *   connection keeps one instance's events in the order they were published.
 * - {@linkcode broadcastEventTarget}: without it, a `BroadcastChannel`, so
 *   every isolate of this process (`deno serve --parallel`, workers) gets
 *   them, and no other instance.
 *
 * Neither replays: an event published while a subscriber (or the Redis
 * connection) is away is not delivered later.
 *
 * @module
 */
import { Redis, type RedisOptions } from "ioredis";
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
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
 * Redis pub/sub at `config.url` (TLS for `rediss:` or with `caCert`). A
 * publish while Redis is unreachable is dropped and logged (never thrown into
 * the write that caused it); the subscribing connection reconnects and
 * subscribes again on its own.
 */
export function redisEventTarget(
  config: StoreConfig,
  log: (line: string) => void,
): EventTransport {
  const tls = config.caCert !== undefined
    ? { ca: config.caCert, rejectUnauthorized: true }
    : /^rediss:/i.test(config.url)
    ? { rejectUnauthorized: true }
    : undefined;
  const options: RedisOptions = {
    connectTimeout: config.connectTimeoutMs,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 10), 2000),
    connectionName: "grand_tour_events",
    ...(tls ? { tls } : {}),
  };
  // Publishing fails at once during an outage: an event is not worth a queue.
  const publisher = new Redis(config.url, {
    ...options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
  });
  const subscriber = new Redis(config.url, { ...options, maxRetriesPerRequest: null });
  let warned = false;
  const quiet = (which: string) => (e: Error) => {
    if (warned) return;
    warned = true;
    log(`events: Redis ${which} connection: ${e.name} (EVENTS_URL); retrying`);
    setTimeout(() => warned = false, 30_000);
  };
  publisher.on("error", quiet("publishing"));
  subscriber.on("error", quiet("subscribing"));
  const publishClient = {
    publish: (channel: string, message: string) =>
      publisher.publish(channel, message).catch((e: Error) => {
        log(`events: an event was not published: ${e.name} (EVENTS_URL unreachable)`);
        return 0;
      }),
  } as unknown as Redis;
  // (UN)SUBSCRIBE may fail with the connection (at shutdown: "Connection is closed"): never unhandled.
  const subscribeClient = {
    on(event: "message", listener: (channel: string, message: string) => void) {
      subscriber.on(event, listener);
      return subscribeClient;
    },
    subscribe: (...channels: string[]) =>
      subscriber.subscribe(...channels).catch((e: Error) => {
        log(`events: subscribing failed: ${e.name} (EVENTS_URL); retried on reconnect`);
        return 0;
      }),
    unsubscribe: (...channels: string[]) => subscriber.unsubscribe(...channels).catch(() => 0),
  } as unknown as Redis;
  const target = createRedisEventTarget({
    publishClient,
    subscribeClient,
  }) as unknown as WordEventTarget;
  // Subscribed once for the process's life: no SUBSCRIBE/UNSUBSCRIBE churn as clients come and go.
  const keep = () => {};
  target.addEventListener(WORD_EVENT_TOPIC, keep);
  const ready = new Promise<void>((resolve) => {
    const check = () => {
      if (subscriber.status === "ready") resolve();
      else setTimeout(check, 20);
    };
    check();
  });
  return {
    target,
    ready,
    async close() {
      publisher.disconnect();
      subscriber.disconnect();
      await Promise.resolve();
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
