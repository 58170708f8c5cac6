/**
 * The gateway in-process (registry + graphql-yoga, no socket) and as a real
 * server process on a free port, for tests.
 *
 * @module
 */
import { type ServerProcess, startProcess } from "../../scripts/server_process.ts";
import { startArgs } from "../../scripts/start_command.ts";
import { createGraphQL } from "../../server/graphql.ts";
import { type RegistryOptions, StoreRegistry } from "../../stores/registry.ts";
import type { NetworkStoreName, StoreConfig } from "../../stores/types.ts";

/** A GraphQL response body. */
export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string; [k: string]: unknown } }[];
}

/**
 * A started store registry as the in-process tests use it: SQLite in memory,
 * `stores` (none by default), short timeouts, silent unless `TEST_STORE_LOG`
 * is set; `extra` overrides any of it.
 */
export function testRegistry(
  stores: Partial<Record<NetworkStoreName, StoreConfig>> = {},
  extra: Partial<RegistryOptions> = {},
): StoreRegistry {
  return new StoreRegistry({
    sqlitePath: ":memory:",
    stores,
    requestTimeoutMs: 5000,
    connectTimeoutMs: 1500,
    reconnectMaxMs: 1000,
    log: Deno.env.get("TEST_STORE_LOG") ? console.error : () => {},
    ...extra,
  }).start();
}

/** The gateway without HTTP: runs operations against real stores. */
export class TestGateway {
  readonly registry: StoreRegistry;
  #graphql;

  constructor(
    stores: Partial<Record<NetworkStoreName, StoreConfig>>,
    sqlitePath = ":memory:",
  ) {
    this.registry = testRegistry(stores, { sqlitePath });
    this.#graphql = createGraphQL({ registry: this.registry, graphiql: false });
  }

  /** Runs one operation and returns the parsed body. */
  async exec(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLBody> {
    const res = await this.#graphql.fetch("http://test/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    return await res.json();
  }

  close(): Promise<void> {
    return this.registry.close();
  }
}

export type { ServerProcess };

/**
 * Starts `main.ts` as `deno task start` runs it, with `env` (plus PORT=0) in `cwd` (a temp directory by
 * default, so no `.env` files are read) and waits for its listening line; keeps all of its output.
 */
export async function startServer(
  env: Record<string, string> = {},
  cwd?: string,
): Promise<ServerProcess> {
  return await startProcess({
    args: startArgs(),
    env: { PORT: "0", HOST: "127.0.0.1", SQLITE_PATH: ":memory:", NO_COLOR: "1", ...env },
    cwd: cwd ?? await Deno.makeTempDir({ prefix: "gateway-test-" }),
    startMs: 20_000,
  });
}

/** A random tag that keeps one test's words apart from every other run's. */
export function uniqueTag(): string {
  return "t" + crypto.randomUUID().replaceAll("-", "").slice(0, 11);
}
