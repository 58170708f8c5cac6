/**
 * Configuration: read once at start-up from the environment and optional
 * `.env` files, validated, and frozen. Nothing else reads `Deno.env`.
 *
 * @module
 */
import { parse as parseDotenv } from "dotenv";
import { STORE_SETTINGS } from "../stores/registry.ts";
import { settings as REDIS_SETTINGS } from "../stores/redis_settings.ts";
import {
  ConfigError,
  type Env,
  intVariable,
  parseStoreSettings,
  type StoreSettings,
  TIMEOUT_RANGE_MS,
} from "../stores/settings.ts";
import { canonicalRange } from "./client_address.ts";
import type { NetworkStoreName, StoreConfig } from "../stores/types.ts";

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
  /**
   * Gateways in this process, one per worker thread on the same port
   * (`WORKERS`: a number, or `auto` for one per core; server/workers.ts).
   */
  workers: number;
  /** On SIGTERM/SIGINT, milliseconds of serving with `Connection: close` before shutting down. */
  shutdownDrainMs: number;
  /** Whether GraphiQL and introspection are served. */
  graphiql: boolean;
  /** Whether responses carry a `Server-Timing` entry per store call (`SERVER_TIMING`). */
  serverTiming: boolean;
  /** Limits and access rules of the HTTP and GraphQL layer. */
  security: SecurityConfig;
  /** The Prometheus endpoint `/metrics`. */
  metrics: MetricsConfig;
  /** How log lines are written (`LOG_FORMAT`): `text`, or one JSON object per line. */
  logFormat: LogFormat;
  /** Whether Deno exports traces (`OTEL_DENO`), and so whether the gateway makes spans. */
  tracing: TracingConfig;
  /**
   * The Redis that gateway instances share the rate limit's counters in
   * (`RATE_LIMIT_REDIS_URL`, `RATE_LIMIT_REDIS_CA_CERT`); unset = each process counts alone.
   */
  rateLimitRedis?: StoreConfig;
  /** Live updates: where events travel, and the subscription caps. */
  events: EventsConfig;
}

/** Live updates (`wordEvents`, server/events.ts). */
export interface EventsConfig {
  /**
   * `EVENTS_URL` (`redis://` or `rediss://`, with `EVENTS_CA_CERT`): Redis
   * pub/sub carries events between instances; unset = a BroadcastChannel
   * (this instance's isolates only).
   */
  redis?: StoreConfig;
  /** Open subscriptions per client address (`SUBSCRIPTIONS_PER_CLIENT`, default 10). */
  perClient: number;
  /** Open subscriptions per process (`SUBSCRIPTIONS_MAX`, default 1000). */
  total: number;
  /** Events a subscriber may fall behind before it is disconnected (`SUBSCRIPTION_QUEUE`, 256). */
  maxQueue: number;
  /** Milliseconds between keep-alive comments on a subscription stream (`SUBSCRIPTION_PING_MS`). */
  pingMs: number;
}

/** Traces through Deno's OpenTelemetry (server/tracing.ts). */
export interface TracingConfig {
  /** Deno's tracing is on: `OTEL_DENO` or `OTEL_DENO_TRACING` true, `OTEL_SDK_DISABLED` not. */
  enabled: boolean;
}

/** Whether `/metrics` is served, and to whom. */
export interface MetricsConfig {
  /** `METRICS` (default true); false = `/metrics` answers 404. */
  enabled: boolean;
  /** Bearer token a scrape needs (`METRICS_TOKEN`); unset = open. Independent of the GraphQL tokens. */
  token?: string;
}

/** The values of `LOG_FORMAT`. */
export const LOG_FORMATS = ["text", "json"] as const;

/** One of {@linkcode LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

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
  /**
   * Proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`), as
   * canonical CIDR ranges (`10.0.0.0/8`, `192.0.2.7/32`); empty = the TCP peer is the client.
   */
  trustedProxies: string[];
}

