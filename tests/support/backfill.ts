/**
 * The search-key backfill, checked the same way on every store that stores
 * keys: words written as a gateway from before keys wrote them, then a newly
 * opened store must find every one of them by a folded search.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";
import { listed } from "./records.ts";
import { fold } from "../../stores/fold.ts";
import { newRecord } from "../../stores/records.ts";
import type { NewWord, WordRecord, WordStore } from "../../stores/types.ts";

/**
 * `count` words (more than one backfill batch of 500) whose search needs
 * folding (`ΟΔΟΣ` is found by `σ`, `Straße` by `STRASSE`), tagged with `tag`.
 */
export function oldWords(tag: string, count = 603): NewWord[] {
  return Array.from({ length: count }, (_, i) => newRecord(`ΟΔΟΣ ${tag} ${i}`, `Straße ${tag}`));
}

/** `words` as a gateway from before search keys stored them: without a key. */
export function unkeyed(words: NewWord[]): WordRecord[] {
  return listed(...words);
}

/** `store` finds each of `words` by a folded search, and all of them page by page. */
export async function assertFoundAfterBackfill(
  store: WordStore,
  tag: string,
  words: NewWord[],
): Promise<void> {
  const last = words.length - 1;
  const found = await store.list({ search: fold(`σ ${tag} ${last}`), limit: 10, offset: 0 });
  assertEquals(found, listed(words[last]));
  const rest = await store.list({ search: fold(`STRASSE ${tag}`), limit: 1000, offset: 500 });
  assertEquals(rest, listed(...words.slice(500)));
}
