/**
 * What the fault suite records about every response, and the figures it
 * derives from a time window of them: counts, outcomes and latency
 * percentiles per store.
 *
 * @module
 */
import { percentile } from "../../../scripts/bench/stats.ts";
import type { StoreName } from "../../../stores/types.ts";

/** Which operation a response answered ("unknown" when it cannot be told which). */
export type Op = "add" | "list" | "edit" | "delete" | "unknown";

/** Outcomes that are not a GraphQL `extensions.code`. */
export const OK = "ok";
/** No response within the load generator's own timeout: a hang. */
export const TIMEOUT = "TIMEOUT";
/** The TCP connection to the gateway failed or broke. */
export const CONNECTION_ERROR = "CONNECTION_ERROR";
/** Still unanswered when the load stopped. */
export const NO_ANSWER = "NO_ANSWER";
/** A 5xx whose body is not a GraphQL response with errors. */
export const BARE_5XX = "5XX_WITHOUT_GRAPHQL_BODY";
/** A response that is neither data nor a GraphQL error (e.g. unparsable). */
export const MALFORMED = "MALFORMED_RESPONSE";
/** An error without `extensions.code`. */
export const NO_CODE = "ERROR_WITHOUT_CODE";

/** One response (or failure to get one). */
export interface Sample {
  /** `Date.now()` when it completed. */
  at: number;
  store: StoreName;
  op: Op;
  /** Milliseconds from sending to the complete response (the timeout for a hang). */
  ms: number;
  /** HTTP status, 0 when there was no response. */
  status: number;
  /** {@linkcode OK}, the first error's `extensions.code`, or one of the constants above. */
  outcome: string;
  /**
   * Milliseconds of `ms` the gateway spent waiting for the store (its
   * `Server-Timing`), when it called one; the rest is the gateway's own.
   */
  storeMs?: number;
}

/** The total `dur` of a `Server-Timing` header value (undefined when absent or empty). */
export function serverTimingMs(header: string | string[] | undefined): number | undefined {
  const text = Array.isArray(header) ? header.join(",") : header;
  if (!text) return undefined;
  let total: number | undefined;
  for (const m of text.matchAll(/;\s*dur=([0-9.]+)/g)) total = (total ?? 0) + Number(m[1]);
  return total;
}

/** An `addWord` the gateway acknowledged. */
export interface Ack {
  store: StoreName;
  id: string;
  /** The unique tag in the word, used to find it again by search. */
  tag: string;
  word: string;
  /** The definition it was added with. */
  definition: string;
  /** `Date.now()` when the acknowledgement arrived. */
  at: number;
}

/**
 * How an edit or a deletion ended, for the checks afterwards: `acknowledged`
 * (the gateway returned the word), `refused` (a code that means nothing
 * changed: {@linkcode REFUSED}), or `unknown` (anything else: a
 * STORE_UNAVAILABLE, a timeout, a broken connection; it may have applied, or
 * may still apply).
 */
export type Settled = "acknowledged" | "refused" | "unknown";

/** Error codes that mean the edit or deletion did not apply. */
export const REFUSED: ReadonlySet<string> = new Set(["NOT_FOUND", "CONFLICT", "BAD_USER_INPUT"]);

/**
 * An `updateWord` (of the definition) or `deleteWord` the load sent, of a
 * word its own connection added, and how it ended. A connection has one
 * request in flight, so the changes of one word are recorded in the order
 * they were sent.
 */
export interface Change {
  store: StoreName;
  /** The word's id (an acknowledged add). */
  id: string;
  op: "edit" | "delete";
  settled: Settled;
  /** For an edit: the definition sent, or the one acknowledged. */
  definition?: string;
  /** For an acknowledged edit: the word's `updatedAt` as the gateway returned it. */
  updatedAt?: string;
}

/** A word as a mutation returned it. */
export interface ReturnedWord {
  id: string;
  word?: string;
  definition?: string;
  updatedAt?: string | null;
}

/** How a change ended, from the response's outcome and the word it returned (if any). */
export function settle(outcome: string, word: ReturnedWord | undefined): Settled {
  if (outcome === OK && word) return "acknowledged";
  return REFUSED.has(outcome) ? "refused" : "unknown";
}

/** A parsed GraphQL response body. */
export interface GraphQLResponse {
  data?: Record<string, unknown> | null;
  errors?: { message?: string; extensions?: { code?: string } }[];
}

/**
 * Classifies one HTTP response: its outcome and, for a successful
 * `addWord`, `updateWord` or `deleteWord`, the word it returned.
 */
export function classify(
  status: number,
  body: string,
): { outcome: string; message?: string; word?: ReturnedWord } {
  let parsed: GraphQLResponse | undefined;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const errors = parsed?.errors;
  if (status >= 500 && !(Array.isArray(errors) && errors.length > 0)) return { outcome: BARE_5XX };
  if (!parsed || typeof parsed !== "object") return { outcome: MALFORMED };
  if (Array.isArray(errors) && errors.length > 0) {
    return { outcome: errors[0]?.extensions?.code ?? NO_CODE, message: errors[0]?.message };
  }
  if (status !== 200 || !parsed.data) return { outcome: MALFORMED };
  const { addWord, updateWord, deleteWord } = parsed.data;
  const word = (addWord ?? updateWord ?? deleteWord) as ReturnedWord | null | undefined;
  return { outcome: OK, word: typeof word?.id === "string" ? word : undefined };
}

/** The samples of `store` (or all stores) completed in `[from, to)`. */
export function windowOf(
  samples: readonly Sample[],
  from: number,
  to: number,
  store?: StoreName,
): Sample[] {
  return samples.filter((s) => s.at >= from && s.at < to && (!store || s.store === store));
}

/** The 99th percentile latency (nearest rank) of `samples`, NaN when empty. */
export function p99(samples: readonly Sample[]): number {
  const sorted = Float64Array.from(samples.map((s) => s.ms)).sort();
  return percentile(sorted, 99);
}

/** The 99th percentile of the store's share ({@linkcode Sample.storeMs}), over the samples that have one. */
export function storeP99(samples: readonly Sample[]): number {
  const shares = samples.flatMap((s) => s.storeMs === undefined ? [] : [s.storeMs]);
  return percentile(Float64Array.from(shares).sort(), 99);
}

/**
 * The 99th percentile of what is left of each request once its database call
 * ({@linkcode Sample.storeMs}) is taken out: the gateway's own time, plus the
 * loopback and the load generator. Over the samples that have a database call.
 */
export function gatewayP99(samples: readonly Sample[]): number {
  const rest = samples.flatMap((s) =>
    s.storeMs === undefined ? [] : [Math.max(0, s.ms - s.storeMs)]
  );
  return percentile(Float64Array.from(rest).sort(), 99);
}

/** The largest latency of `samples`, 0 when empty. */
export function maxMs(samples: readonly Sample[]): number {
  return samples.reduce((m, s) => Math.max(m, s.ms), 0);
}

/** How many samples had each outcome. */
export function outcomes(samples: readonly { outcome: string }[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) out.set(s.outcome, (out.get(s.outcome) ?? 0) + 1);
  return out;
}

/** `{A: 3, B: 1}` as `A 3, B 1`, most frequent first. */
export function describeCounts(counts: Map<string, number>): string {
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
}
