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

/** What a test needs of the matrix that may be missing: its name and how to start it. */
export interface Need {
  /** Why the test cannot run, or undefined when it can: `"POSTGRESQL_READ_URL is not set"`. */
  missing: string | undefined;
  /** The command that provides it: `deno task matrix up --cluster`. */
  start: string;
  /** One warning per group of tests skipped for the same reason (default: the test's name). */
  group?: string;
}

/**
 * Registers a test that needs something only the matrix gives (a store, its
 * replicas, a cluster). Without it: ignored with one loud warning per group
 * on a laptop, a failing test in CI, where every part of the matrix is required.
 */
export function requiredTest(
  name: string,
  need: Need,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: { sanitizeResources?: boolean } = {},
): void {
  const { missing, start } = need;
  const group = need.group ?? name;
  if (missing !== undefined && !IN_CI) {
    if (!warned.has(group)) {
      warned.add(group);
      console.warn(
        `\n!!! SKIPPING ${group}: ${missing}. Run \`${start}\`. In CI this fails.\n`,
      );
    }
    Deno.test({ name, ignore: true, fn: () => {} });
    return;
  }
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: options.sanitizeResources ?? false,
    fn: async (t) => {
      if (missing !== undefined) {
        throw new Error(`required in CI: ${missing} (${start})`);
      }
      await fn(t);
    },
  });
}

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
  requiredTest(
    `${store}: ${name}`,
    {
      missing: missing
        ? `${store}_URL (or its matrix TLS or replica settings) is not set`
        : undefined,
      start: "deno task matrix up",
      group: `${store} tests`,
    },
    async (t) => {
      const { readUrls: _, ...primaryOnly } = cfg!;
      await fn(primaryOnly, t);
    },
    options,
  );
}

/** The first URL of a store's URL list (for raw clients that take one node). */
export function firstUrl(config: StoreConfig): string {
  return config.url.split(",")[0].trim();
}
