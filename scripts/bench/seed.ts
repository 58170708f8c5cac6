/**
 * Bringing a store up to a size through its bulk path: each store module's
 * `addMany`, in batches with a few calls in flight, timed. There is no
 * fallback to `add`: a module without `addMany` (one from before it was part
 * of the contract) is refused, since one call per word would take hours at a
 * million words and measure the wrong thing.
 *
 * The seeded words look like an import of historical data: word `n` of a
 * run gets a UUIDv7 id whose timestamp is `spacingMs` after word `n - 1`'s,
 * the last possible word ending at the run's start, so ids are strictly
 * increasing with `n` (the seeded order is the id order) and spread over
 * hours and days (the Scylla store partitions words by the hour of their id).
 * One word per size step is a rare word, in the middle of that step's range,
 * that no other word contains.
 *
 * What a store held is counted by cursor pages (`after`), which cost the
 * same at any depth: only the words a run did not seed are ever counted.
 *
 * @module
 */
import { redact } from "../../stores/errors.ts";
import { timestampOf, withSearchKey } from "../../stores/records.ts";
import type { NewWord, StoreName, WordStore } from "../../stores/types.ts";
import type { SeedResult } from "./types.ts";

/** Tries per batch before seeding gives up on a store. */
const ATTEMPTS = 5;

/** Where a run's seeded words sit in time, and how they are named. */
export interface SeedPlan {
  /** Run tag (base 36), part of every seeded word. */
  tag: string;
  /** Millisecond of the last word the plan could seed (word `total - 1`). */
  endMs: number;
  /** Milliseconds between the ids of two consecutive words (≥ 1). */
  spacingMs: number;
  /** Words of the largest size step: word `total - 1` is the newest. */
  total: number;
  /** 12 random bits shared by the run's ids (their `rand_a`). */
  salt: number;
}

/** One word every 30 s: about 120 per hour, so a million words span 347 days. */
export const SEED_SPACING_MS = 30_000;

/** A plan for `total` words ending at `endMs`. */
export function seedPlan(
  tag: string,
  total: number,
  endMs = Date.now(),
  spacingMs = SEED_SPACING_MS,
  salt = Math.floor(Math.random() * 0x1000),
): SeedPlan {
  if (!(spacingMs >= 1) || !Number.isInteger(spacingMs)) {
    throw new RangeError("spacingMs must be a whole number ≥ 1");
  }
  if (endMs - (total - 1) * spacingMs < 0) throw new RangeError("the plan starts before 1970");
  return { tag, endMs, spacingMs, total, salt: salt & 0xfff };
}

/** The millisecond of word `n`'s id. */
export function seedMs(plan: SeedPlan, n: number): number {
  return plan.endMs - (plan.total - 1 - n) * plan.spacingMs;
}

/**
 * Word `n`'s id: a UUIDv7 (RFC 9562) whose 48-bit time is {@linkcode seedMs},
 * `rand_a` the plan's salt and `rand_b` the counter `n` (RFC 9562 §6.2's
 * dedicated counter). Distinct milliseconds make ids strictly increasing with
 * `n`; the counter keeps them unique and reproducible.
 */
export function seedId(plan: SeedPlan, n: number): string {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 48) throw new RangeError(`bad word number ${n}`);
  const ms = seedMs(plan, n).toString(16).padStart(12, "0");
  const randA = plan.salt.toString(16).padStart(3, "0");
  const randB = n.toString(16).padStart(15, "0"); // 60 of rand_b's 62 bits; n < 2^48
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${randA}-8${randB.slice(0, 3)}-${randB.slice(3)}`;
}

/** Digits of every seeded word's number: equal widths, so no word is a substring of another. */
function width(plan: SeedPlan): number {
  return String(plan.total).length;
}

/** The word and definition of the n-th seeded (ordinary) word. */
export function seedWord(plan: SeedPlan, n: number): { word: string; definition: string } {
  return {
    word: `bench-${plan.tag}-${String(n).padStart(width(plan), "0")}`,
    definition: `word number ${n} seeded by deno task bench to measure listing at scale`,
  };
}

/**
 * The rare word of size step `size`: one word, found by no other word's
 * search and finding no other (`bench-rare-<tag>-<size>`, padded).
 */
export function rareWord(plan: SeedPlan, size: number): string {
  return `bench-rare-${plan.tag}-${String(size).padStart(width(plan), "0")}`;
}

/**
 * Where the rare word of the step from `previous` words to `size` sits: the
 * middle of the whole range (word `size / 2`), or the first word of the step
 * when the step is smaller than what came before.
 */
export function rarePosition(previous: number, size: number): number {
  return Math.max(previous, Math.floor(size / 2));
}

/** The record of word `n`, or of the step's rare word when `rareOf` is that step's size. */
export function seedRecord(plan: SeedPlan, n: number, rareOf?: number): NewWord {
  const id = seedId(plan, n);
  const { word, definition } = rareOf === undefined
    ? seedWord(plan, n)
    : { word: rareWord(plan, rareOf), definition: "the one rare word of its size step" };
  return withSearchKey({ id, word, definition, createdAt: timestampOf(id) });
}

/** The first possible UUIDv7 of millisecond `ms`: every id of `ms` or later sorts after it. */
export function idFloor(ms: number): string {
  const hex = Math.max(0, ms).toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8)}-7000-8000-000000000000`;
}

/**
 * Counts `store`'s words after the id `after` (all of them when undefined)
 * by cursor pages of `pageSize`, each as cheap as the first page on a store
 * with ordered access; stops at `cap` words. `complete` is false when it
 * stopped there (the count is then a lower bound).
 */
