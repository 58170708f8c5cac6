/**
 * Records for the tests that call a store module directly.
 *
 * @module
 */
import type { NewWord, WordRecord } from "../../stores/types.ts";

/** `records` as `list` returns them: without the search key `add` was given. */
export function listed(...records: NewWord[]): WordRecord[] {
  return records.map(({ searchKey: _, ...record }) => record);
}
