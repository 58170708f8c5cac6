/**
 * The `<STORE>_URL` rules every network store shares: which schemes it
 * accepts (checked once at start-up by server/config.ts, and again by the
 * store that opens it), and reading host, port, credentials and database out
 * of a `scheme://user:password@host:port/database` URL. Errors name the
 * variable and never echo the URL: it may hold a password.
 *
 * @module
 */
import type { NetworkStoreName } from "./types.ts";

/**
 * The schemes each store's URL may use, canonical first. Scylla's contact
 * points may be bare `host:port`, or URLs with any scheme, so it has none.
 */
export const URL_SCHEMES: Readonly<Record<NetworkStoreName, readonly string[] | undefined>> = {
  MONGODB: ["mongodb", "mongodb+srv"],
  POSTGRESQL: ["postgres", "postgresql"],
  MYSQL: ["mysql", "mariadb"],
  SCYLLA: undefined,
  ELASTICSEARCH: ["http", "https"],
  REDIS: ["redis", "rediss"],
  RABBITMQ: ["amqp", "amqps"],
};

/** What is wrong with the scheme of `url` for `store`, or undefined when it is one of {@linkcode URL_SCHEMES}. */
export function schemeProblem(store: NetworkStoreName, url: URL): string | undefined {
  const schemes = URL_SCHEMES[store];
  if (!schemes || schemes.includes(url.protocol.replace(/:$/, ""))) return undefined;
  return `${store}_URL must start with ${schemes.map((s) => `${s}://`).join(" or ")}`;
}

/** Where a SQL server is and who to log in as. */
export interface ServerTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** From the URL's path, or the default. */
  database: string;
}

/**
 * Reads `scheme://user:password@host:port/database` for `store` (user,
 * password and database percent-decoded); `port` and `database` are used
 * when the URL has none. Throws on a URL that does not parse, a scheme not
 * in {@linkcode URL_SCHEMES}, or no host.
 */
export function parseServerUrl(
  store: NetworkStoreName,
  raw: string,
  defaults: { port: number; database: string },
): ServerTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${store}_URL is not a valid URL`);
  }
  const problem = schemeProblem(store, url);
  if (problem) throw new Error(problem);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new Error(`${store}_URL has no host`);
  return {
    host,
    port: url.port ? Number(url.port) : defaults.port,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, "")) || defaults.database,
  };
}
