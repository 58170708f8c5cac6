/**
 * How tests find the real databases: the same configuration parser the
 * gateway uses, over the environment and `.env` / `.env.matrix`. A store that
 * is not configured is skipped loudly on a laptop and fails the run in CI
 * (`CI` set), where every store is required.
 *
 * @module
 */
import { parseConfig, readEnvironment } from "../../server/config.ts";
import type { StoreConfig, StoreName } from "../../stores/types.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The merged environment tests run with (process env over `.env` and `.env.matrix`). */
export const testEnv: Record<string, string> = readEnvironment(ROOT);

/** True in CI, where a missing store is a failure, not a skip. */
export const IN_CI = Boolean(testEnv.CI);

const config = parseConfig(testEnv);

/** The store's configuration from the environment, or undefined when it is not configured. */
export function storeConfig(store: StoreName): StoreConfig | undefined {
  if (store === "SQLITE") {
    return { url: ":memory:", connectTimeoutMs: 1500, options: {} };
  }
  return config.stores[store];
}

/** The matrix's TLS URL and CA for `store`, when the matrix offers TLS for it. */
export function tlsStoreConfig(store: StoreName): StoreConfig | undefined {
  const url = testEnv[`MATRIX_${store}_TLS_URL`];
  const caPath = testEnv.MATRIX_CA_CERT;
  const base = storeConfig(store);
  if (!url || !caPath || !base) return undefined;
  return { ...base, url, caCert: Deno.readTextFileSync(caPath) };
}

const warned = new Set<string>();

/**
 * Registers a test that needs `store`'s real database. Unconfigured: ignored
 * with a loud warning on a laptop; a failing test in CI. `fn` gets the
 * primary's configuration without read replicas: a test that writes around
 * the store (a raw client, another database) and reads through it would race
 * replication, which no gateway promises. Tests through the gateway
 * ({@linkcode storeConfig}) and tests/stores/read_replicas_test.ts use the
 * replicas.
 */
export function storeTest(
  store: StoreName,
  name: string,
  fn: (config: StoreConfig, t: Deno.TestContext) => Promise<void>,
  options: { needs?: (StoreConfig | undefined)[]; sanitizeResources?: boolean } = {},
): void {
  const cfg = storeConfig(store);
  const missing = !cfg || (options.needs ?? []).some((n) => n === undefined);
  const fullName = `${store}: ${name}`;
  if (missing && !IN_CI) {
    if (!warned.has(store)) {
      warned.add(store);
      console.warn(
        `\n!!! SKIPPING ${store} tests: ${store}_URL (or its matrix TLS settings) is not set.` +
          ` Run \`deno task matrix up\` to start the real servers. In CI this fails.\n`,
      );
    }
    Deno.test({ name: fullName, ignore: true, fn: () => {} });
    return;
  }
  Deno.test({
    name: fullName,
    sanitizeOps: false,
    sanitizeResources: options.sanitizeResources ?? false,
    fn: async (t) => {
      if (missing) {
        throw new Error(
          `${store} is required in CI but not configured: set ${store}_URL (deno task matrix up)`,
        );
      }
      const { readUrls: _, ...primaryOnly } = cfg!;
      await fn(primaryOnly, t);
    },
  });
}

/** The first URL of a store's URL list (for raw clients that take one node). */
export function firstUrl(config: StoreConfig): string {
  return config.url.split(",")[0].trim();
}