export async function countByCursor(
  store: Pick<WordStore, "list">,
  after: string | undefined,
  cap = 200_000,
  pageSize = 1000,
): Promise<{ count: number; complete: boolean }> {
  let count = 0;
  let cursor = after;
  while (count < cap) {
    const page = await store.list({ limit: pageSize, offset: 0, after: cursor });
    count += page.length;
    if (page.length < pageSize) return { count, complete: true };
    cursor = page[page.length - 1].id;
  }
  return { count, complete: false };
}

/**
 * The hex id just below `id` in id order (undefined below the nil id): a
 * cursor whose next page starts at `id`.
 */
export function idBelow(id: string): string | undefined {
  const chars = [...id];
  for (let i = chars.length - 1; i >= 0; i--) {
    if (chars[i] === "-") continue;
    if (chars[i] !== "0") {
      chars[i] = (parseInt(chars[i], 16) - 1).toString(16);
      return chars.join("");
    }
    chars[i] = "f";
  }
  return undefined;
}

/** The ids of `records` (ascending) that `store` lists, read by cursor pages over their range. */
async function storedOf(store: WordStore, records: NewWord[]): Promise<Set<string>> {
  const wanted = new Set(records.map((r) => r.id));
  const last = records[records.length - 1].id;
  const found = new Set<string>();
  let after: string | undefined = idBelow(records[0].id);
  for (;;) {
    const page = await store.list({ limit: 1000, offset: 0, after });
    for (const w of page) if (wanted.has(w.id)) found.add(w.id);
    if (page.length < 1000 || page[page.length - 1].id >= last) return found;
    after = page[page.length - 1].id;
  }
}

/** How seeding runs: words per `addMany` call and calls in flight. */
export interface SeedSettings {
  batch: number;
  parallel: number;
  /** Called every few seconds with the words added so far. */
  progress?: (added: number, of: number) => void;
  /** Milliseconds between two reads of a failed batch, waiting for them to agree (default 2000). */
  settleMs?: number;
}

/** The module of `store` has no bulk path. */
export class NoBulkPathError extends Error {
  override name = "NoBulkPathError";
}

/** The batches of words `from` (inclusive) to `to` (exclusive), `batch` at a time. */
export function batches(from: number, to: number, batch: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = from; i < to; i += batch) out.push([i, Math.min(i + batch, to)]);
  return out;
}

/**
 * Seeds words `from` to `to - 1` of `plan` into `store` through `addMany`,
 * with the rare word of step `to` at its {@linkcode rarePosition}. `held` is
 * what the store held before (for the result). Throws
 * {@linkcode NoBulkPathError} when the module has no `addMany`.
 */
export async function seedStore(
  name: StoreName,
  store: WordStore,
  plan: SeedPlan,
  from: number,
  to: number,
  held: number,
  settings: SeedSettings,
): Promise<SeedResult> {
  if (typeof store.addMany !== "function") {
    throw new NoBulkPathError(`${name}: the store module has no addMany (bulk path)`);
  }
  const addMany = store.addMany.bind(store);
  const rare = rarePosition(from, to);
  const todo = batches(from, to, settings.batch);
  let next = 0;
  let added = 0;
  const t0 = performance.now();
  const ticker = setInterval(() => settings.progress?.(added, to - from), 5_000);
  const worker = async () => {
    while (next < todo.length) {
      const [a, b] = todo[next++];
      let records: NewWord[] = [];
      for (let n = a; n < b; n++) records.push(seedRecord(plan, n, n === rare ? to : undefined));
      let first: string | undefined;
      for (let attempt = 1;; attempt++) {
        try {
          await addMany(records);
          added += records.length;
          break;
        } catch (e) {
          // A transaction's "discarded because of previous errors" (Redis EXECABORT) names
          // the error that caused it only in `previousErrors` (e.g. OOM at maxmemory).
          const cause = (e as { previousErrors?: Error[] }).previousErrors?.[0];
          const why = redact(
            `${(e as Error).name}: ${(e as Error).message}` +
              (cause ? ` (${cause.message})` : ""),
          ).slice(0, 300);
          first ??= why;
          if (attempt >= ATTEMPTS) {
            throw new Error(
              `${name}: seeding failed after ${added} words: ${why}` +
                (first !== why ? ` (first try: ${first})` : ""),
            );
          }
          // A batch that failed late (a client-side timeout) may be stored in part or whole,
          // and the server may still be storing it: wait until what the store lists of it
          // stops changing, then send again only the rest, so no word is stored twice.
          try {
            const settle = settings.settleMs ?? 2_000;
            let stored = await storedOf(store, records);
            for (let i = 0; i < 15; i++) {
              await new Promise((r) => setTimeout(r, settle));
              const again = await storedOf(store, records);
              if (again.size === stored.size) break;
              stored = again;
            }
            added += stored.size;
            records = records.filter((r) => !stored.has(r.id));
            if (records.length === 0) break;
          } catch {
            // cannot tell: the next try sends the batch whole
          }
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(settings.parallel, todo.length) }, worker));
  } finally {
    clearInterval(ticker);
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    store: name,
    target: to,
    before: held,
    added,
    held: held + added,
    seconds: Math.round(seconds * 100) / 100,
    wordsPerSecond: seconds > 0 && added > 0 ? Math.round(added / seconds) : 0,
    batch: settings.batch,
    parallel: settings.parallel,
  };
}
