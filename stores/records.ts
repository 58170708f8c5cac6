/**
 * Behaviour every store shares: building a record, and the one definition of
 * search (see `fold.ts`), so that the same `addWord` calls list and search
 * the same from every store.
 *
 * @module
 */
import { v7 as uuidv7 } from "uuid";
import { fold } from "./fold.ts";
import type { NewWord, WordRecord } from "./types.ts";

/**
 * Separates the folded word from the folded definition in a search key. A
 * control character, so never part of a needle (validation refuses them): a
 * match can never span both fields.
 */
export const KEY_SEPARATOR = "\u001f";

/**
 * Longest search key in code points: full case folding and NFD turn one code
 * point into at most four (U+1F82 → α ̓ ̀ ι), so two fields of 256 become at
 * most 2 × 1024 plus the separator. In UTF-8 bytes a key is at most three
 * times its fields (U+0390 ΐ, 2 bytes, folds to 6).
 */
export const MAX_SEARCH_KEY = 2 * 4 * 256 + 1;

/** What a store compares a folded needle with: `fold(word) ␟ fold(definition)`. */
export function searchKey(word: string, definition: string): string {
  return fold(word) + KEY_SEPARATOR + fold(definition);
}

/**
 * Builds the record to store: a monotonic UUIDv7 `id` (so `id` order is
 * insertion order), `createdAt` taken from the same millisecond, and the
 * search key.
 */
export function newRecord(word: string, definition: string): NewWord {
  const id = uuidv7();
  return withSearchKey({ id, word, definition, createdAt: timestampOf(id) });
}

/** `record` with its search key. */
export function withSearchKey(record: WordRecord): NewWord {
  return { ...record, searchKey: searchKey(record.word, record.definition) };
}

/** The ISO-8601 UTC time stored in the first 48 bits of a UUIDv7. */
export function timestampOf(id: string): string {
  const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return new Date(ms).toISOString();
}

/**
 * True when the folded `needle` occurs literally in the record's search key
 * (computed here: for stores that read rows and filter them in TypeScript).
 */
export function matchesSearch(record: WordRecord, needle: string | undefined): boolean {
  if (needle === undefined || needle === "") return true;
  return searchKey(record.word, record.definition).includes(needle);
}

/** Sorts records by id ascending (insertion order) in place and returns them. */
export function byId(records: WordRecord[]): WordRecord[] {
  return records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A stored word without a search key, as a backfill reads it. */
export type Unkeyed = Pick<WordRecord, "id" | "word" | "definition">;

/**
 * Gives every stored word that has no search key (stored before keys
 * existed) its key, walking the words in id order, `batch` at a time. `next`
 * reads up to `batch` words without a key whose id is greater than `after`
 * (all of them when undefined), in id order; `write` stores their keys. Safe
 * to run again, and from several gateways at once (each computes the same
 * key). Resolves with how many words it keyed.
 */
export async function backfillSearchKeys(
  next: (after: string | undefined, batch: number) => Promise<Unkeyed[]>,
  write: (keys: { id: string; searchKey: string }[]) => Promise<void>,
  batch = 500,
): Promise<number> {
  let done = 0;
  let after: string | undefined;
  for (;;) {
    const rows = await next(after, batch);
    if (rows.length === 0) return done;
    await write(rows.map((r) => ({ id: r.id, searchKey: searchKey(r.word, r.definition) })));
    done += rows.length;
    after = rows[rows.length - 1].id;
    if (rows.length < batch) return done;
  }
}
