/**
 * Editing and deleting, the same way on every store: read the word, check
 * the caller's expected revision, then compare-and-set through the store's
 * `replace`/`remove`, which apply only if nobody changed the word meanwhile.
 * A lost race without an expected revision is retried on top of the winner
 * (cockatiel, jittered backoff), so each edit applies whole and atomically:
 * the word ends as one acknowledged edit left it, never as a mix of two.
 *
 * A revision is `updatedAt`, or `createdAt` for a never-edited word; every
 * edit sets `updatedAt` strictly later than the revision it replaces, so a
 * revision identifies one state of a word even within one millisecond.
 *
 * @module
 */
import { ExponentialBackoff, handleType, retry } from "cockatiel";
import { withSearchKey } from "./records.ts";
import type { WordRecord, WordStore } from "./types.ts";

/** No word with this id in the store (never was, or deleted). */
export class NotFoundError extends Error {
  override name = "NotFoundError";
  constructor(readonly id: string) {
    super(`no word with id ${id}`);
  }
}

/** The word changed since the revision the caller expected; `current` is how it is now. */
export class ConflictError extends Error {
  override name = "ConflictError";
  constructor(readonly current: WordRecord) {
    super("the word was changed by someone else since you read it");
  }
}

/** A compare-and-set that lost to another writer; retried, never shown to a client. */
class LostRace extends Error {
  override name = "LostRace";
}

/** What `updateRecord` and `deleteRecord` need of a store (a `WordStore` or `ManagedStore`). */
export type EditableStore = Pick<WordStore, "get" | "replace" | "remove">;

/** The fields an edit sets; an absent field keeps its value. */
export interface WordChange {
  word?: string;
  definition?: string;
}

/** The revision of `record`: its `updatedAt`, else its `createdAt`. */
export function revisionOf(record: WordRecord): string {
  return record.updatedAt ?? record.createdAt;
}

/** The `updatedAt` of an edit made now on top of `revision`: now, or 1 ms after it if that is later. */
export function nextRevision(revision: string, now = Date.now()): string {
  return new Date(Math.max(now, Date.parse(revision) + 1)).toISOString();
}

/** Lost races are retried quickly, with jitter, many times: each one means another edit applied. */
const onLostRace = retry(handleType(LostRace), {
  maxAttempts: 200,
  backoff: new ExponentialBackoff({ initialDelay: 1, maxDelay: 25 }),
});

/**
 * Applies `change` to word `id` and resolves with the word after it. With
 * `expected` (a revision), only if the word is still at it: otherwise
 * {@linkcode ConflictError}. {@linkcode NotFoundError} when there is no such word.
 */
export function updateRecord(
  store: EditableStore,
  id: string,
  change: WordChange,
  expected?: string,
): Promise<WordRecord> {
  return onLostRace.execute(async () => {
    const current = await readChecked(store, id, expected);
    const revision = revisionOf(current);
    const next = withSearchKey({
      id,
      word: change.word ?? current.word,
      definition: change.definition ?? current.definition,
      createdAt: current.createdAt,
      updatedAt: nextRevision(revision),
    });
    if (await store.replace(next, revision)) {
      const { searchKey: _, ...record } = next;
      return record;
    }
    throw await lost(store, id, expected);
  });
}

/**
 * Deletes word `id` and resolves with it as it was. With `expected`, only if
 * the word is still at that revision ({@linkcode ConflictError} otherwise);
 * {@linkcode NotFoundError} when there is no such word.
 */
export function deleteRecord(
  store: EditableStore,
  id: string,
  expected?: string,
): Promise<WordRecord> {
  return onLostRace.execute(async () => {
    const current = await readChecked(store, id, expected);
    if (await store.remove(id, revisionOf(current))) return current;
    throw await lost(store, id, expected);
  });
}

/** The word as stored now, checked against `expected`. */
async function readChecked(
  store: EditableStore,
  id: string,
  expected: string | undefined,
): Promise<WordRecord> {
  const current = await store.get(id);
  if (!current) throw new NotFoundError(id);
  if (expected !== undefined && revisionOf(current) !== expected) {
    throw new ConflictError(current);
  }
  return current;
}

/**
 * After a failed compare-and-set: a caller who named a revision learns that
 * the word is gone or changed (and asks again while it is still at that
 * revision); anyone else retries on top of the new state.
 */
async function lost(store: EditableStore, id: string, expected: string | undefined) {
  if (expected === undefined) return new LostRace();
  const now = await store.get(id);
  if (!now) return new NotFoundError(id);
  // Still at the expected revision: another writer's change of it is landing (MongoDB's claim is
  // in, its write not yet); ask again, and its outcome decides between CONFLICT and NOT_FOUND.
  return revisionOf(now) === expected ? new LostRace() : new ConflictError(now);
}
