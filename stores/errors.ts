/**
 * The two ways a store call fails that a client may see, and the redaction
 * that keeps connection strings and passwords out of every message and log.
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

const CREDENTIALS_IN_URL = /([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi;

/**
 * Removes secrets from a text meant for a log: userinfo in any URL, and every
 * literal `secrets` entry (passwords, whole connection strings).
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.replaceAll(s, "[redacted]");
  return out.replace(CREDENTIALS_IN_URL, "$1[redacted]@");
}

/** The secrets that a store URL (or a comma-separated list of them) carries. */
export function secretsOf(url: string): string[] {
  const out = [url];
  for (const part of url.split(",")) {
    try {
      const u = new URL(part.trim());
      if (u.password) out.push(u.password, decodeURIComponent(u.password));
      out.push(part.trim());
    } catch {
      // host:port contact points carry no secret
    }
  }
  return out;
}
