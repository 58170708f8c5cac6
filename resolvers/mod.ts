/**
 * The resolver map of `schema.graphql`. Resolvers know GraphQL and the
 * `StoreRegistry` interface, and no database.
 *
 * @module
 */
import { createGraphQLError } from "graphql-yoga";
import { storeCall } from "./errors.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import {
  badInput,
  validFirst,
  validId,
  validPage,
  validRevision,
  validSearch,
  validText,
} from "./validation.ts";
import { deleteRecord, updateRecord, type WordChange } from "../stores/edits.ts";
import { fold } from "../stores/fold.ts";
import { newRecord } from "../stores/records.ts";
import type { StoreRegistry } from "../stores/registry.ts";
import type { StoreName, WordRecord } from "../stores/types.ts";
import type { EventError, WordEvent, WordEventKind } from "../server/events.ts";

/** What resolvers need of the word-event bus (server/events.ts). */
export interface WordEvents {
  publish(event: WordEvent): void;
  subscribe(
    store: StoreName | undefined,
    client?: string,
  ): AsyncIterableIterator<WordEvent | EventError>;
}

/** Times a store call (the server's `Server-Timing`, when enabled). */
export interface StoreTiming {
  measure<T>(store: StoreName, fn: () => Promise<T>): Promise<T>;
}

/** What every resolver receives as context. */
export interface GatewayContext {
  registry: StoreRegistry;
  /** Present when the server reports store timings. */
  timing?: StoreTiming;
  /** Where acknowledged writes are published and `wordEvents` subscribes; absent: no events. */
  events?: WordEvents;
  /** The client's address (the TCP peer, or as TRUSTED_PROXIES resolve it), for the per-client subscription cap. */
  clientAddress?: string;
}

/** Publishes a write the store acknowledged; only then, so no event for a rejected write. */
function published(ctx: GatewayContext, kind: WordEventKind, word: WordResult): WordResult {
  ctx.events?.publish({ kind, store: word.store, word });
  return word;
}

/** Runs `fn` against `store`, timed when the context has a timer. */
function onStore<T>(ctx: GatewayContext, store: StoreName, fn: () => Promise<T>): Promise<T> {
  return ctx.timing ? ctx.timing.measure(store, fn) : fn();
}

/** A word as the `Word` type resolves it. */
export type WordResult = WordRecord & { store: StoreName };

interface WordsArgs {
  store: StoreName;
  search?: string | null;
  limit: number;
  offset: number;
}

interface WordsConnectionArgs {
  store: StoreName;
  search?: string | null;
  first: number;
  after?: string | null;
}

/** A `WordConnection` as resolved. */
export interface WordConnection {
  edges: { cursor: string; node: WordResult }[];
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
}

/** The search needle as stores compare it: validated, then folded once (stores/fold.ts). */
function foldedSearch(value: string | null | undefined): string | undefined {
  const needle = validSearch(value);
  return needle === undefined ? undefined : fold(needle);
}

interface UpdateWordArgs {
  store: StoreName;
  id: string;
  word?: string | null;
  definition?: string | null;
  expectedUpdatedAt?: string | null;
}

interface DeleteWordArgs {
  store: StoreName;
  id: string;
  expectedUpdatedAt?: string | null;
}

/** The fields `updateWord` sets, each validated as `addWord` validates it; null counts as absent. */
function validChange(args: UpdateWordArgs): WordChange {
  const change: WordChange = {};
  if (args.word != null) change.word = validText("word", args.word, false);
  if (args.definition != null) change.definition = validText("definition", args.definition, true);
  if (change.word === undefined && change.definition === undefined) {
    throw badInput("word", "give word, definition or both: there is nothing to change");
  }
  return change;
}

interface AddWordArgs {
  store: StoreName;
  word: string;
  definition: string;
}

/** Resolvers for Query and Mutation. */
export const resolvers = {
  Query: {
    words(_: unknown, args: WordsArgs, ctx: GatewayContext): Promise<WordResult[]> {
      const search = foldedSearch(args.search);
      const page = validPage(args.limit, args.offset);
      return storeCall(async () => {
        const store = ctx.registry.get(args.store);
        const rows = await onStore(ctx, args.store, () => store.list({ search, ...page }));
        return rows.map((r) => ({ ...r, store: args.store }));
      });
    },
    wordsConnection(
      _: unknown,
      args: WordsConnectionArgs,
      ctx: GatewayContext,
    ): Promise<WordConnection> {
      const search = foldedSearch(args.search);
      const first = validFirst(args.first);
      const after = args.after == null ? undefined : decodeCursor(args.after, args.store, search);
      return storeCall(async () => {
        const store = ctx.registry.get(args.store);
        // One more than the page tells whether another page follows.
        const rows = await onStore(
          ctx,
          args.store,
          () => store.list({ search, limit: first + 1, offset: 0, after }),
        );
        const edges = rows.slice(0, first).map((r) => ({
          cursor: encodeCursor(args.store, search, r.id),
          node: { ...r, store: args.store },
        }));
        return {
          edges,
          pageInfo: {
            hasNextPage: rows.length > first,
            hasPreviousPage: after !== undefined,
            startCursor: edges[0]?.cursor ?? null,
            endCursor: edges.at(-1)?.cursor ?? null,
          },
        };
      });
    },
    async stores(_: unknown, __: unknown, { registry }: GatewayContext) {
      return (await registry.status()).map((s) => ({
        ...s,
        nodes: (s.nodes ?? []).map((n) => ({ ...n, role: n.role.toUpperCase() })),
      }));
    },
  },
  Mutation: {
    addWord(_: unknown, args: AddWordArgs, ctx: GatewayContext): Promise<WordResult> {
      const word = validText("word", args.word, false);
      const definition = validText("definition", args.definition, true);
      return storeCall(async () => {
        const store = ctx.registry.get(args.store);
        const record = newRecord(word, definition);
        await onStore(ctx, args.store, () => store.add(record));
        return published(ctx, "ADDED", { ...record, store: args.store });
      });
    },
    updateWord(_: unknown, args: UpdateWordArgs, ctx: GatewayContext): Promise<WordResult> {
      const id = validId(args.id);
      const change = validChange(args);
      const expected = validRevision(args.expectedUpdatedAt);
      return storeCall(async () => {
        const store = ctx.registry.get(args.store);
        const record = await onStore(
          ctx,
          args.store,
          () => updateRecord(store, id, change, expected),
        );
        return published(ctx, "UPDATED", { ...record, store: args.store });
      });
    },
    deleteWord(_: unknown, args: DeleteWordArgs, ctx: GatewayContext): Promise<WordResult> {
      const id = validId(args.id);
      const expected = validRevision(args.expectedUpdatedAt);
      return storeCall(async () => {
        const store = ctx.registry.get(args.store);
        const record = await onStore(ctx, args.store, () => deleteRecord(store, id, expected));
        return published(ctx, "DELETED", { ...record, store: args.store });
      });
    },
  },
  Subscription: {
    wordEvents: {
      subscribe(_: unknown, args: { store?: StoreName | null }, ctx: GatewayContext) {
        if (!ctx.events) {
          throw createGraphQLError("This gateway publishes no word events.", {
            extensions: { code: "BAD_REQUEST" },
          });
        }
        return ctx.events.subscribe(args.store ?? undefined, ctx.clientAddress);
      },
      /** An event as is; the bus's last event of a refused or ended subscriber as its error. */
      resolve(payload: WordEvent | EventError): WordEvent {
        if ("error" in payload) {
          throw createGraphQLError(payload.error.message, {
            extensions: { code: payload.error.code },
          });
        }
        return payload;
      },
    },
  },
};
