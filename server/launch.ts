/**
 * What `deno task start` runs: reads the configuration exactly as the
 * gateway does (server/config.ts), works out the few places it reads and
 * writes and the hosts it talks to, and starts `main.ts` as a child
 * `deno run` granted only those. The paths (`SQLITE_PATH`,
 * `RABBITMQ_VIEW_PATH`, the CA files) and hosts come from the environment
 * and `.env` files, so they are known at start-up only, not in `deno.json`.
 *
 * An invalid configuration is not reported here: `main.ts` is started with
 * just enough to read it again, and says why in its own log format.
 *
 * The child keeps this process's working directory, environment and stdio.
 * SIGINT, SIGTERM and SIGHUP are passed on (the gateway drains on the first
 * two) and this process exits with the child's code. A SIGKILL cannot be
 * passed on: the child would outlive the launcher (systemd and container
 * runtimes kill the whole group).
 *
 * What stays broad, and why, is said at {@linkcode permissionFlags} and in
 * the README's Permissions section.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Config,
  ConfigError,
  ENV_FILES,
  parseConfig,
  RATE_LIMIT_REDIS,
  readEnvironment,
} from "./config.ts";
import { STORE_SETTINGS } from "../stores/registry.ts";
import { caVariables, type Env, first, splitNodes } from "../stores/settings.ts";
import type { NetworkStoreName } from "../stores/types.ts";

/** The repository: `main.ts`, `static/`, `schema.graphql`, `deno.lock`. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url)).replace(/\/$/, "");

/**
 * Stores whose drivers connect to nodes the configuration does not name:
 * MongoDB follows the replica set's member list (and `mongodb+srv://` asks
 * DNS), the Cassandra driver the ring's peers. Deno cannot grant hosts
 * learnt after start-up, so with one of them configured the network stays open.
 */
export const DISCOVERING_STORES: ReadonlySet<NetworkStoreName> = new Set(["MONGODB", "SCYLLA"]);

/** The one `sys` call the drivers make: `os.release()` (Elasticsearch's and MongoDB's client metadata). */
export const SYS_CALLS = ["osRelease"] as const;

/**
 * What the gateway reads from the repository at run time: the static page,
 * the schema, and the modules of the SQLite thread (stores/sqlite_worker.ts
 * and what it imports from stores/): Deno asks for read access to a worker's
 * modules, while those of `main.ts` load without it.
 */
export const REPOSITORY_READS = ["static", "schema.graphql", "stores"] as const;

/**
 * What a gateway of several workers (`WORKERS`) also reads: the modules of
 * its worker threads (server/worker.ts and what it imports).
 */
export const WORKER_READS = ["server", "resolvers"] as const;

/** Where the gateway runs: its working directory and the repository. Both absolute. */
export interface Placement {
  cwd: string;
  root: string;
}

/**
 * The permission flags of `main.ts` for `config` (parsed from `env`):
 *
 * - read: {@linkcode REPOSITORY_READS} ({@linkcode WORKER_READS} too with
 *   several workers), the `.env` files of the working
 *   directory, each configured store's CA file (`<STORE>_CA_CERT`) and the
 *   rate limit's Redis's (`RATE_LIMIT_REDIS_CA_CERT`), the
 *   directory of `SQLITE_PATH` and, with RabbitMQ, of `RABBITMQ_VIEW_PATH`;
 * - write: those two directories only (SQLite adds `-wal`/`-shm` files beside
 *   its database, and creates the directory when missing);
 * - net: the listening address and the hosts of the configured URLs
 *   (`RATE_LIMIT_REDIS_URL`'s and `EVENTS_URL`'s too), or every
 *   host when a store of {@linkcode DISCOVERING_STORES} is configured;
 * - env: all of it: the configuration reads the whole environment
 *   (`Deno.env.toObject()`, merged with the `.env` files), and so do drivers
 *   (`debug`, used by ioredis, lists `process.env`; pg reads `PG*` fallbacks);
 * - sys: {@linkcode SYS_CALLS}.
 *
 * With several workers, `--unstable-net` too: `Deno.serve`'s `reusePort`.
 *
 * Nothing else: no run, ffi or import. Throws {@linkcode LaunchError} for a
 * path that a Deno permission list cannot hold (one with a comma).
 */
export function permissionFlags(config: Config, env: Env, where: Placement): string[] {
  const at = (path: string) => resolve(where.cwd, path);
  const data: [string, string][] = [];
  if (config.sqlitePath !== ":memory:") data.push(["SQLITE_PATH", dirname(at(config.sqlitePath))]);
  const view = config.stores.RABBITMQ?.options.viewPath;
  if (view && view !== ":memory:") data.push(["RABBITMQ_VIEW_PATH", dirname(at(view))]);
  const stores: NetworkStoreName[] = Object.keys(config.stores) as NetworkStoreName[];
  if (config.rateLimitRedis) stores.push(RATE_LIMIT_REDIS.store);
  const code: [string, string][] = config.workers > 1
    ? WORKER_READS.map((p) => ["the repository", `${where.root}/${p}`])
    : [];
  const flags = [
    `--allow-read=${list([...configurationReads(env, where, stores), ...code, ...data])}`,
  ];
  if (data.length) flags.push(`--allow-write=${list(data)}`);
  const hosts = netHosts(config);
  flags.push(hosts ? `--allow-net=${hosts.join(",")}` : "--allow-net");
  flags.push("--allow-env", `--allow-sys=${SYS_CALLS.join(",")}`);
  // Workers listen on one port with SO_REUSEPORT, which Deno 2.9 keeps behind --unstable-net.
  if (config.workers > 1) flags.push("--unstable-net");
  return flags;
}

