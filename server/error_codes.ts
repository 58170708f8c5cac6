/**
 * A yoga plugin that gives every GraphQL error an `extensions.code` and
 * strips internals, on every response: request errors (bad JSON, bad
 * parameters), parse and validation errors and execution errors alike.
 *
 * - graphql-js reports bad variables (wrong type, missing, unknown enum
 *   value) without a code; those are the client's input: BAD_USER_INPUT.
 * - an HTTP-level refusal without a code (4xx), or an operation type the
 *   schema does not have (subscription): BAD_REQUEST.
 * - anything else uncoded: INTERNAL_SERVER_ERROR.
 * - `extensions.originalError` (yoga adds the JSON parser's message) and any
 *   `stacktrace` are removed, so no internal text reaches the client; the
 *   HTTP status stays what yoga chose.
 *
 * @module
 */
import { type ExecutionResult, GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";

type Result = ExecutionResult;

/** Normalises the errors of every result yoga sends. */
export function useErrorCodes(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result)) {
        if (result.some(needsWork)) setResult(result.map(normalise));
      } else if (!(Symbol.asyncIterator in (result as object)) && needsWork(result as Result)) {
        setResult(normalise(result as Result));
      }
    },
  };
}

function needsWork(result: Result): boolean {
  return !!result.errors?.some((e) =>
    !e.extensions?.code || "originalError" in (e.extensions ?? {}) ||
    "stacktrace" in (e.extensions ?? {})
  );
}

function normalise<R extends Result>(result: R): R {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map(withCode) };
}

/** The error with a code and without internals. */
export function withCode(e: GraphQLError): GraphQLError {
  const { originalError, stacktrace: _s, ...extensions } = e.extensions ?? {};
  const http = extensions.http as { status?: number; spec?: boolean } | undefined;
  if (originalError && !(originalError instanceof GraphQLError) && http?.spec) {
    // yoga lets an error caused by a non-GraphQL error (e.g. the JSON parser's) keep its
    // status even for application/json; keep that status once the cause is gone
    extensions.http = { ...http, spec: false };
  }
  const status = http?.status;
  if (!extensions.code && !http && /^Variable "\$/.test(e.message)) {
    // graphql-js reports these before execution and yoga answers 400; the compiled
    // executor (graphql-jit) reports them as execution errors: keep the 400.
    extensions.http = { status: 400 };
  }
  extensions.code ??= /^Variable "\$/.test(e.message)
    ? "BAD_USER_INPUT"
    : /^Schema is not configured to execute/.test(e.message) // e.g. a subscription
    ? "BAD_REQUEST"
    : status && status >= 400 && status < 500
    ? "BAD_REQUEST"
    : "INTERNAL_SERVER_ERROR";
  return new GraphQLError(e.message, {
    nodes: e.nodes,
    source: e.source,
    positions: e.positions,
    path: e.path,
    extensions,
  });
}

/** A subscription over `SUBSCRIPTIONS_PER_CLIENT` or `SUBSCRIPTIONS_MAX` (server/events.ts). */
export const SUBSCRIPTION_LIMIT = "SUBSCRIPTION_LIMIT";

/** The last event of a subscriber that fell `SUBSCRIPTION_QUEUE` events behind. */
export const SUBSCRIBER_TOO_SLOW = "SUBSCRIBER_TOO_SLOW";

/** A request refused, or a subscription ended, because the gateway is stopping. */
export const SHUTTING_DOWN = "SHUTTING_DOWN";
