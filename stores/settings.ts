/**
 * How a store declares the settings it reads at start-up, and the one
 * parser that applies a declaration to the environment. Each store declares
 * itself in `stores/<store>_settings.ts` (a few lines, no driver import, so
 * reading the configuration never loads a driver): its URL schemes, whether
 * `<STORE>_URL` may list several nodes, whether `<STORE>_READ_URL` names
 * read replicas, and its own variables. server/config.ts loops over them.
 *
 * Every store gets the same variables from this module: `<STORE>_URL`
 * (`COMPOSE_<STORE>_URL`, the classic tutorials' name, too), `<STORE>_CA_CERT`
 * (`PATH_TO_<STORE>_CERT`) and, where declared, `<STORE>_READ_URL`. Messages
 * name the variable and never echo a URL: it may hold a password.
 *
 * @module
 */
import type { NetworkStoreName, StoreConfig } from "./types.ts";

/** The environment as configuration reads it: `.env` files under the process environment. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A malformed configuration value; the message names the variable, never its secret value. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** What one store reads from the environment, and how it checks it. */
export interface StoreSettings {
  store: NetworkStoreName;
  /** URL schemes accepted, canonical first; `undefined`: any scheme (Cassandra contact points). */
  schemes?: readonly string[];
  /** Whether a node may be a bare `host`, `host:port` or `[ipv6]:port` instead of a URL. */
  bareHosts?: boolean;
  /** Whether `<STORE>_URL` may list the nodes of one cluster, comma-separated. */
  nodes: "one" | "many";
  /**
   * Whether `<STORE>_READ_URL` may name read replicas (one or more URLs,
   * comma-separated, same schemes, CA and credentials rules as the primary).
   */
  replicas: boolean;
  /** What to tell a user who sets `<STORE>_READ_URL` on a store without replicas. */
  noReplicas?: string;
  /**
   * A store-specific check of one URL instead of `URL` parsing and the scheme
   * check (e.g. MongoDB's multi-host syntax): the problem, worded to follow
   * the variable's name ("must start with …"), or undefined.
   */
  checkUrl?(url: string): string | undefined;
  /** Parses the store's own variables into `StoreConfig.options`; throws {@linkcode ConfigError}. */
  options?(env: Env): Record<string, string>;
  /**
   * Set when a URL's path names the database (`default` when it names none).
   * Read replicas serve the primary's database: a `<STORE>_READ_URL` naming
   * another is refused, and one naming none is given the primary's.
   */
  database?: { default: string };
}

/** Store URL variables, new name first, then the classic tutorials' name. */
export function urlVariables(store: NetworkStoreName | "SQLITE"): string[] {
  return [`${store}_URL`, `COMPOSE_${store}_URL`];
}

/** CA certificate path variables, new name first, then the classic tutorials' name. */
export function caVariables(store: NetworkStoreName | "SQLITE"): string[] {
  return [`${store}_CA_CERT`, `PATH_TO_${store}_CERT`];
}

/**
 * The variable that gives `store` its own budget per call, over the
 * gateway's `REQUEST_TIMEOUT_MS` (as GraphQL Mesh, Hive Gateway and Apollo
 * Router give each source its own timeout): a cluster whose failover takes
 * longer than the gateway-wide budget (an Elasticsearch master election)
 * would otherwise fail every call in flight when it loses a node.
 */
export function timeoutVariable(store: NetworkStoreName): string {
  return `${store}_TIMEOUT_MS`;
}

/** Bounds of every per-call budget, the gateway-wide one and each store's. */
export const TIMEOUT_RANGE_MS = { min: 50, max: 60_000 } as const;

/** The read replicas variable of `store`. */
export function readUrlVariable(store: NetworkStoreName): string {
  return `${store}_READ_URL`;
}