/**
 * The flags of `main.ts` when the configuration is invalid: enough to read
 * it again (the repository's files, the `.env` files, every CA file `env`
 * names) and report the error itself, in its own log format, before it
 * exits with code 1. No write, no network.
 */
export function reportingFlags(env: Env, where: Placement): string[] {
  const stores = [...Object.keys(STORE_SETTINGS) as NetworkStoreName[], RATE_LIMIT_REDIS.store];
  return [`--allow-read=${list(configurationReads(env, where, stores))}`, "--allow-env"];
}

/**
 * The flags of `main.ts` for the configuration in `where.cwd` and
 * `processEnv`: {@linkcode permissionFlags}, or {@linkcode reportingFlags}
 * when the configuration is invalid (main.ts then says why). Throws
 * {@linkcode ConfigError} only for what the launcher itself refuses.
 */
export function launchFlags(where: Placement, processEnv: Env = Deno.env.toObject()): string[] {
  let env = processEnv;
  try {
    env = readEnvironment(where.cwd, { ...processEnv } as Record<string, string>);
    return permissionFlags(parseConfig(env), env, where);
  } catch (e) {
    if (!(e instanceof ConfigError) || e instanceof LaunchError) throw e;
    return reportingFlags(env, where);
  }
}

/** What the launcher refuses itself: a configuration main.ts accepts but Deno's flags cannot express. */
export class LaunchError extends ConfigError {
  override name = "LaunchError";
}

/**
 * What main.ts reads to parse its configuration: its files, the `.env` files,
 * the CA files of `stores` (store names, or `RATE_LIMIT_REDIS` for the rate limit's Redis).
 */
function configurationReads(
  env: Env,
  where: Placement,
  stores: NetworkStoreName[],
): [string, string][] {
  const read: [string, string][] = [
    ...REPOSITORY_READS.map((p): [string, string] => ["the repository", `${where.root}/${p}`]),
    ...ENV_FILES.map((f): [string, string] => ["the working directory", `${where.cwd}/${f}`]),
  ];
  // EVENTS_CA_CERT: the CA of EVENTS_URL's Redis, named as a store's is
  for (const store of [...stores, "EVENTS" as NetworkStoreName]) {
    const ca = first(env, caVariables(store));
    if (ca !== undefined) read.push([caVariables(store)[0], resolve(where.cwd, ca)]);
  }
  return read;
}

/**
 * The listening address and every host the configured stores connect to
 * (any port), or undefined when a store discovers its nodes.
 */
function netHosts(config: Config): string[] | undefined {
  const hosts = [`${bracketed(config.hostname)}:${config.port}`];
  for (const store of Object.keys(config.stores) as NetworkStoreName[]) {
    if (DISCOVERING_STORES.has(store)) return undefined;
    const { url, readUrls = [] } = config.stores[store]!;
    const nodes = STORE_SETTINGS[store].nodes === "many" ? splitNodes(url) : [url];
    hosts.push(...[...nodes, ...readUrls].map((u) => new URL(u).hostname));
  }
  if (config.rateLimitRedis) hosts.push(new URL(config.rateLimitRedis.url).hostname);
  // EVENTS_URL: the Redis that carries word events between instances
  if (config.events.redis) hosts.push(new URL(config.events.redis.url).hostname);
  return [...new Set(hosts)];
}

/** An IPv6 literal in brackets, as Deno's `--allow-net` takes it with a port. */
function bracketed(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** Comma-separated, duplicates dropped; refuses a path with a comma (Deno splits lists on commas). */
function list(paths: [string, string][]): string {
  for (const [source, path] of paths) {
    if (path.includes(",")) {
      throw new LaunchError(
        `${source}: ${path} holds a comma, which a Deno permission list cannot: choose another path`,
      );
    }
  }
  return [...new Set(paths.map(([, p]) => p))].join(",");
}

/**
 * Runtime flags of the gateway's process, beyond permissions and the lock:
 * `--unstable-no-legacy-abort`, so a request's `signal` aborts only when its
 * client goes away, not after every answer (Deno 2.9's legacy default). The
 * gateway never reads it for cleanup; the legacy abort built a
 * `DOMException` and ran the abort listeners of every request (Yoga's and
 * Hono's derived signals included): about 8% of the CPU of a `words` request
 * (docs/performance.md). The benchmark runs its baseline with them too.
 */
export const RUNTIME_FLAGS = ["--unstable-no-legacy-abort"] as const;

/**
 * The child's `deno` arguments: the locked server dependencies only
 * (`deno.lock`, frozen), `flags`, no permission prompt (a refused access
 * fails instead of waiting on a terminal), {@linkcode RUNTIME_FLAGS}, the V8
 * heap setting, `main.ts`.
 */
export function childArgs(flags: string[], root = ROOT): string[] {
  return [
    "run",
    `--lock=${root}/deno.lock`,
    "--frozen",
    "--no-prompt",
    ...flags,
    ...RUNTIME_FLAGS,
    "--v8-flags=--heap-growing-percent=50",
    `${root}/main.ts`,
  ];
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

if (import.meta.main) {
  let flags: string[];
  try {
    flags = launchFlags({ cwd: Deno.cwd(), root: ROOT });
  } catch (e) {
    if (!(e instanceof LaunchError)) throw e;
    console.error(`configuration error: ${e.message}`);
    Deno.exit(1);
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: childArgs(flags),
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  for (const signal of FORWARDED) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch {
        // exited meanwhile
      }
    });
  }
  const status = await child.status;
  Deno.exit(status.code);
}
