/**
 * Scaffolding the per-store tests share: a store opened for one block, and a
 * configuration moved to a scratch database.
 *
 * @module
 */
import type { StoreConfig, WordStore } from "../../stores/types.ts";

/** Opens a store with `open(config)`, runs `fn` on it, and closes it whatever happens. */
export async function withOpened<T>(
  open: (config: StoreConfig) => Promise<WordStore>,
  config: StoreConfig,
  fn: (store: WordStore) => Promise<T>,
): Promise<T> {
  const store = await open(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** `config` with the database its URLs name (their path) replaced by `database`, read replicas too. */
export function onDatabase(config: StoreConfig, database: string): StoreConfig {
  const on = (url: string) => {
    const u = new URL(url);
    u.pathname = `/${database}`;
    return u.toString();
  };
  return {
    ...config,
    url: on(config.url),
    ...(config.readUrls ? { readUrls: config.readUrls.map(on) } : {}),
  };
}
