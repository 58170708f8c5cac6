/**
 * A yoga plugin that gives every GraphQL error an `extensions.code`.
 * graphql-js reports bad variables (wrong type, missing, unknown enum value)
 * without one; those are the client's input, so they get BAD_USER_INPUT.
 *
 * @module
 */
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";

/** Adds BAD_USER_INPUT to variable errors and INTERNAL_SERVER_ERROR to any other uncoded error. */
export function useErrorCodes(): Plugin {
  return {
    onExecutionResult({ result, setResult }) {
      if (!result || !("errors" in result) || !result.errors?.length) return;
      if (result.errors.every((e) => e.extensions?.code)) return;
      setResult({
        ...result,
        errors: result.errors.map((e) =>
          e.extensions?.code ? e : new GraphQLError(e.message, {
            nodes: e.nodes,
            path: e.path,
            extensions: {
              ...e.extensions,
              code: /^Variable "\$/.test(e.message) ? "BAD_USER_INPUT" : "INTERNAL_SERVER_ERROR",
            },
          })
        ),
      });
    },
  };
}
