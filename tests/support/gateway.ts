/**
 * The gateway in-process (registry + graphql-yoga, no socket) and as a real
 * server process on a free port, for tests.
 *
 * @module
 */
import { startArgs } from "../../scripts/start_command.ts";
import { createGraphQL } from "../../server/graphql.ts";
import { StoreRegistry } from "../../stores/registry.ts";
import type { StoreConfig, StoreName } from "../../stores/types.ts";

/** A GraphQL response body. */
export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string; [k: string]: unknown } }[];
}

/** The gateway without HTTP: runs operations against real stores. */
export class TestGateway {
  readonly registry: StoreRegistry;
  #graphql;

  constructor(
    stores: Partial<Record<Exclude<StoreName, "SQLITE">, StoreConfig>>,
    sqlitePath = ":memory:",
  ) {
    this.registry = new StoreRegistry({
      sqlitePath,
      stores,
      requestTimeoutMs: 5000,
      connectTimeoutMs: 1500,
      reconnectMaxMs: 1000,
      log: () => {},
    }).start();
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

/** A real `main.ts` process listening on a free port. */
export interface ServerProcess {
  url: string;
  child: Deno.ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `main.ts` as `deno task start` runs it, with `env` (plus PORT=0) in `cwd` (a temp directory by
 * default, so no `.env` files are read) and waits for its listening line.
 */
export async function startServer(
  env: Record<string, string> = {},
  cwd?: string,
): Promise<ServerProcess> {
  const dir = cwd ?? await Deno.makeTempDir({ prefix: "gateway-test-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: startArgs(),
    cwd: dir,
    env: { PORT: "0", HOST: "127.0.0.1", SQLITE_PATH: ":memory:", NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  const deadline = Date.now() + 20_000;
  let port: string | undefined;
  while (!port) {
    port = text.match(/Listening on http:\/\/localhost:(\d+)\//)?.[1];
    if (port) break;
    if (exited) {
      await done;
      throw new Error(`server exited with code ${exited.code} before listening:\n${text}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`server did not start within 20 s:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    output: () => text,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
      const status = await child.status;
      await done;
      return status;
    },
  };
}

/** A random tag that keeps one test's words apart from every other run's. */
export function uniqueTag(): string {
  return "t" + crypto.randomUUID().replaceAll("-", "").slice(0, 11);
}
