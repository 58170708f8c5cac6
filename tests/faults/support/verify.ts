/**
 * Whether every acknowledged `addWord` is stored exactly once: for each tag
 * the load used, the words that carry it are listed by search through the
 * gateway, page by page, and compared with the ids the gateway returned.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import type { Ack, GraphQLResponse } from "./samples.ts";

const SEARCH = `query($store: Store!, $search: String!, $offset: Int!) {
  words(store: $store, search: $search, limit: 1000, offset: $offset) { id word }
}`;
const PAGE = 1000;
/** Attempts per page while a store is still waking up. */
const ATTEMPTS = 40;

/** The result of checking a set of acknowledgements. */
export interface Durability {
  /** Acknowledged adds checked. */
  acked: number;
  /** Acknowledged ids not found. */
  lost: number;
  /** Acknowledged ids found more than once (each extra copy counts). */
  duplicated: number;
  /** Words of the run's tags that were stored although their add was not acknowledged. */
  unacknowledged: number;
  /** Words found with the run's tags, acknowledged or not. */
  listed: number;
  /** Per store: what is wrong, when anything is. */
  problems: string[];
  /** Per store with any: "MONGODB 43" words stored whose add was not acknowledged. */
  unacknowledgedByStore: string[];
}

/** Checks `acks` against what the gateway at `url` lists now. */
export async function checkDurability(url: string, acks: readonly Ack[]): Promise<Durability> {
  const result: Durability = {
    acked: acks.length,
    lost: 0,
    duplicated: 0,
    unacknowledged: 0,
    listed: 0,
    problems: [],
    unacknowledgedByStore: [],
  };
  const byStore = new Map<StoreName, Map<string, Set<string>>>();
  for (const a of acks) {
    const tags = byStore.get(a.store) ?? new Map<string, Set<string>>();
    byStore.set(a.store, tags);
    const ids = tags.get(a.tag) ?? new Set<string>();
    tags.set(a.tag, ids);
    ids.add(a.id);
  }
  for (const [store, tags] of byStore) {
    let lost = 0, duplicated = 0, extra = 0;
    for (const [tag, ids] of tags) {
      const found = await listTag(url, store, tag);
      result.listed += found.length;
      const seen = new Map<string, number>();
      for (const id of found) seen.set(id, (seen.get(id) ?? 0) + 1);
      for (const id of ids) {
        const n = seen.get(id) ?? 0;
        if (n === 0) lost++;
        if (n > 1) duplicated += n - 1;
      }
      for (const id of seen.keys()) if (!ids.has(id)) extra++;
    }
    result.lost += lost;
    result.duplicated += duplicated;
    result.unacknowledged += extra;
    if (extra) result.unacknowledgedByStore.push(`${store} ${extra}`);
    if (lost || duplicated) {
      result.problems.push(`${store}: ${lost} acknowledged adds lost, ${duplicated} duplicated`);
    }
  }
  return result;
}

/** Ids of every word of `store` whose word starts with `tag` (searching, then checking the start). */
async function listTag(url: string, store: StoreName, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0;; offset += PAGE) {
    const page = await searchPage(url, store, tag, offset);
    for (const w of page) if (w.word.startsWith(`${tag} `)) ids.push(w.id);
    if (page.length < PAGE) return ids;
  }
}

async function searchPage(
  url: string,
  store: StoreName,
  search: string,
  offset: number,
): Promise<{ id: string; word: string }[]> {
  let last = "";
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: SEARCH, variables: { store, search, offset } }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = await res.json() as GraphQLResponse;
      const words = body.data?.words as { id: string; word: string }[] | undefined;
      if (words && !body.errors) return words;
      last = body.errors?.[0]?.extensions?.code ?? `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).name;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`cannot list ${store} to check its writes: ${last}`);
}
