/**
 * Maps store failures to GraphQL errors with `extensions.code`. Anything
 * else is left for graphql-yoga to mask as an internal error.
 *
 * @module
 */
import { GraphQLError } from "graphql";
import { StoreNotConfiguredError, StoreUnavailableError } from "../stores/errors.ts";

/** Runs `fn`, turning store errors into client-facing GraphQL errors. */
export async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StoreNotConfiguredError) {
      throw new GraphQLError(e.message, {
        extensions: { code: "STORE_NOT_CONFIGURED", store: e.store },
      });
    }
    if (e instanceof StoreUnavailableError) {
      throw new GraphQLError(e.message, {
        extensions: { code: "STORE_UNAVAILABLE", store: e.store },
      });
    }
    throw e;
  }
}
