/**
 * Maps store failures to GraphQL errors with `extensions.code`. Anything
 * else is left for graphql-yoga to mask as an internal error.
 *
 * @module
 */
import { GraphQLError } from "graphql";
import { StoreNotConfiguredError, StoreUnavailableError } from "../stores/errors.ts";
import { ConflictError, NotFoundError } from "../stores/edits.ts";

/** The `extensions.code` {@linkcode storeCall} gives each store error it maps. */
export type StoreErrorCode =
  | "STORE_NOT_CONFIGURED"
  | "NOT_FOUND"
  | "CONFLICT"
  | "STORE_UNAVAILABLE";

/**
 * The code a client sees for store error `e` (as {@linkcode storeCall} maps
 * it), or undefined for an error left to yoga to mask (INTERNAL_SERVER_ERROR).
 */
export function storeErrorCode(e: unknown): StoreErrorCode | undefined {
  if (e instanceof StoreNotConfiguredError) return "STORE_NOT_CONFIGURED";
  if (e instanceof NotFoundError) return "NOT_FOUND";
  if (e instanceof ConflictError) return "CONFLICT";
  if (e instanceof StoreUnavailableError) return "STORE_UNAVAILABLE";
  return undefined;
}

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
    if (e instanceof NotFoundError) {
      throw new GraphQLError(`No word with id ${e.id} in this store.`, {
        extensions: { code: "NOT_FOUND", argument: "id" },
      });
    }
    if (e instanceof ConflictError) {
      const { id, word, definition, createdAt, updatedAt } = e.current;
      throw new GraphQLError(
        "Someone else changed this word since you read it; nothing was changed. " +
          "extensions.current holds it as it is now.",
        {
          extensions: {
            code: "CONFLICT",
            current: { id, word, definition, createdAt, updatedAt: updatedAt ?? null },
          },
        },
      );
    }
    if (e instanceof StoreUnavailableError) {
      throw new GraphQLError(e.message, {
        extensions: { code: "STORE_UNAVAILABLE", store: e.store },
      });
    }
    throw e;
  }
}
