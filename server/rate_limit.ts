/**
 * Per-client rate limit for writes (`RATE_LIMIT_PER_MINUTE`). Every root
 * mutation field a request would execute counts once, in a one-minute fixed
 * window kept in hono-rate-limiter's `MemoryStore`: aliases, named and inline
 * fragments and `@skip`/`@include` (with literals or variables, defaults
 * included) are resolved by graphql-js's own field collection, and fields
 * that share a response key count once, as they execute once. `__typename`
 * writes nothing and is not counted, and neither are reads.
 *
 * A request whose writes would pass the limit is refused whole, before any
 * resolver runs, with HTTP 429, `Retry-After` and a GraphQL error
 * `RATE_LIMITED` (`extensions.retryAfterSeconds`). A refused request writes
 * nothing and so consumes no budget; an accepted one consumes one unit per
 * write, whether or not the store then accepts each write. A request with
 * more writes than the limit itself is always refused.
 *
 * The client is the `clientAddress` the HTTP layer puts in the server
 * context: the TCP peer, or behind `TRUSTED_PROXIES` the address they
 * forwarded (server/client_address.ts). IPv6 clients are counted by their /64
 * ({@linkcode budgetKey}).
 *
 * The counters live in this process's memory ({@linkcode MemoryBudgets},
 * hono-rate-limiter's `MemoryStore`), or, with `RATE_LIMIT_REDIS_URL`, in a
 * Redis every instance shares (server/rate_limit_redis.ts), which falls back
 * to this process's memory while that Redis cannot answer.
 *
 * @module
 */
import {
  type DocumentNode,
  type ExecutionResult,
  type FragmentDefinitionNode,
  getOperationAST,
  getVariableValues,
  type GraphQLSchema,
  Kind,
} from "graphql";
import { collectFields } from "graphql/execution/collectFields.js";
import { createGraphQLError, type Plugin } from "graphql-yoga";
import { MemoryStore } from "hono-rate-limiter";
import { budgetKey } from "./client_address.ts";

/** What the HTTP layer puts in the server context for {@linkcode useMutationRateLimit}. */
export interface ClientContext {
  /** The client's IP address, or undefined when unknown (in-process calls). */
  clientAddress?: string;
}

/** The length of one rate-limit window. */
export const WINDOW_MS = 60_000;

/** What spending a request's writes gave: accepted, or refused with the window's state. */
export type Spent =
  | { accepted: true }
  | { accepted: false; used: number; leftMs: number };

/**
 * Where the writes of each client are counted: in one-minute fixed windows,
 * `limit` per window. `spend` takes all of a request's writes or none.
 */
export interface Budgets {
  /** Spends `writes` of `key`'s window if they all fit; otherwise spends nothing. */
  spend(key: string, writes: number): Spent | Promise<Spent>;
  /** Releases timers and connections. */
  close(): void | Promise<void>;
}

/** {@linkcode Budgets} in this process's memory (hono-rate-limiter's `MemoryStore`). */
export class MemoryBudgets implements Budgets {
  readonly #store = new MemoryStore();

  constructor(readonly limit: number) {
    this.#store.init({ windowMs: WINDOW_MS } as Parameters<MemoryStore["init"]>[0]);
  }

  spend(key: string, writes: number): Spent {
    const { used, leftMs } = currentWindow(this.#store, key);
    if (used + writes > this.limit) return { accepted: false, used, leftMs };
    for (let i = 0; i < writes; i++) this.#store.increment(key);
    return { accepted: true };
  }

  close(): void {
    this.#store.shutdown();
  }
}

/**
 * Limits writes (root mutation fields) to `perMinute` per client address; a
 * no-op for 0. `budgets` counts them (default: {@linkcode MemoryBudgets});
 * the plugin closes it on dispose.
 */
export function useMutationRateLimit(
  perMinute: number,
  budgets: () => Budgets = () => new MemoryBudgets(perMinute),
): Plugin {
  if (perMinute <= 0) return {};
  const store = budgets();
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const writes = countWrites(
        args.schema,
        args.document,
        args.operationName,
        args.variableValues,
      );
      if (writes === 0) return;
      const address = (args.contextValue as ClientContext).clientAddress;
      const refuse = (spent: Spent) => {
        if (!spent.accepted) setResultAndStopExecution(refusal(perMinute, writes, spent));
      };
      const spent = store.spend(address ? budgetKey(address) : "unknown", writes);
      // In memory the whole check stays synchronous, as it was before Redis.
      if (spent instanceof Promise) return spent.then(refuse);
      refuse(spent);
    },
    async onDispose() {
      await store.close();
    },
  };
}

/** The result of a request refused for `writes` more writes than fit: 429 `RATE_LIMITED`. */
function refusal(
  perMinute: number,
  writes: number,
  { used, leftMs }: { used: number; leftMs: number },
): ExecutionResult {
  const retryAfter = Math.max(1, Math.ceil(leftMs / 1000));
  const advice = writes > perMinute
    ? `Split it: one request can make at most ${perMinute}.`
    : `Try again in ${retryAfter} s.`;
  const left = `${perMinute - used} of ${perMinute} per minute are left`;
  return {
    errors: [
      createGraphQLError(
        `Too many writes: this request makes ${writes}; ${left}. ${advice}`,
        {
          extensions: {
            code: "RATE_LIMITED",
            retryAfterSeconds: retryAfter,
            http: { status: 429, headers: { "Retry-After": String(retryAfter) } },
          },
        },
      ),
    ],
  };
}

/**
 * The client's hits in its current window and the milliseconds until it ends;
 * none used and a whole window once it has ended (`get` still returns such a
 * client, which `increment` restarts).
 */
function currentWindow(store: MemoryStore, key: string): { used: number; leftMs: number } {
  const client = store.get(key);
  const leftMs = (client?.resetTime?.getTime() ?? 0) - Date.now();
  return leftMs > 0 ? { used: client?.totalHits ?? 0, leftMs } : { used: 0, leftMs: WINDOW_MS };
}

/**
 * The root mutation fields the operation would execute, counted by response
 * key, without `__typename`. 0 for queries, and for variables that do not
 * coerce (execution then refuses the request without running a resolver).
 */
function countWrites(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
): number {
  const op = getOperationAST(document, operationName);
  const mutation = schema.getMutationType();
  if (op?.operation !== "mutation" || !mutation) return 0;
  const coerced = getVariableValues(schema, op.variableDefinitions ?? [], variables ?? {});
  if (!coerced.coerced) return 0;
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const d of document.definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments[d.name.value] = d;
  }
  const fields = collectFields(schema, fragments, coerced.coerced, mutation, op.selectionSet);
  let writes = 0;
  for (const [first] of fields.values()) {
    if (first.name.value !== "__typename") writes++;
  }
  return writes;
}
