/**
 * The rate limit's counters in a Redis every gateway instance and worker
 * shares (`RATE_LIMIT_REDIS_URL`): one budget per client however many
 * processes serve it. rate-limiter-flexible's `RateLimiterRedis` keeps them,
 * on an ioredis client with the Redis store's options (TLS, CA, fail-fast).
 *
 * A request's writes are spent at once, as points of one call, by a Lua
 * script Redis runs atomically: the window's counter (`<prefix><client>`,
 * expiring 60 s after the window's first write) grows by all of them only if
 * they all fit, so a refused request spends nothing, as in memory, and two
 * instances racing for the last points cannot both get them.
 *
 * **When that Redis cannot answer** (down, unreachable, reconnecting, or a
 * command slower than {@linkcode COMMAND_TIMEOUT_MS}) the limit neither stops
 * writes (fail closed: a Redis kept only for counting would take every write
 * of every store down with it) nor stops limiting (fail open: the outage would
 * lift the protection of the databases, and anyone able to disturb that Redis
 * could lift it on purpose). Each instance counts in its own memory instead
 * ({@linkcode MemoryBudgets}, the limiter without Redis): a client gets at most
 * the limit per instance it reaches. A warning is logged once when that
 * starts and a line when Redis answers again, redacted (no URL, user or
 * password). Redis is tried again on every request, at no cost while the
 * client is not connected, so sharing resumes as soon as it answers; the
 * counts of the outage are not carried over.
 *
 * rate-limiter-flexible's own `insuranceLimiter` does the same switch, but its
 * memory limiter counts a refused request's points, which would make a refused
 * request spend budget during an outage, and it swallows the error, which
 * this module logs.
 *
 * @module
 */
import { Redis } from "ioredis";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { clientOptions } from "../stores/redis.ts";
import type { StoreConfig } from "../stores/types.ts";
import { type Budgets, MemoryBudgets, type Spent, WINDOW_MS } from "./rate_limit.ts";

/** How long a counting command may take before the write is counted in memory instead. */
export const COMMAND_TIMEOUT_MS = 500;

/** The default prefix of the counters' keys. */
export const KEY_PREFIX = "grand_tour:rate_limit";

/**
 * rate-limiter-flexible's increment script (KEYS[1] the counter; ARGV: points,
 * window seconds, limit), made all-or-nothing: it replies `{consumed, pttl}`
 * where `consumed` is the count with this request's points, but stores it
 * only when it is within the limit.
 */
const SPEND_IF_FITS = `
redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX')
local points = tonumber(ARGV[1])
local consumed = tonumber(redis.call('get', KEYS[1])) + points
if consumed <= tonumber(ARGV[3]) or points <= 0 then
  consumed = redis.call('incrby', KEYS[1], points)
end
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('expire', KEYS[1], ARGV[2])
  ttl = 1000 * ARGV[2]
end
return {consumed, ttl}
`;

/** What {@linkcode RedisBudgets} logs: its two transitions, already redacted by the caller. */
export interface BudgetsLog {
  warn(text: string): void;
  info(text: string): void;
}

/** Options of {@linkcode RedisBudgets}. */
export interface RedisBudgetsOptions {
  /** Writes per client and minute. */
  limit: number;
  /** `RATE_LIMIT_REDIS_URL` and its CA, as configuration parsed them. */
  redis: StoreConfig;
  /** Where the failover and the recovery are logged; the log must redact the URL. */
  log: BudgetsLog;
  /** Prefix of the counters' keys (default {@linkcode KEY_PREFIX}); tests use their own. */
  keyPrefix?: string;
}

/** {@linkcode Budgets} shared through Redis, counted in memory while Redis cannot answer. */
export class RedisBudgets implements Budgets {
  readonly #client: Redis;
  readonly #limiter: RateLimiterRedis;
  readonly #fallback: MemoryBudgets;
  readonly #log: BudgetsLog;
  #lastError: Error | undefined;
  #inMemory = false;

  constructor({ limit, redis, log, keyPrefix = KEY_PREFIX }: RedisBudgetsOptions) {
    this.#client = new Redis(redis.url, {
      ...clientOptions(redis),
      lazyConnect: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectionName: "grand_tour_rate_limit",
    });
    // Without a listener ioredis prints each error itself; the first one of an outage is logged.
    this.#client.on("error", (e: Error) => {
      this.#lastError = e;
    });
    this.#limiter = new RateLimiterRedis({
      storeClient: this.#client,
      keyPrefix,
      points: limit,
      duration: WINDOW_MS / 1000,
      customIncrTtlLuaScript: SPEND_IF_FITS,
      // While disconnected, fail at once (to memory) instead of waiting for a timeout.
      rejectIfRedisNotReady: true,
    });
    this.#fallback = new MemoryBudgets(limit);
    this.#log = log;
  }

  /** Whether writes are counted in this process's memory now (the last spend found Redis out). */
  get inMemory(): boolean {
    return this.#inMemory;
  }

  async spend(key: string, writes: number): Promise<Spent> {
    try {
      await this.#limiter.consume(key, writes);
      this.#shared();
      return { accepted: true };
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) return this.#alone(e, key, writes);
      this.#shared();
      return { accepted: false, used: e.consumedPoints - writes, leftMs: e.msBeforeNext };
    }
  }

  close(): void {
    this.#fallback.close();
    this.#client.disconnect();
  }

  #alone(e: unknown, key: string, writes: number): Spent {
    if (!this.#inMemory) {
      this.#inMemory = true;
      const cause = this.#client.status === "ready" ? e : this.#lastError ?? e;
      const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
      this.#log.warn(
        `rate limit: the shared Redis (RATE_LIMIT_REDIS_URL) does not answer (${text}); ` +
          `each instance counts writes alone until it does`,
      );
    }
    return this.#fallback.spend(key, writes);
  }

  #shared(): void {
    if (!this.#inMemory) return;
    this.#inMemory = false;
    this.#log.info("rate limit: the shared Redis answers again; writes are counted in it");
  }
}
