/**
 * Bearer tokens. With `WRITE_TOKEN` set, a mutation needs
 * `Authorization: Bearer <WRITE_TOKEN>`; with `READ_TOKEN` set as well, every
 * operation needs the read or the write token. A refusal is a GraphQL error
 * `UNAUTHENTICATED` (HTTP 401) raised before any resolver runs, so nothing is
 * read or written. Tokens are compared in constant time.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { getOperationAST } from "graphql";
import { createGraphQLError, type Plugin } from "graphql-yoga";
import type { SecurityConfig } from "./config.ts";

/** The tokens {@linkcode useBearerTokens} checks. */
export type Tokens = Pick<SecurityConfig, "writeToken" | "readToken">;

/** Checks the bearer token of every operation; a no-op when no token is configured. */
export function useBearerTokens({ writeToken, readToken }: Tokens): Plugin {
  if (!writeToken) return {};
  const write = digest(writeToken);
  const read = readToken ? digest(readToken) : undefined;
  return {
    // reads: refused before the document is even parsed
    onParams({ request, setResult }) {
      if (!read) return;
      const token = presented(request);
      if (token && (same(token, read) || same(token, write))) return;
      setResult({ errors: [unauthenticated("This gateway needs a bearer token to read.")] });
    },
    // writes: the operation is known once parsed and validated
    onExecute({ args, setResultAndStopExecution }) {
      const op = getOperationAST(args.document, args.operationName);
      if (op?.operation !== "mutation") return;
      const token = presented((args.contextValue as { request: Request }).request);
      if (token && same(token, write)) return;
      setResultAndStopExecution({
        errors: [unauthenticated("Writing needs the write token: send Authorization: Bearer …")],
      });
    },
  };
}

/**
 * A check that a request carries `Authorization: Bearer <token>`, compared
 * in constant time as the GraphQL tokens are (for `METRICS_TOKEN`).
 */
export function bearerCheck(token: string): (request: Request) => boolean {
  const expected = digest(token);
  return (request) => {
    const token = presented(request);
    return token !== undefined && same(token, expected);
  };
}

/** The digest of the request's bearer token, if it sent one. */
function presented(request: Request): Uint8Array | undefined {
  const m = request.headers.get("authorization")?.match(/^Bearer +(\S+) *$/i);
  return m ? digest(m[1]) : undefined;
}

function unauthenticated(message: string) {
  return createGraphQLError(message, {
    extensions: {
      code: "UNAUTHENTICATED",
      http: { status: 401, headers: { "WWW-Authenticate": 'Bearer realm="grand-tour"' } },
    },
  });
}

/** Hashing first gives equal-length inputs to `timingSafeEqual`, whatever was sent. */
function digest(token: string): Uint8Array {
  return createHash("sha256").update(token).digest();
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return timingSafeEqual(a, b);
}