export { caVariables, ConfigError, urlVariables } from "../stores/settings.ts";

/** Files read, in order, when present; earlier sources win, the process environment wins over all. */
export const ENV_FILES = [".env", ".env.matrix"] as const;

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
  env: Env,
  readFile: (path: string) => string = Deno.readTextFileSync,
): Config {
  const stores: Config["stores"] = {};
  const connectTimeoutMs = intVariable(env, "CONNECT_TIMEOUT_MS", 1500, 50, 60_000);
  for (const settings of Object.values(STORE_SETTINGS)) {
    const store = parseStoreSettings(settings, env, readFile, connectTimeoutMs);
    if (store) stores[settings.store] = store;
  }
  return Object.freeze({
    port: intVariable(env, "PORT", 8000, 0, 65535),
    hostname: env.HOST?.trim() || "0.0.0.0",
    sqlitePath: env.SQLITE_PATH?.trim() || "./data/words.db",
    stores,
    requestTimeoutMs: intVariable(
      env,
      "REQUEST_TIMEOUT_MS",
      2000,
      TIMEOUT_RANGE_MS.min,
      TIMEOUT_RANGE_MS.max,
    ),
    connectTimeoutMs,
    reconnectMaxMs: intVariable(env, "RECONNECT_MAX_MS", 2000, 100, 600_000),
    workers: parseWorkers(env),
    shutdownDrainMs: intVariable(env, "SHUTDOWN_DRAIN_MS", 1000, 0, 8000),
    graphiql: bool(env, "GRAPHIQL", true),
    serverTiming: bool(env, "SERVER_TIMING", false),
    security: parseSecurity(env),
    metrics: parseMetrics(env),
    logFormat: parseLogFormat(env),
    tracing: parseTracing(env),
    ...rateLimitRedis(env, readFile, connectTimeoutMs),
    events: parseEvents(env, readFile, connectTimeoutMs),
  });
}

/** Most workers `WORKERS` accepts. */
export const MAX_WORKERS = 64;

/**
 * The default of `WORKERS` on a host with `cores` cores: one gateway up to
 * two cores, else one per core. On a small host the database servers and the
 * clients usually share the cores, and a second worker costs its memory
 * (every driver again) for little throughput; see the README, Performance.
 */
export function defaultWorkers(cores: number): number {
  return cores <= 2 ? 1 : Math.min(cores, MAX_WORKERS);
}

/**
 * `WORKERS`: a whole number from 1 to {@linkcode MAX_WORKERS}, or `auto`
 * (one per core); unset, {@linkcode defaultWorkers}. Several workers share
 * one port, so `PORT=0` (any free port, one per listener) runs one unless
 * told otherwise, and refuses more.
 */
export function parseWorkers(env: Env, cores = navigator.hardwareConcurrency): number {
  const raw = env.WORKERS?.trim().toLowerCase();
  const anyPort = env.PORT?.trim() === "0";
  if (!raw) return anyPort ? 1 : defaultWorkers(cores);
  const workers = raw === "auto" ? Math.min(cores, MAX_WORKERS) : Number(raw);
  if (!/^(\d+|auto)$/.test(raw) || workers < 1 || workers > MAX_WORKERS) {
    throw new ConfigError(
      `WORKERS must be auto or a whole number from 1 to ${MAX_WORKERS}, got "${env.WORKERS}"`,
    );
  }
  if (anyPort && workers > 1) {
    throw new ConfigError(
      `WORKERS=${raw} needs a fixed PORT: with PORT=0 each worker would get its own`,
    );
  }
  return workers;
}

/**
 * How `RATE_LIMIT_REDIS_*` are read: Redis's own rules, one node, no replicas.
 * Its `store` is the variables' prefix (`caVariables(RATE_LIMIT_REDIS.store)`).
 */