/** What is wrong with the scheme of `url` for `settings`, or undefined when it is accepted. */
export function schemeProblem(
  settings: StoreSettings,
  url: URL,
  variable?: string,
): string | undefined {
  const schemes = settings.schemes;
  if (!schemes || schemes.includes(url.protocol.replace(/:$/, ""))) return undefined;
  return `${variable ?? `${settings.store}_URL`} must start with ${
    schemes.map((s) => `${s}://`).join(" or ")
  }`;
}

/** The comma-separated parts of a node list, trimmed, empty parts dropped. */
export function splitNodes(list: string): string[] {
  return list.split(",").map((s) => s.trim()).filter(Boolean);
}

/**
 * Applies `settings` to `env`: the store's {@linkcode StoreConfig}, or
 * undefined when its URL is unset. Throws {@linkcode ConfigError}.
 */
export function parseStoreSettings(
  settings: StoreSettings,
  env: Env,
  readFile: (path: string) => string,
  connectTimeoutMs: number,
): StoreConfig | undefined {
  const { store } = settings;
  const url = first(env, urlVariables(store));
  const caPath = first(env, caVariables(store));
  const readVar = readUrlVariable(store);
  const readUrl = env[readVar]?.trim() || undefined;
  const timeoutVar = timeoutVariable(store);
  const timeout = env[timeoutVar]?.trim()
    ? intVariable(env, timeoutVar, 0, TIMEOUT_RANGE_MS.min, TIMEOUT_RANGE_MS.max)
    : undefined;
  if (readUrl !== undefined && !settings.replicas) {
    throw new ConfigError(`${readVar} is not supported: ${settings.noReplicas ?? "no replicas"}`);
  }
  if (url === undefined) {
    const orphan = caPath !== undefined
      ? caVariables(store)[0]
      : readUrl
      ? readVar
      : timeout !== undefined && timeoutVar;
    if (orphan) throw new ConfigError(`${orphan} is set but ${store}_URL is not`);
    return undefined;
  }
  checkList(settings, url, `${store}_URL`, settings.nodes === "many");
  let readUrls = readUrl === undefined ? [] : splitNodes(readUrl);
  if (readUrl !== undefined) checkList(settings, readUrl, readVar, true);
  if (settings.database) readUrls = onPrimaryDatabase(settings, url, readUrls);
  return {
    url,
    ...(readUrls.length ? { readUrls } : {}),
    caCert: caPath === undefined ? undefined : readCa(caVariables(store)[0], caPath, readFile),
    connectTimeoutMs,
    ...(timeout !== undefined ? { requestTimeoutMs: timeout } : {}),
    options: settings.options?.(env) ?? {},
  };
}

/** The database a URL's path names, if any. */
function databaseOf(url: URL): string | undefined {
  return decodeURIComponent(url.pathname.replace(/^\//, "")) || undefined;
}

/** `readUrls`, each on the primary's database (named in it when it names none); refuses another. */
function onPrimaryDatabase(settings: StoreSettings, url: string, readUrls: string[]): string[] {
  const want = databaseOf(new URL(url)) ?? settings.database!.default;
  return readUrls.map((raw) => {
    const replica = new URL(raw);
    const named = databaseOf(replica);
    if (named === undefined) {
      replica.pathname = `/${encodeURIComponent(want)}`;
      return replica.toString();
    }
    if (named !== want) {
      throw new ConfigError(
        `${readUrlVariable(settings.store)} names database ${
          JSON.stringify(named)
        } and ${settings.store}_URL ${
          JSON.stringify(want)
        }: a replica serves the primary's database`,
      );
    }
    return raw;
  });
}

/** Checks each node of `list` without ever echoing it. */
function checkList(settings: StoreSettings, list: string, variable: string, many: boolean): void {
  const parts = many ? splitNodes(list) : [list];
  if (parts.length === 0) throw new ConfigError(`${variable} names no node`);
  const what = settings.bareHosts
    ? "list of contact points (host:port or URLs)"
    : many
    ? "comma-separated list of URLs"
    : "URL";
  for (const part of parts) {
    const bare = settings.bareHosts && !part.includes("://");
    if (bare) {
      if (!/^[^\s:/,]+(:\d{1,5})?$/.test(part) && !/^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(part)) {
        throw new ConfigError(`${variable} is not a valid ${what}`);
      }
      continue;
    }
    const own = settings.checkUrl?.(part);
    if (own !== undefined) throw new ConfigError(`${variable} ${own}`);
    if (!settings.checkUrl && !URL.canParse(part)) {
      throw new ConfigError(`${variable} is not a valid ${what}`);
    }
    const problem = settings.checkUrl
      ? undefined
      : schemeProblem(settings, new URL(part), variable);
    if (problem) throw new ConfigError(problem);
  }
}

function readCa(variable: string, path: string, readFile: (path: string) => string): string {
  let pem: string;
  try {
    pem = readFile(path);
  } catch (e) {
    throw new ConfigError(
      `${variable}: cannot read CA certificate at ${path}: ${(e as Error).name}`,
    );
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError(`${variable}: ${path} is not a PEM certificate`);
  }
  return pem;
}

/** The first of `names` that is set to something other than blanks. */
export function first(env: Env, names: string[]): string | undefined {
  for (const n of names) {
    const v = env[n]?.trim();
    if (v) return v;
  }
  return undefined;
}

/** A whole number variable within `[min, max]`, or `fallback` when unset. */
export function intVariable(env: Env, name: string, fallback: number, min: number, max: number) {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}
