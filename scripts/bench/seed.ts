/**
 * Bringing a store up to a size: count what it holds (it may keep words from
 * tests or an earlier run), then add the rest straight through the store
 * module's `add`, many at once, timing it.
 *
 * @module
 */
import { redact } from "../../stores/errors.ts";
import { newRecord } from "../../stores/records.ts";
import type { StoreName, WordStore } from "../../stores/types.ts";
import type { SeedResult } from "./types.ts";

/** Tries per word before seeding gives up on a store. */
const ATTEMPTS = 3;

/**
 * How many words a store holds, found through `has(k)` ("are there at least
 * k words?"): doubling up from `target` (never past `cap`), then bisection to
 * within 1%. The answer is a lower bound: a probe that fails (`undefined`,
 * e.g. a store that cannot page that deep) counts as "no".
 */
export async function countWords(
  has: (k: number) => Promise<boolean | undefined>,
  target: number,
  cap = target * 4,
): Promise<number> {
  if ((await has(target)) !== true) return await bisect(has, 0, target);
  let lo = target;
  while (lo < cap) {
    const next = Math.min(lo * 2, cap);
    if ((await has(next)) !== true) return await bisect(has, lo, next);
    lo = next;
  }
  return lo;
}

/** The largest k in [lo, hi) with `has(k)`, to within 1% of itself, given `has(lo)` and not `has(hi)`. */
async function bisect(
  has: (k: number) => Promise<boolean | undefined>,
  lo: number,
  hi: number,
): Promise<number> {
  while (hi - lo > Math.max(1, Math.floor(lo / 100))) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await has(mid)) === true) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** "Does `store` hold at least `k` words?" through `list`; undefined when the store cannot say. */
export async function holdsAtLeast(store: WordStore, k: number): Promise<boolean | undefined> {
  if (k <= 0) return true;
  try {
    return (await store.list({ limit: 1, offset: k - 1 })).length > 0;
  } catch {
    return undefined;
  }
}

/** The word and definition of the n-th seeded word of run `tag`. */
export function seedWord(tag: string, n: number): { word: string; definition: string } {
  return {
    word: `bench-${tag}-${n}`,
    definition: `word number ${n} seeded by deno task bench to measure listing at scale`,
  };
}

/**
 * Adds words to `store` until it holds at least `target` (it may already hold
 * more: tests' words, an earlier run's, or this run's `addWord` cells), with
 * `concurrency` adds in flight. `progress` is called every few seconds with the count added.
 */
export async function seedStore(
  name: StoreName,
  store: WordStore,
  target: number,
  options: {
    concurrency: number;
    tag: string;
    /** Counting stops here (default 4 × target). */
    countCap?: number;
    progress?: (added: number, of: number) => void;
  },
): Promise<SeedResult> {
  const before = await countWords((k) => holdsAtLeast(store, k), target, options.countCap);
  const missing = Math.max(0, target - before);
  let next = 0;
  let added = 0;
  const t0 = performance.now();
  const ticker = setInterval(() => options.progress?.(added, missing), 5_000);
  const worker = async () => {
    while (next < missing) {
      const { word, definition } = seedWord(options.tag, before + next++);
      for (let attempt = 1;; attempt++) {
        try {
          await store.add(newRecord(word, definition));
          added++;
          break;
        } catch (e) {
          if (attempt >= ATTEMPTS) {
            const why = redact(`${(e as Error).name}: ${(e as Error).message}`).slice(0, 200);
            throw new Error(`${name}: seeding failed after ${added} words: ${why}`);
          }
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, missing) }, worker));
  } finally {
    clearInterval(ticker);
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    store: name,
    target,
    before,
    added,
    held: before + added,
    seconds: Math.round(seconds * 100) / 100,
    wordsPerSecond: seconds > 0 && added > 0 ? Math.round(added / seconds) : 0,
    concurrency: options.concurrency,
  };
}
