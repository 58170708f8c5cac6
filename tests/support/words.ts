/**
 * Adding and listing words through the in-process gateway, for the tests
 * that throw many inputs at every store (property and injection tests): one
 * shared gateway connected to every configured store, the two operations,
 * and the literal-match rule hits are checked against.
 *
 * @module
 */
import { storeConfig } from "./env.ts";
import { fold } from "../../stores/fold.ts";
import { matchesSearch } from "../../stores/records.ts";
import { type GraphQLBody, TestGateway } from "./gateway.ts";
import {
  type NetworkStoreName,
  STORE_NAMES,
  type StoreConfig,
  type StoreName,
} from "../../stores/types.ts";

/** A word as the `Word` type returns it. */
export interface Word {
  id: string;
  word: string;
  definition: string;
  store: string;
  createdAt: string;
  updatedAt: string | null;
}

/** Every field of `Word`. */
const WORD_FIELDS = "id word definition store createdAt updatedAt";

/** The `addWord` mutation with every field of `Word`. */
export const ADD = `mutation($store: Store!, $word: String!, $definition: String!) {
  addWord(store: $store, word: $word, definition: $definition) { ${WORD_FIELDS} }
}`;

/** The `words` query with every field of `Word`. */
export const LIST = `query($store: Store!, $search: String, $limit: Int, $offset: Int) {
  words(store: $store, search: $search, limit: $limit, offset: $offset) { ${WORD_FIELDS} }
}`;

/** The `updateWord` mutation with every field of `Word`. */
export const UPDATE = `mutation($store: Store!, $id: ID!, $word: String, $definition: String,
  $expectedUpdatedAt: String) {
  updateWord(store: $store, id: $id, word: $word, definition: $definition,
    expectedUpdatedAt: $expectedUpdatedAt) { ${WORD_FIELDS} }
}`;

/** The `deleteWord` mutation with every field of `Word`. */
export const DELETE = `mutation($store: Store!, $id: ID!, $expectedUpdatedAt: String) {
  deleteWord(store: $store, id: $id, expectedUpdatedAt: $expectedUpdatedAt) { ${WORD_FIELDS} }
}`;

let gateway: TestGateway | undefined;

/** One gateway per test file, connected to every configured store, ready for `store`. */
export async function gatewayFor(store: StoreName): Promise<TestGateway> {
  if (!gateway) {
    const configured: Partial<Record<NetworkStoreName, StoreConfig>> = {};
    for (const s of STORE_NAMES) {
      const c = s === "SQLITE" ? undefined : storeConfig(s);
      if (c) configured[s as NetworkStoreName] = c;
    }
    gateway = new TestGateway(configured);
    globalThis.addEventListener("unload", () => void gateway?.close());
  }
  await gateway.registry.get(store).whenReady(60_000);
  return gateway;
}

/** Adds a word; throws with the errors when `addWord` answered any. */
export async function addWord(
  g: TestGateway,
  store: StoreName,
  word: string,
  definition: string,
): Promise<Word> {
  const { word: added, body } = await tryAdd(g, store, word, definition);
  if (!added) throw new Error(`addWord failed: ${JSON.stringify(body.errors)}`);
  return added;
}

/** A page of `words`; throws with the errors when it answered any. */
export async function listWords(
  g: TestGateway,
  store: StoreName,
  search?: string,
  limit = 1000,
  offset = 0,
): Promise<Word[]> {
  const body = await g.exec(LIST, { store, search, limit, offset });
  const words = (body.data as { words?: Word[] } | null | undefined)?.words;
  if (body.errors || !words) throw new Error(`words failed: ${JSON.stringify(body.errors)}`);
  return words;
}