export const RATE_LIMIT_REDIS: StoreSettings = {
  ...REDIS_SETTINGS,
  // Not a store: only the variable names derive from it (RATE_LIMIT_REDIS_URL, _CA_CERT).
  store: "RATE_LIMIT_REDIS" as NetworkStoreName,
  replicas: false,
  noReplicas: "the rate limit counts on one Redis",
};

/**
 * `RATE_LIMIT_REDIS_URL` (a `redis://` or `rediss://` URL) and its CA,
 * checked by the stores' parser, so messages never echo the URL.
 */
function rateLimitRedis(
  env: Env,
  readFile: (path: string) => string,
  connectTimeoutMs: number,
): { rateLimitRedis?: StoreConfig } {
  const redis = parseStoreSettings(RATE_LIMIT_REDIS, env, readFile, connectTimeoutMs);
  return redis ? { rateLimitRedis: redis } : {};
}

/**
 * Whether Deno traces, read as Deno reads it (`OTEL_SDK_DISABLED`, `OTEL_DENO`,
 * `OTEL_DENO_TRACING`; only `true`/`false`, any case). With tracing on, the
 * gateway needs `OTEL_TRACES_SAMPLER=parentbased_always_off` and no
 * `tracecontext` in `OTEL_PROPAGATORS` (`none`): otherwise Deno exports its own
 * request span, full URL and query string included (a GET query's words and
 * search terms), and a client's `traceparent` could turn that span on.
 * Deno reads these from the process environment, not from `.env` files.
 */
export function parseTracing(env: Env): TracingConfig {
  const flag = (name: string) => {
    const raw = env[name]?.toLowerCase();
    return raw === "true" ? true : raw === "false" ? false : undefined;
  };
  const enabled = !(flag("OTEL_SDK_DISABLED") ?? false) &&
    (flag("OTEL_DENO_TRACING") ?? flag("OTEL_DENO") ?? false);
  if (enabled) {
    if (env.OTEL_TRACES_SAMPLER?.trim() !== "parentbased_always_off") {
      throw new ConfigError(
        "traces need OTEL_TRACES_SAMPLER=parentbased_always_off: Deno's own request span " +
          "records the query string, so only the gateway's spans may be sampled",
      );
    }
    const propagators = (env.OTEL_PROPAGATORS ?? "tracecontext").split(",").map((p) => p.trim());
    if (propagators.includes("tracecontext")) {
      throw new ConfigError(
        "traces need OTEL_PROPAGATORS=none: a client's traceparent would make Deno " +
          "sample its own request span, query string included",
      );
    }
  }
  return Object.freeze({ enabled });
}

/**
 * `EVENTS_URL` and the subscription caps. `EVENTS_URL` is parsed as
 * `REDIS_URL` is (stores/redis_settings.ts: schemes, database, and
 * `EVENTS_CA_CERT` as `<STORE>_CA_CERT`), never echoed.
 */
export function parseEvents(
  env: Env,
  readFile: (path: string) => string = Deno.readTextFileSync,
  connectTimeoutMs = 1500,
): EventsConfig {
  const redis = parseStoreSettings(
    {
      ...REDIS_SETTINGS,
      // the variables' prefix: EVENTS_URL, EVENTS_CA_CERT
      store: "EVENTS" as NetworkStoreName,
      replicas: false,
      noReplicas: "events are published to one Redis",
    },
    env,
    readFile,
    connectTimeoutMs,
  );
  return Object.freeze({
    redis,
    perClient: intVariable(env, "SUBSCRIPTIONS_PER_CLIENT", 10, 1, 100_000),
    total: intVariable(env, "SUBSCRIPTIONS_MAX", 1000, 1, 1_000_000),
    maxQueue: intVariable(env, "SUBSCRIPTION_QUEUE", 256, 1, 100_000),
    pingMs: intVariable(env, "SUBSCRIPTION_PING_MS", 10_000, 100, 600_000),
  });
}

