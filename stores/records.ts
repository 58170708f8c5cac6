/**
 * Behaviour every store shares: building a record and matching a search the
 * same way, so that the same `addWord` calls list the same from every store.
 *
 * @module
 */
import { v7 as uuidv7 } from "uuid";
import type { WordRecord } from "./types.ts";

/**
 * Builds the record to store: a monotonic UUIDv7 `id` (so `id` order is
 * insertion order) and `createdAt` taken from the same millisecond.
 */
export function newRecord(word: string, definition: string): WordRecord {
  const id = uuidv7();
  return { id, word, definition, createdAt: timestampOf(id) };
}

/** The ISO-8601 UTC time stored in the first 48 bits of a UUIDv7. */
export function timestampOf(id: string): string {
  const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return new Date(ms).toISOString();
}

/** The case folding used for search everywhere the match is done in TypeScript. */
export function fold(text: string): string {
  return text.toLowerCase();
}

/**
 * True when `needle` occurs, case-insensitively and literally, in the word or
 * the definition. For stores that filter in TypeScript (Redis, RabbitMQ, Scylla).
 */
export function matchesSearch(record: WordRecord, needle: string | undefined): boolean {
  if (needle === undefined || needle === "") return true;
  const n = fold(needle);
  return fold(record.word).includes(n) || fold(record.definition).includes(n);
}

/** Sorts records by id ascending (insertion order) in place and returns them. */
export function byId(records: WordRecord[]): WordRecord[] {
  return records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