/** The `wordsConnection` query with every field of an edge and of `pageInfo`. */
export const CONNECTION = `query($store: Store!, $search: String, $first: Int, $after: String) {
  wordsConnection(store: $store, search: $search, first: $first, after: $after) {
    edges { cursor node { ${WORD_FIELDS} } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

/** A `wordsConnection` page as the query above returns it. */
export interface ConnectionPage {
  edges: { cursor: string; node: Word }[];
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
}

/** A `wordsConnection` page, or the response body when it answered an error. */
export async function tryConnection(
  g: TestGateway,
  store: StoreName,
  args: { search?: string; first?: number; after?: string | null },
): Promise<{ page?: ConnectionPage; body: GraphQLBody }> {
  const body = await g.exec(CONNECTION, { store, ...args });
  const page = (body.data as { wordsConnection?: ConnectionPage } | null | undefined)
    ?.wordsConnection;
  return { page: body.errors ? undefined : page, body };
}

/** A `wordsConnection` page; throws with the errors when it answered any. */
export async function connection(
  g: TestGateway,
  store: StoreName,
  args: { search?: string; first?: number; after?: string | null },
): Promise<ConnectionPage> {
  const { page, body } = await tryConnection(g, store, args);
  if (!page) throw new Error(`wordsConnection failed: ${JSON.stringify(body.errors)}`);
  return page;
}

/** The word after `updateWord`, or the response body when it answered an error. */
export async function tryUpdate(
  g: TestGateway,
  store: StoreName,
  args: { id: unknown; word?: unknown; definition?: unknown; expectedUpdatedAt?: unknown },
): Promise<{ word?: Word; body: GraphQLBody }> {
  const body = await g.exec(UPDATE, { store, ...args });
  const word = (body.data as { updateWord?: Word } | null | undefined)?.updateWord ?? undefined;
  return { word: body.errors ? undefined : word, body };
}

/** The word as it was before `deleteWord`, or the response body when it answered an error. */
export async function tryDelete(
  g: TestGateway,
  store: StoreName,
  args: { id: unknown; expectedUpdatedAt?: unknown },
): Promise<{ word?: Word; body: GraphQLBody }> {
  const body = await g.exec(DELETE, { store, ...args });
  const word = (body.data as { deleteWord?: Word } | null | undefined)?.deleteWord ?? undefined;
  return { word: body.errors ? undefined : word, body };
}

/** The first error's `extensions.code`, if any. */
export function codeOf(body: GraphQLBody): string | undefined {
  return body.errors?.[0]?.extensions?.code;
}

/** The added word, or the response body when `addWord` did not answer one. */
export async function tryAdd(
  g: TestGateway,
  store: StoreName,
  word: unknown,
  definition: unknown,
): Promise<{ word?: Word; body: GraphQLBody }> {
  const body = await g.exec(ADD, { store, word, definition });
  const added = (body.data as { addWord?: Word } | null | undefined)?.addWord ?? undefined;
  return { word: body.errors ? undefined : added, body };
}

/** The hits of `words`, or the response body when it answered an error. */
export async function trySearch(
  g: TestGateway,
  store: StoreName,
  search: unknown,
  limit = 1000,
): Promise<{ words?: Word[]; body: GraphQLBody }> {
  const body = await g.exec(LIST, { store, search, limit, offset: 0 });
  const words = (body.data as { words?: Word[] } | null | undefined)?.words;
  return { words: body.errors ? undefined : words, body };
}

/** The hits of `words` (first 1000); throws with the errors when it answered any. */
export function search(g: TestGateway, store: StoreName, needle: string): Promise<Word[]> {
  return listWords(g, store, needle);
}

/**
 * The gateway's search rule, for checking hits: `needle` occurs in the word or
 * the definition after both are folded. This uses the gateway's own `fold`;
 * `property_test.ts` and `fold_test.ts` hold that fold to an independent
 * implementation (CPython's), so the rule is not checked against itself alone.
 */
export function literallyMatches(w: Pick<Word, "word" | "definition">, needle: string): boolean {
  return matchesSearch({ id: "", createdAt: "", ...w }, fold(needle));
}
