/**
 * Configuration: read once at start-up from the environment and optional
 * `.env` files, validated, and frozen. Nothing else reads `Deno.env`.
 *
 * @module
 */
import { parse as parseDotenv } from "dotenv";
import { schemeProblem } from "../stores/server_url.ts";
import {
  type NetworkStoreName,
  STORE_NAMES,
  type StoreConfig,
  type StoreName,
} from "../stores/types.ts";

/** Everything the gateway needs to start. */
export interface Config {
  port: number;
  hostname: string;
  /** File of the embedded SQLite store, or `:memory:`. */
  sqlitePath: string;
  /** Connection settings of every configured network store (SQLite is always configured). */
  stores: Partial<Record<NetworkStoreName, StoreConfig>>;
  /** Milliseconds a store call may take before it answers STORE_UNAVAILABLE. */
  requestTimeoutMs: number;
  /** Milliseconds a connection attempt may take. */
  connectTimeoutMs: number;
  /** Upper bound of the reconnect backoff, in milliseconds. */
  reconnectMaxMs: number;
  /** On SIGTERM/SIGINT, milliseconds of serving with `Connection: close` before shutting down. */
  shutdownDrainMs: number;
  /** Whether GraphiQL and introspection are served. */
  graphiql: boolean;
  /** Whether responses carry a `Server-Timing` entry per store call (`SERVER_TIMING`). */
  serverTiming: boolean;
  /** Limits and access rules of the HTTP and GraphQL layer. */
  security: SecurityConfig;
}

/** What the gateway refuses, and to whom: see the README's Security section. */
export interface SecurityConfig {
  /** Largest request body accepted, in bytes (`MAX_BODY_BYTES`). */
  maxBodyBytes: number;
  /** Longest pause between two chunks of a request body, in ms (`BODY_IDLE_TIMEOUT_MS`). */
  bodyIdleTimeoutMs: number;
  /** Longest time a whole request body may take to arrive, in ms (`BODY_TIMEOUT_MS`). */
  bodyTimeoutMs: number;
  /** Deepest selection nesting of an operation (`MAX_DEPTH`). */
  maxDepth: number;
  /** Most aliases in an operation (`MAX_ALIASES`). */
  maxAliases: number;
  /** Most lexical tokens in a document (`MAX_TOKENS`). */
  maxTokens: number;
  /** Highest graphql-armor cost of an operation (`MAX_COST`). */
  maxCost: number;
  /** Most directives in an operation (`MAX_DIRECTIVES`). */
  maxDirectives: number;
  /** Bearer token every mutation needs (`WRITE_TOKEN`); unset = writes are open. */
  writeToken?: string;
  /** Bearer token every read needs (`READ_TOKEN`, the write token works too); unset = reads are open. */
  readToken?: string;
  /** Origins allowed to call `/graphql` from a browser (`CORS_ORIGINS`); empty = same origin only. */
  corsOrigins: string[];
  /** Mutations per client address and minute (`RATE_LIMIT_PER_MINUTE`); 0 = no limit. */
  rateLimitPerMinute: number;
}

/** A malformed configuration value; the message names the variable, never its secret value. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Files read, in order, when present; earlier sources win, the process environment wins over all. */
export const ENV_FILES = [".env", ".env.matrix"] as const;

/** Store URL variables, new name first, then the classic tutorials' name. */
export function urlVariables(store: StoreName): string[] {
  return [`${store}_URL`, `COMPOSE_${store}_URL`];
}

/** CA certificate path variables, new name first, then the classic tutorials' name. */
export function caVariables(store: StoreName): string[] {
  return [`${store}_CA_CERT`, `PATH_TO_${store}_CERT`];
}

/**
 * Merges the process environment over the `.env` files found in `dir`
 * (`.env` before `.env.matrix`). Missing files are skipped.
 */
