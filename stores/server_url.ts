/**
 * Reading host, port, credentials and database out of a
 * `scheme://user:password@host:port/database` URL, with the schemes the
 * store's settings accept (checked once at start-up by server/config.ts, and
 * again here by the store that opens it). Errors name the
 * variable and never echo the URL: it may hold a password.
 *
 * @module
 */
import { schemeProblem, type StoreSettings } from "./settings.ts";

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
 * Reads `scheme://user:password@host:port/database` for the store of `settings` (user,
 * password and database percent-decoded); `port` and `database` are used
 * when the URL has none. Throws on a URL that does not parse, a scheme not
 * `settings` does not accept, or no host. `variable` names the URL in messages.
 */
export function parseServerUrl(
  settings: StoreSettings,
  raw: string,
  defaults: { port: number; database: string },
  variable = `${settings.store}_URL`,
): ServerTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${variable} is not a valid URL`);
  }
  const problem = schemeProblem(settings, url, variable);
  if (problem) throw new Error(problem);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new Error(`${variable} has no host`);
  return {
    host,
    port: url.port ? Number(url.port) : defaults.port,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, "")) || defaults.database,
  };
}
