/**
 * The graphql-yoga instance: the SDL in `schema.graphql` plus the resolver
 * map, with GraphiQL for browsers. Errors a resolver did not raise on
 * purpose are masked (no message, no stack reaches the client).
 *
 * The guards, in the order a request meets them: JSON-only POST bodies and
 * CSRF prevention, no batching, graphql-armor's document limits,
 * introspection off with GraphiQL off, the mutation rate limit, bearer
 * tokens; every error then gets an `extensions.code`.
 *
 * @module
 */
import { createSchema, createYoga } from "graphql-yoga";
import { type DocumentNode, Kind } from "graphql";
import { useGraphQlJit } from "@envelop/graphql-jit";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import { type GatewayContext, resolvers } from "../resolvers/mod.ts";
import type { StoreRegistry } from "../stores/registry.ts";
import type { StoreConfig } from "../stores/types.ts";
import { type LogFormat, parseSecurity, type SecurityConfig } from "./config.ts";
import { useErrorCodes } from "./error_codes.ts";
import { renderGraphiQLPage } from "./graphiql.ts";
import { gatewayLog, safeLogger } from "./log.ts";
import type { EventBus } from "./events.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { useQueryLimits } from "./query_limits.ts";
import { type Budgets, useMutationRateLimit } from "./rate_limit.ts";
import { type BudgetsLog, RedisBudgets } from "./rate_limit_redis.ts";
import { useRequestGuards } from "./request_guards.ts";
import { useBearerTokens } from "./auth.ts";
import { useServerTiming } from "./server_timing.ts";

/** The SDL contract, read once. */
export const typeDefs = Deno.readTextFileSync(new URL("../schema.graphql", import.meta.url));

/** Options of {@linkcode createGraphQL}. */
export interface GraphQLOptions {
  registry: StoreRegistry;
  /** Where writes are published and `wordEvents` subscribes (absent: subscriptions refused). */
  events?: EventBus;
  /** Serve GraphiQL to browsers and answer introspection. */
  graphiql: boolean;
  /**
   * Limits and access rules. Omitted (in-process tests): the default limits,
   * no tokens, no rate limit.
   */
  security?: SecurityConfig;
  /** Texts the log must never show (store URLs and passwords). */
  secrets?: readonly string[];
  /** Add a `Server-Timing` header with each store call's duration (server/server_timing.ts). */
  serverTiming?: boolean;
  /** Count and time every executed operation (`METRICS`). */
  metrics?: GatewayMetrics;
  /** How yoga's warnings and errors are written (`LOG_FORMAT`, default text). */
  logFormat?: LogFormat;
  /**
   * Count the rate limit in this Redis, shared by every instance
   * (`RATE_LIMIT_REDIS_URL`); absent: in this process's memory.
   */
  rateLimitRedis?: StoreConfig;
  /**
   * Where the rate limit is counted when not in Redis: the parent thread's
   * counters for workers (server/workers.ts); absent: this isolate's memory.
   */
  budgets?: () => Budgets;
  /** Tests: the key prefix of the shared counters, and where the limiter's lines go. */
  rateLimitShared?: { keyPrefix?: string; log?: BudgetsLog };
}

/** Builds the `/graphql` handler. */
export function createGraphQL(options: GraphQLOptions) {
  const security = options.security ?? { ...parseSecurity({}), rateLimitPerMinute: 0 };
  return createYoga({
    schema: createSchema<GatewayContext>({ typeDefs, resolvers }),
    graphqlEndpoint: "/graphql",
    graphiql: options.graphiql ? { title: "Grand Tour gateway" } : false,
    renderGraphiQL: renderGraphiQLPage,
    landingPage: false,
    maskedErrors: { isDev: false },
    // yoga merges the server context (clientAddress) in.
    context: (): GatewayContext => ({ registry: options.registry, events: options.events }),
    logging: safeLogger(options.secrets, options.logFormat),
    cors: false, // CORS is Hono's job (server/cors.ts), limited to CORS_ORIGINS
    batching: false,
    multipart: false,
    maxRequestBodySize: security.maxBodyBytes,
    plugins: [
      // First, so operations the plugins after it refuse (tokens) are counted too.
      options.metrics?.graphqlPlugin() ?? {},
      ...useRequestGuards(),
      useQueryLimits(security),
      options.graphiql ? {} : useDisableIntrospection(),
      useMutationRateLimit(security.rateLimitPerMinute, budgets(options, security)),
      useBearerTokens(security),
      useErrorCodes(),
      options.serverTiming ? useServerTiming() : {},
      // Compiled execution halves the per-request GraphQL cost (see README, Performance);
      // only for operations the schema has, so the rest keep graphql-js's own errors.
      useGraphQlJit({}, { enableIf: ({ document }) => onlyQueriesAndMutations(document) }),
    ],
  });
}

/** The rate limit's counters: in Redis when configured, else the given ones, else this isolate's memory. */
function budgets(options: GraphQLOptions, security: SecurityConfig): (() => Budgets) | undefined {
  const redis = options.rateLimitRedis;
  if (!redis) return options.budgets;
  return () =>
    new RedisBudgets({
      limit: security.rateLimitPerMinute,
      redis,
      log: options.rateLimitShared?.log ?? gatewayLog(options.logFormat ?? "text", options.secrets),
      keyPrefix: options.rateLimitShared?.keyPrefix,
    });
}

function onlyQueriesAndMutations(document: DocumentNode): boolean {
  return document.definitions.every((d) =>
    d.kind !== Kind.OPERATION_DEFINITION || d.operation !== "subscription"
  );
}