/** `METRICS` and `METRICS_TOKEN`; the token must not be the write token, which can change data. */
export function parseMetrics(env: Env): MetricsConfig {
  const metricsToken = token(env, "METRICS_TOKEN");
  if (metricsToken && metricsToken === token(env, "WRITE_TOKEN")) {
    throw new ConfigError("METRICS_TOKEN must differ from WRITE_TOKEN");
  }
  return Object.freeze({ enabled: bool(env, "METRICS", true), token: metricsToken });
}

/** `LOG_FORMAT`: `text` (default) or `json`. */
export function parseLogFormat(env: Env): LogFormat {
  const raw = env.LOG_FORMAT?.trim().toLowerCase();
  if (!raw) return "text";
  const format = LOG_FORMATS.find((f) => f === raw);
  if (!format) throw new ConfigError(`LOG_FORMAT must be text or json, got "${raw}"`);
  return format;
}

/**
 * The format to report a configuration error in: `LOG_FORMAT` when it is
 * readable and valid, else `text` (the error may be about it).
 */
export function startupLogFormat(): LogFormat {
  try {
    return parseLogFormat(readEnvironment());
  } catch {
    return "text";
  }
}

/** The settings of {@linkcode SecurityConfig}, each validated; tokens are never echoed. */
export function parseSecurity(env: Env): SecurityConfig {
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
  const bodyIdleTimeoutMs = intVariable(env, "BODY_IDLE_TIMEOUT_MS", 10_000, 100, 600_000);
  const bodyTimeoutMs = intVariable(env, "BODY_TIMEOUT_MS", 30_000, 100, 3_600_000);
  if (bodyTimeoutMs < bodyIdleTimeoutMs) {
    throw new ConfigError(
      `BODY_TIMEOUT_MS (${bodyTimeoutMs}) must not be shorter than BODY_IDLE_TIMEOUT_MS (${bodyIdleTimeoutMs})`,
    );
  }
  return Object.freeze({
    maxBodyBytes: intVariable(env, "MAX_BODY_BYTES", 64 * 1024, 1024, 100 * 1024 * 1024),
    bodyIdleTimeoutMs,
    bodyTimeoutMs,
    maxDepth: intVariable(env, "MAX_DEPTH", 6, 2, 100),
    maxAliases: intVariable(env, "MAX_ALIASES", 15, 0, 1000),
    maxTokens: intVariable(env, "MAX_TOKENS", 1000, 50, 100_000),
    maxCost: intVariable(env, "MAX_COST", 5000, 10, 1_000_000),
    maxDirectives: intVariable(env, "MAX_DIRECTIVES", 50, 0, 1000),
    writeToken,
    readToken,
    corsOrigins: origins(env, "CORS_ORIGINS"),
    rateLimitPerMinute: intVariable(env, "RATE_LIMIT_PER_MINUTE", 600, 0, 1_000_000),
    trustedProxies: trustedProxies(env),
  });
}

/** Reads the environment and `.env` files once and returns the validated configuration. */
export function loadConfig(): Config {
  return parseConfig(readEnvironment());
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/** A bearer token: 16 or more RFC 6750 token characters. The message never shows the value. */
function token(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  if (raw.length < 16 || !/^[A-Za-z0-9\-._~+/]+=*$/.test(raw)) {
    throw new ConfigError(
      `${name} must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (then optional =)`,
    );
  }
  return raw;
}

/**
 * `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges (IPv4 or IPv6),
 * canonical. A bad entry is named by its position (from 1), not echoed.
 */
function trustedProxies(env: Env): string[] {
  const raw = env.TRUSTED_PROXIES?.trim();
  if (!raw) return [];
  return raw.split(",").map((entry, i) => {
    const range = canonicalRange(entry);
    if (!range) {
      throw new ConfigError(
        `TRUSTED_PROXIES entry ${i + 1} is not an IP address or CIDR range ` +
          `(such as 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)`,
      );
    }
    return range;
  });
}

/** A comma-separated list of origins like `https://app.example.com` (scheme, host, optional port). */
function origins(env: Env, name: string): string[] {
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
