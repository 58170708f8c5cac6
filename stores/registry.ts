/**
 * The registry: which store module serves which `Store` value, built once
 * from configuration. Each configured store gets one {@linkcode ManagedStore};
 * drivers are imported only for stores that are configured.
 *
 * @module
 */
import {
  ManagedStore,
  type StoreCallObserver,
  type StoreHealth,
  type StoreLog,
} from "./managed.ts";
import { secretsOfConfig, StoreNotConfiguredError } from "./errors.ts";
import { settings as elasticsearch } from "./elasticsearch_settings.ts";
import { settings as mongodb } from "./mongodb_settings.ts";
import { settings as mysql } from "./mysql_settings.ts";
import { settings as postgresql } from "./postgresql_settings.ts";
import { settings as rabbitmq } from "./rabbitmq_settings.ts";
import { settings as redis } from "./redis_settings.ts";
import { settings as scylla } from "./scylla_settings.ts";
import type { StoreSettings } from "./settings.ts";
import {
  type NetworkStoreName,
  type OpenStore,
  STORE_NAMES,
  type StoreConfig,
  type StoreName,
} from "./types.ts";

/** Where each store's module lives. One file per database. */
const MODULES: Record<StoreName, () => Promise<{ open: OpenStore }>> = {
  SQLITE: () => import("./sqlite.ts"),
  MONGODB: () => import("./mongodb.ts"),
  POSTGRESQL: () => import("./postgresql.ts"),
  MYSQL: () => import("./mysql.ts"),
  SCYLLA: () => import("./scylla.ts"),
  ELASTICSEARCH: () => import("./elasticsearch.ts"),
  REDIS: () => import("./redis.ts"),
  RABBITMQ: () => import("./rabbitmq.ts"),
};

/**
 * What each network store reads from the environment, declared by the store
 * (`<store>_settings.ts`, no driver imported); server/config.ts loops over it.
 */
export const STORE_SETTINGS: Readonly<Record<NetworkStoreName, StoreSettings>> = {
  MONGODB: mongodb,
  POSTGRESQL: postgresql,
  MYSQL: mysql,
  SCYLLA: scylla,
  ELASTICSEARCH: elasticsearch,
  REDIS: redis,
  RABBITMQ: rabbitmq,
};

/** What the registry needs from the gateway's configuration. */
export interface RegistryOptions {
  sqlitePath: string;
  stores: Partial<Record<NetworkStoreName, StoreConfig>>;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  reconnectMaxMs: number;
  /** Where the stores' connection events go (server/log.ts `storeLog`). */
  log?: StoreLog;
  /** Told of every store call and ping (server/metrics.ts); stores know nothing of metrics. */
  observe?: StoreCallObserver;
  /** Gateway workers in this process, which share read-your-writes (default 1). */
  workers?: number;
}

/** One store's status for `/readyz` and the `stores` query. */
export interface StoreStatus extends StoreHealth {
  store: StoreName;
  configured: boolean;
}

/** The configured stores, each behind a {@linkcode ManagedStore}. */
export class StoreRegistry {
  #stores = new Map<StoreName, ManagedStore>();

  constructor(options: RegistryOptions) {
    const configs: Partial<Record<StoreName, StoreConfig>> = {
      SQLITE: { url: options.sqlitePath, connectTimeoutMs: options.connectTimeoutMs, options: {} },
      ...options.stores,
    };
    for (const name of STORE_NAMES) {
      const config = configs[name];
      if (!config) continue;
      // The store's own budget (`<STORE>_TIMEOUT_MS`) over the gateway's.
      const requestTimeoutMs = config.requestTimeoutMs ?? options.requestTimeoutMs;
      const workers = options.workers ?? 1;
      this.#stores.set(
        name,
        new ManagedStore({
          name,
          open: async () => (await MODULES[name]()).open({ ...config, requestTimeoutMs, workers }),
          requestTimeoutMs,
          connectTimeoutMs: config.connectTimeoutMs,
          reconnectMaxMs: options.reconnectMaxMs,
          secrets: secretsOfConfig(config),
          log: options.log,
          observe: options.observe,
        }),
      );
    }
  }

  /** Starts connecting every configured store in the background. */
  start(): this {
    for (const s of this.#stores.values()) s.start();
    return this;
  }

  /**
   * Resolves once the embedded SQLite store is open (it opens on its own
   * thread, in milliseconds), so the gateway listens with it serving; rejects
   * after `ms`. Network stores keep connecting in the background.
   */
  embeddedReady(ms = 10_000): Promise<void> {
    return this.get("SQLITE").whenReady(ms);
  }

  /** The configured stores, SQLite first, in {@linkcode STORE_NAMES} order. */
  configured(): StoreName[] {
    return [...this.#stores.keys()];
  }

  /** The managed store for `name`; throws {@linkcode StoreNotConfiguredError} when it has no URL. */
  get(name: StoreName): ManagedStore {
    const store = this.#stores.get(name);
    if (!store) throw new StoreNotConfiguredError(name);
    return store;
  }

  /** Health of every known store, configured or not, checked concurrently. */
  status(): Promise<StoreStatus[]> {
    return Promise.all(STORE_NAMES.map(async (store): Promise<StoreStatus> => {
      const managed = this.#stores.get(store);
      if (!managed) return { store, configured: false, healthy: false, message: "not configured" };
      return { store, configured: true, ...(await managed.health()) };
    }));
  }

  /** Closes every store; never rejects. */
  async close(): Promise<void> {
    await Promise.all([...this.#stores.values()].map((s) => s.close()));
  }
}
