/**
 * Which stores a run can measure and how to reach them: the configuration
 * the gateway itself would read (environment over `.env` and `.env.matrix`),
 * each store's module, the matrix service behind it, and the environment
 * handed to the gateway and baseline processes.
 *
 * @module
 */
import { caVariables, parseConfig, readEnvironment, urlVariables } from "../../server/config.ts";
import { readUrlVariable, timeoutVariable } from "../../stores/settings.ts";
import {
  type OpenStore,
  STORE_NAMES,
  type StoreConfig,
  type StoreName,
} from "../../stores/types.ts";

/** The repository root (where `.env.matrix` lives). */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** Each store's module; the same files the gateway's registry loads. */
const MODULES: Record<StoreName, () => Promise<{ open: OpenStore }>> = {
  SQLITE: () => import("../../stores/sqlite.ts"),
  MONGODB: () => import("../../stores/mongodb.ts"),
  POSTGRESQL: () => import("../../stores/postgresql.ts"),
  MYSQL: () => import("../../stores/mysql.ts"),
  SCYLLA: () => import("../../stores/scylla.ts"),
  ELASTICSEARCH: () => import("../../stores/elasticsearch.ts"),
  REDIS: () => import("../../stores/redis.ts"),
  RABBITMQ: () => import("../../stores/rabbitmq.ts"),
};

/** The merged environment of the gateway: process env over `.env` over `.env.matrix`. */
export function benchEnvironment(): Record<string, string> {
  return readEnvironment(ROOT);
}

/** Connection settings of every configured store; SQLite uses `sqlitePath`. */
export function storeConfigs(
  env: Record<string, string>,
  sqlitePath: string,
): Partial<Record<StoreName, StoreConfig>> {
  const config = parseConfig({ ...env, SQLITE_PATH: sqlitePath });
  return {
    SQLITE: { url: sqlitePath, connectTimeoutMs: config.connectTimeoutMs, options: {} },
    ...config.stores,
  };
}

/** Opens `store` through its own module, as the gateway would. */
export async function openStore(store: StoreName, config: StoreConfig) {
  return (await MODULES[store]()).open(config);
}

/**
 * The environment for a gateway or baseline process measuring `stores`:
 * `env` without the URL, replica, CA and timeout variables of every other store (so
 * nothing else reconnects in the background), plus `extra`.
 */
export function childEnvironment(
  env: Record<string, string>,
  stores: readonly StoreName[],
  extra: Record<string, string>,
): Record<string, string> {
  const out = { ...env };
  for (const store of STORE_NAMES) {
    if (stores.includes(store)) continue;
    for (const v of [...urlVariables(store), ...caVariables(store)]) delete out[v];
    if (store === "SQLITE") continue;
    // A replica list or a timeout without its store's URL is a configuration error (the cluster
    // topology sets both).
    delete out[readUrlVariable(store)];
    delete out[timeoutVariable(store)];
  }
  return { ...out, ...extra };
}
