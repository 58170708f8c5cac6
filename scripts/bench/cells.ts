/**
 * The workloads of a cell as HTTP requests: `words(limit: 100)`, a
 * `wordsConnection` page after a cursor, a search and `addWord` through the
 * gateway's `/graphql`, and the first page from the baseline, each with the
 * check its response body must pass.
 *
 * @module
 */
import type { StoreName } from "../../stores/types.ts";
import type { LoadTarget } from "./load.ts";
import type { Workload } from "./types.ts";

/** Words per listed page, as in the issue. */
export const PAGE = 100;

const WORDS_QUERY =
  "query BenchWords($store: Store!) { words(store: $store, limit: 100) { id word definition store createdAt } }";
const CURSOR_QUERY = "query BenchCursor($store: Store!, $after: String!) " +
  "{ wordsConnection(store: $store, first: 100, after: $after) " +
  "{ edges { cursor node { id word definition store createdAt } } pageInfo { hasNextPage endCursor } } }";
const SEARCH_QUERY = "query BenchSearch($store: Store!, $search: String!) " +
  "{ words(store: $store, search: $search, limit: 100) { id word definition store createdAt } }";
const ADD_MUTATION = "mutation BenchAdd($store: Store!, $word: String!, $definition: String!) " +
  "{ addWord(store: $store, word: $word, definition: $definition) { id word definition store createdAt } }";

/** A listing body: data, no errors. Cheap enough not to slow the load generator. */
function isWordsPage(body: string): boolean {
  return body.startsWith('{"data":{"words":[') && !body.includes('"errors":');
}

/** A cursor page that holds at least one word. */
function isCursorPage(body: string): boolean {
  return body.startsWith('{"data":{"wordsConnection":{"edges":[{') && !body.includes('"errors":');
}

/** A search answer holding exactly one word, the one with `id`. */
export function isOnly(id: string): (body: string) => boolean {
  const needle = `"id":"${id}"`;
  return (body) =>
    body.startsWith('{"data":{"words":[{"id":') && body.includes(needle) &&
    body.indexOf('"id":', 20) === -1 && !body.includes('"errors":');
}

function isAdded(body: string): boolean {
  return body.startsWith('{"data":{"addWord":{"id":"') && !body.includes('"errors":');
}

/** Where the floor server (scripts/bench/floor_server.ts) answers each floor. */
export const FLOOR_PATHS = {
  bare: "/bare",
  yoga: "/yoga/graphql",
  jit: "/jit/graphql",
} as const;

/** Which floor: bare handler, plain Yoga, Yoga with the JIT. */
export type Floor = keyof typeof FLOOR_PATHS;

/** Where the servers listen, and the bearer token the gateway wants (its `WRITE_TOKEN`), if any. */
export interface Endpoints {
  gateway: string;
  baseline: string;
  /** The classic Express app of each store that has one and runs. */
  express?: Partial<Record<StoreName, string>>;
  token?: string;
}

/** An Express app's listing: a JSON array of words. */
function isArrayPage(body: string): boolean {
  return body.startsWith('[{"id":');
}

/** The request of `floor` on the floor server at `url` (scripts/bench/floor_server.ts). */
export function floorTarget(floor: Floor, url: string): LoadTarget {
  if (floor === "bare") {
    return { url: `${url}${FLOOR_PATHS.bare}`, method: "GET", verify: isWordsPage };
  }
  return {
    url: `${url}${FLOOR_PATHS[floor]}`,
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: WORDS_QUERY, variables: { store: "SQLITE" } }),
    verify: isWordsPage,
  };
}

/** What the cursor and search workloads need: the cursor, and the rare word with its id. */
export interface CellParams {
  /** `encodeCursor` of the word the cursor page starts after. */
  after?: string;
  /** The rare word, searched for as is. */
  search?: string;
  /** The rare word's id: the one word the search must find. */
  searchId?: string;
}

/** The request of `workload` against `store`. */
export function targetFor(
  workload: Workload,
  store: StoreName,
  urls: Endpoints,
  params: CellParams = {},
): LoadTarget {
  const JSON_HEADERS: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json",
    ...(urls.token ? { authorization: `Bearer ${urls.token}` } : {}),
  };
  switch (workload) {
    case "gateway-words":
      return {
        url: `${urls.gateway}/graphql`,
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ query: WORDS_QUERY, variables: { store } }),
        verify: isWordsPage,
      };
    case "gateway-cursor":
      if (params.after === undefined) throw new Error("a cursor cell needs a cursor");
      return {
        url: `${urls.gateway}/graphql`,
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ query: CURSOR_QUERY, variables: { store, after: params.after } }),
        verify: isCursorPage,
      };
    case "gateway-search":
      if (params.search === undefined || params.searchId === undefined) {
        throw new Error("a search cell needs the rare word and its id");
      }
      return {
        url: `${urls.gateway}/graphql`,
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ query: SEARCH_QUERY, variables: { store, search: params.search } }),
        verify: isOnly(params.searchId),
      };
    case "baseline-words":
      return {
        url: `${urls.baseline}/words?store=${store}&limit=${PAGE}&offset=0`,
        method: "GET",
        verify: isWordsPage,
      };
    case "express-words":
      return {
        url: `${expressUrl(urls, store)}/words`,
        method: "GET",
        verify: isArrayPage,
      };
    case "express-addWord":
      return {
        url: `${expressUrl(urls, store)}/words`,
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          word: "bench-add",
          definition: "added under load by deno task bench",
        }),
        verify: (body) => body === "",
      };
    case "gateway-addWord":
      return {
        url: `${urls.gateway}/graphql`,
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({
          query: ADD_MUTATION,
          variables: {
            store,
            word: "bench-add",
            definition: "added under load by deno task bench",
          },
        }),
        verify: isAdded,
      };
  }
}

function expressUrl(urls: Endpoints, store: StoreName): string {
  const url = urls.express?.[store];
  if (!url) throw new Error(`no Express app runs for ${store}`);
  return url;
}

/** Longest a single probe (a check or a timing) may take: the gateway's request timeout in a run. */
export const PROBE_TIMEOUT_MS = 60_000;

/** Sends `target` once; the parsed body, or why it failed (never throws). */
export async function probe(
  target: LoadTarget,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<{ ok: true; body: unknown; ms: number } | { ok: false; why: string }> {
  const t0 = performance.now();
  try {
    const res = await fetch(target.url, {
      method: target.method,
      headers: target.headers,
      body: target.body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    if (!res.ok || !target.verify(text)) {
      return { ok: false, why: `HTTP ${res.status}: ${text.slice(0, 300)}` };
    }
    return { ok: true, body: JSON.parse(text), ms };
  } catch (e) {
    return { ok: false, why: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

/**
 * Milliseconds one request to `target` takes on an idle server: the fastest
 * of three, or the first alone when it already passes `budgetMs`; undefined
 * with the reason when it fails or passes {@linkcode PROBE_TIMEOUT_MS}.
 */
export async function timePage(
  target: LoadTarget,
  budgetMs = Infinity,
): Promise<{ ms: number } | { why: string }> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const r = await probe(target);
    if (!r.ok) return { why: r.why };
    best = Math.min(best, r.ms);
    if (best > budgetMs) break;
  }
  return { ms: best };
}
