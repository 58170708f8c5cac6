/**
 * The two ways a store call fails that a client may see, and the redaction
 * that keeps connection strings, user names and passwords out of every
 * message and log.
 *
 * @module
 */
import type { StoreName } from "./types.ts";

/** The store is known but has no URL configured. */
export class StoreNotConfiguredError extends Error {
  override name = "StoreNotConfiguredError";
  constructor(readonly store: StoreName) {
    super(`${store} is not configured: set ${store}_URL to enable it`);
  }
}

/** The store is configured but cannot serve now. The message names the store and a fixed reason only. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  constructor(readonly store: StoreName, readonly reason: string) {
    super(`${store} is unavailable: ${reason}`);
  }
}

const MARK = "[redacted]";
const CREDENTIALS_IN_URL = /([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi;
/** Literals shorter than this are only redacted where a driver quotes them (see {@linkcode QUOTED_USERS}). */
const MIN_LITERAL = 3;

/**
 * Where drivers and servers quote a database user name in their messages,
 * whatever its length (a 1–2 character name is not replaced blindly):
 * PostgreSQL `user "x"` and `role "x"`, MySQL/MariaDB `user 'x'@'host'`,
 * RabbitMQ `user 'x'`, Elasticsearch `user [x]` (brackets included), Cassandra/Scylla
 * `username x and/or password`, Cassandra/Scylla/Redis `User x has no …`
 * and Cassandra's `x is not permitted to log in`. A quote inside a name does
 * not end the match early: the closing quote must be followed by the end or
 * punctuation.
 */
const QUOTED_USERS: readonly RegExp[] = [
  /(?<=\b(?:user(?:name)?|role) (["'`])).*?(?=\1(?:$|[\s,.;:)\]@'"]))/gi,
  /(?<=\buser )\[.*?\](?=$|[\s,.;:)])/gi,
  /(?<=\busername ).+?(?= and\/or password)/gi,
  /(?<=\buser ).+?(?= has no )/gi,
  /(?<=: )[^:\n]*?(?= is not permitted to log in)/g,
];

/**
 * Removes secrets from a text meant for a log: userinfo in any URL, user
 * names where drivers quote them, and every literal `secrets` entry of three
 * or more characters (passwords, user names, whole connection strings; the
 * longest first, so a URL goes as a whole even when it contains another
 * secret).
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  const literals = [...new Set(secrets)].filter((s) => s.length >= MIN_LITERAL)
    .sort((a, b) => b.length - a.length);
  // Markers already in the text (a line redacted twice) are kept whole.
  let out = text.split(MARK).map((piece) => {
    for (const s of literals) piece = piece.replaceAll(s, MARK);
    return piece;
  }).join(MARK);
  out = out.replace(CREDENTIALS_IN_URL, `$1${MARK}@`);
  for (const pattern of QUOTED_USERS) {
    out = out.replace(pattern, (name) => name === MARK ? name : MARK);
  }
  return out;
}

/**
 * The secrets that a store URL (or a comma-separated list of them, such as
 * `SCYLLA_URL`'s contact points) carries: the URL and each part, and every
 * user name and password both as written and percent-decoded, as drivers
 * quote them.
 */
export function secretsOf(url: string): string[] {
  const out = [url];
  for (const part of [url, ...url.split(",")].map((p) => p.trim())) {
    let u: URL;
    try {
      // A contact point without a scheme is read as scylla.ts reads it (`user@host:port`).
      u = new URL(part.includes("://") ? part : `cassandra://${part}`);
    } catch {
      continue;
    }
    if (part.includes("://")) out.push(part);
    for (const s of [u.username, u.password]) if (s) out.push(s, decoded(s));
  }
  return [...new Set(out)];
}

/** The secrets of a store's configuration: those of its URL and of each read replica's. */
export function secretsOfConfig(config: { url: string; readUrls?: readonly string[] }): string[] {
  return [...new Set([config.url, ...(config.readUrls ?? [])].flatMap(secretsOf))];
}

/** `s` percent-decoded, or `s` itself when it is not valid percent-encoding. */
function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
