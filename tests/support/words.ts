/**
 * Adding and listing words through the in-process gateway, for the tests
 * that throw many inputs at every store (property and injection tests): one
 * shared gateway connected to every configured store, the two operations,
 * and the literal-match rule hits are checked against.
 *
 * @module
 */
import { storeConfig } from "./env.ts";
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
}

/** Stores whose search is full-text and may add fuzzy hits to the literal ones. */
export const FULL_TEXT: ReadonlySet<StoreName> = new Set<StoreName>(["ELASTICSEARCH"]);

/** The `addWord` mutation with every field of `Word`. */
export const ADD = `mutation($store: Store!, $word: String!, $definition: String!) {
  addWord(store: $store, word: $word, definition: $definition) { id word definition store createdAt }
}`;

/** The `words` query with every field of `Word`. */
export const LIST = `query($store: Store!, $search: String, $limit: Int, $offset: Int) {
  words(store: $store, search: $search, limit: $limit, offset: $offset) { id word definition store createdAt }
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

/** The hits of `words`; throws with the errors when it answered any. */
export async function search(g: TestGateway, store: StoreName, needle: string): Promise<Word[]> {
  const { words, body } = await trySearch(g, store, needle);
  if (!words) throw new Error(`words(search) failed: ${JSON.stringify(body.errors)}`);
  return words;
}

/** The gateway's search rule: `needle` occurs case-insensitively and literally in word or definition. */
export function literallyMatches(w: Pick<Word, "word" | "definition">, needle: string): boolean {
  const n = needle.toLowerCase();
  return w.word.toLowerCase().includes(n) || w.definition.toLowerCase().includes(n);
}