export function readEnvironment(dir = ".", env = Deno.env.toObject()): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const file of [...ENV_FILES].reverse()) {
    let text: string;
    try {
      text = Deno.readTextFileSync(`${dir}/${file}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
    }
    Object.assign(merged, parseDotenv(text));
  }
  return { ...merged, ...env };
}

/** Parses and validates `env`; throws {@linkcode ConfigError} with a clear message. */
export function parseConfig(
  env: Record<string, string | undefined>,
  readFile: (path: string) => string = Deno.readTextFileSync,
): Config {
  const stores: Config["stores"] = {};
  const connectTimeoutMs = int(env, "CONNECT_TIMEOUT_MS", 1500, 50, 60_000);
  for (const store of STORE_NAMES) {
    if (store === "SQLITE") continue;
    const url = first(env, urlVariables(store));
    const caPath = first(env, caVariables(store));
    if (url === undefined) {
      if (caPath !== undefined) {
        throw new ConfigError(`${caVariables(store)[0]} is set but ${store}_URL is not`);
      }
      continue;
    }
    let caCert: string | undefined;
    if (caPath !== undefined) {
      try {
        caCert = readFile(caPath);
      } catch (e) {
        throw new ConfigError(
          `${caVariables(store)[0]}: cannot read CA certificate at ${caPath}: ${(e as Error).name}`,
        );
      }
      if (!caCert.includes("-----BEGIN CERTIFICATE-----")) {
        throw new ConfigError(`${caVariables(store)[0]}: ${caPath} is not a PEM certificate`);
      }
    }
    stores[store] = {
      url: checkUrl(store, url),
      caCert,
      connectTimeoutMs,
      options: store === "SCYLLA"
        ? {
          replicationFactor: String(int(env, "SCYLLA_REPLICATION_FACTOR", 1, 1, 99)),
          datacenter: env.SCYLLA_DATACENTER?.trim() || "datacenter1",
        }
        : store === "RABBITMQ"
        ? { viewPath: env.RABBITMQ_VIEW_PATH?.trim() || "./data/rabbitmq-view.db" }
        : {},
    };
  }
  return Object.freeze({
    port: int(env, "PORT", 8000, 0, 65535),
    hostname: env.HOST?.trim() || "0.0.0.0",
    sqlitePath: env.SQLITE_PATH?.trim() || "./data/words.db",
    stores,
    requestTimeoutMs: int(env, "REQUEST_TIMEOUT_MS", 2000, 50, 60_000),
    connectTimeoutMs,
    reconnectMaxMs: int(env, "RECONNECT_MAX_MS", 2000, 100, 600_000),
    shutdownDrainMs: int(env, "SHUTDOWN_DRAIN_MS", 1000, 0, 8000),
    graphiql: bool(env, "GRAPHIQL", true),
    serverTiming: bool(env, "SERVER_TIMING", false),
    security: parseSecurity(env),
  });
}

/** The settings of {@linkcode SecurityConfig}, each validated; tokens are never echoed. */
export function parseSecurity(env: Record<string, string | undefined>): SecurityConfig {
  const writeToken = token(env, "WRITE_TOKEN");
  const readToken = token(env, "READ_TOKEN");
  if (readToken && !writeToken) {
    throw new ConfigError(
      "READ_TOKEN is set but WRITE_TOKEN is not: set both, or only WRITE_TOKEN",
    );
  }
  if (readToken && readToken === writeToken) {
    throw new ConfigError("READ_TOKEN must differ from WRITE_TOKEN");
  }
  const bodyIdleTimeoutMs = int(env, "BODY_IDLE_TIMEOUT_MS", 10_000, 100, 600_000);
  const bodyTimeoutMs = int(env, "BODY_TIMEOUT_MS", 30_000, 100, 3_600_000);
  if (bodyTimeoutMs < bodyIdleTimeoutMs) {
    throw new ConfigError(
      `BODY_TIMEOUT_MS (${bodyTimeoutMs}) must not be shorter than BODY_IDLE_TIMEOUT_MS (${bodyIdleTimeoutMs})`,
    );
  }
  return Object.freeze({
    maxBodyBytes: int(env, "MAX_BODY_BYTES", 64 * 1024, 1024, 100 * 1024 * 1024),
    bodyIdleTimeoutMs,
    bodyTimeoutMs,
    maxDepth: int(env, "MAX_DEPTH", 6, 2, 100),
    maxAliases: int(env, "MAX_ALIASES", 15, 0, 1000),
    maxTokens: int(env, "MAX_TOKENS", 1000, 50, 100_000),
    maxCost: int(env, "MAX_COST", 5000, 10, 1_000_000),
    maxDirectives: int(env, "MAX_DIRECTIVES", 50, 0, 1000),
    writeToken,
    readToken,
    corsOrigins: origins(env, "CORS_ORIGINS"),
    rateLimitPerMinute: int(env, "RATE_LIMIT_PER_MINUTE", 120, 0, 1_000_000),
  });
}

/** Reads the environment and `.env` files once and returns the validated configuration. */
export function loadConfig(): Config {
  return parseConfig(readEnvironment());
}

function first(env: Record<string, string | undefined>, names: string[]): string | undefined {
  for (const n of names) {
    const v = env[n]?.trim();
    if (v) return v;
  }
  return undefined;
}

function int(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function bool(env: Record<string, string | undefined>, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/** A bearer token: 16 or more RFC 6750 token characters. The message never shows the value. */
function token(env: Record<string, string | undefined>, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  if (raw.length < 16 || !/^[A-Za-z0-9\-._~+/]+=*$/.test(raw)) {
    throw new ConfigError(
      `${name} must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (then optional =)`,
    );
  }
  return raw;
}

/** A comma-separated list of origins like `https://app.example.com` (scheme, host, optional port). */
function origins(env: Record<string, string | undefined>, name: string): string[] {
  const raw = env[name]?.trim();
  if (!raw) return [];
  return raw.split(",").map((s) => s.trim()).filter(Boolean).map((o) => {
    const ok = URL.canParse(o) && new URL(o).origin === o && /^https?:$/.test(new URL(o).protocol);
    if (!ok) {
      throw new ConfigError(
        `${name} must list origins such as https://app.example.com (no path, no "*"), got "${o}"`,
      );
    }
    return o;
  });
}

/** Checks the URL's shape and scheme without ever echoing it (it may hold a password). */
function checkUrl(store: StoreName, url: string): string {
  const parts = store === "SCYLLA" ? url.split(",").map((s) => s.trim()) : [url];
  for (const part of parts) {
    const ok = store === "SCYLLA" && !part.includes("://")
      ? /^[^\s:/]+(:\d{1,5})?$/.test(part) || /^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(part)
      : URL.canParse(part);
    if (!ok) {
      throw new ConfigError(
        `${store}_URL is not a valid ${
          store === "SCYLLA" ? "list of contact points (host:port or URLs)" : "URL"
        }`,
      );
    }
    if (store !== "SQLITE" && store !== "SCYLLA") {
      const problem = schemeProblem(store, new URL(part));
      if (problem) throw new ConfigError(problem);
    }
  }
  return url;
}
