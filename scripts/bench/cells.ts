/**
 * The three workloads of a cell as HTTP requests: `words(limit: 100)` and
 * `addWord` through the gateway's `/graphql`, and the same listing from the
 * baseline, each with the check its response body must pass.
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
const ADD_MUTATION = "mutation BenchAdd($store: Store!, $word: String!, $definition: String!) " +
  "{ addWord(store: $store, word: $word, definition: $definition) { id word definition store createdAt } }";

/** A listing body: data, no errors. Cheap enough not to slow the load generator. */
function isWordsPage(body: string): boolean {
  return body.startsWith('{"data":{"words":[') && !body.includes('"errors":');
}

function isAdded(body: string): boolean {
  return body.startsWith('{"data":{"addWord":{"id":"') && !body.includes('"errors":');
}

/** Where the two servers listen, and the bearer token the gateway wants (its `WRITE_TOKEN`), if any. */
export interface Endpoints {
  gateway: string;
  baseline: string;
  token?: string;
}

/** The request of `workload` against `store`. */
export function targetFor(workload: Workload, store: StoreName, urls: Endpoints): LoadTarget {
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
    case "baseline-words":
      return {
        url: `${urls.baseline}/words?store=${store}&limit=${PAGE}&offset=0`,
        method: "GET",
        verify: isWordsPage,
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

/**
 * Sends `target` once and returns why its answer is wrong, or undefined when
 * it passes its check and a listing holds `expectedWords` words.
 */
export async function preflight(
  target: LoadTarget,
  expectedWords?: number,
): Promise<string | undefined> {
  try {
    const res = await fetch(target.url, {
      method: target.method,
      headers: target.headers,
      body: target.body,
    });
    const text = await res.text();
    if (!res.ok || !target.verify(text)) return `HTTP ${res.status}: ${text.slice(0, 300)}`;
    if (expectedWords !== undefined) {
      const n = (JSON.parse(text) as { data: { words: unknown[] } }).data.words.length;
      if (n !== expectedWords) return `listed ${n} words, expected ${expectedWords}`;
    }
    return undefined;
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

/**
 * Milliseconds one request to `target` takes on an idle server: the fastest of
 * three, after the preflight warmed it.
 */
export async function timePage(target: LoadTarget): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const res = await fetch(target.url, {
      method: target.method,
      headers: target.headers,
      body: target.body,
    });
    await res.arrayBuffer();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}
