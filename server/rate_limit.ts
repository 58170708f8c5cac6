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
 * The client is the TCP peer address (Deno's `info.remoteAddr`), passed in
 * the server context as `clientAddress`. Behind a reverse proxy every client
 * has the proxy's address and shares one budget; forwarded-for headers are
 * not trusted, because any client can write them.
 *
 * @module
 */
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  getOperationAST,
  getVariableValues,
  type GraphQLSchema,
  Kind,
} from "graphql";
import { collectFields } from "graphql/execution/collectFields.js";
import { createGraphQLError, type Plugin } from "graphql-yoga";
import { MemoryStore } from "hono-rate-limiter";

/** What the HTTP layer puts in the server context for {@linkcode useMutationRateLimit}. */
export interface ClientContext {
  /** The client's IP address, or undefined when unknown (in-process calls). */
  clientAddress?: string;
}

const WINDOW_MS = 60_000;

/** Limits writes (root mutation fields) to `perMinute` per client address; a no-op for 0. */
export function useMutationRateLimit(perMinute: number): Plugin {
  if (perMinute <= 0) return {};
  const store = new MemoryStore();
  store.init({ windowMs: WINDOW_MS } as Parameters<MemoryStore["init"]>[0]);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const writes = countWrites(
        args.schema,
        args.document,
        args.operationName,
        args.variableValues,
      );
      if (writes === 0) return;
      const key = (args.contextValue as ClientContext).clientAddress ?? "unknown";
      const { used, leftMs } = currentWindow(store, key);
      if (used + writes <= perMinute) {
        for (let i = 0; i < writes; i++) store.increment(key);
        return;
      }
      const retryAfter = Math.max(1, Math.ceil(leftMs / 1000));
      const advice = writes > perMinute
        ? `Split it: one request can make at most ${perMinute}.`
        : `Try again in ${retryAfter} s.`;
      const left = `${perMinute - used} of ${perMinute} per minute are left`;
      setResultAndStopExecution({
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
      });
    },
    onDispose() {
      store.shutdown();
    },
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
