/**
 * Per-client rate limit for mutations (`RATE_LIMIT_PER_MINUTE`). Each
 * mutation a client sends counts once in a one-minute fixed window kept in
 * hono-rate-limiter's `MemoryStore`; past the limit the mutation is refused
 * with HTTP 429, `Retry-After` and a GraphQL error `RATE_LIMITED`, before any
 * resolver runs. Reads are not counted.
 *
 * The client is the TCP peer address (Deno's `info.remoteAddr`), passed in
 * the server context as `clientAddress`. Behind a reverse proxy every client
 * has the proxy's address and shares one budget; forwarded-for headers are
 * not trusted, because any client can write them.
 *
 * @module
 */
import { getOperationAST } from "graphql";
import { createGraphQLError, type Plugin } from "graphql-yoga";
import { MemoryStore } from "hono-rate-limiter";

/** What the HTTP layer puts in the server context for {@linkcode useMutationRateLimit}. */
export interface ClientContext {
  /** The client's IP address, or undefined when unknown (in-process calls). */
  clientAddress?: string;
}

const WINDOW_MS = 60_000;

/** Limits mutations to `perMinute` per client address; a no-op for 0. */
export function useMutationRateLimit(perMinute: number): Plugin {
  if (perMinute <= 0) return {};
  const store = new MemoryStore();
  store.init({ windowMs: WINDOW_MS } as Parameters<MemoryStore["init"]>[0]);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const op = getOperationAST(args.document, args.operationName);
      if (op?.operation !== "mutation") return;
      const key = (args.contextValue as ClientContext).clientAddress ?? "unknown";
      const { totalHits, resetTime } = store.increment(key);
      if (totalHits <= perMinute) return;
      const retryAfter = Math.max(1, Math.ceil(((resetTime?.getTime() ?? 0) - Date.now()) / 1000));
      setResultAndStopExecution({
        errors: [
          createGraphQLError(
            `Too many writes: at most ${perMinute} per minute. Try again in ${retryAfter} s.`,
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
