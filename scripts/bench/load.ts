/**
 * One measurement with autocannon (pinned in deno.json): a warm-up whose
 * figures are discarded, then a timed run whose every response latency is
 * kept exactly (see {@linkcode Samples}) and whose every body is checked.
 *
 * @module
 */
import autocannonUntyped from "autocannon";
import { round2, Samples, summarise } from "./stats.ts";

/** The request a cell repeats. */
export interface LoadTarget {
  url: string;
  method: "GET" | "POST" | "PUT";
  body?: string;
  headers?: Record<string, string>;
  /** A mixed load: each connection cycles through these bodies (same URL, method and headers) instead of `body`. */
  bodies?: string[];
  /** True when a response body carries the expected data (a 200 with GraphQL errors is a failure). */
  verify: (body: string) => boolean;
}

/** What a timed run measured. */
export interface LoadResult {
  seconds: number;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  failures: number;
}

/** Load settings of one cell. */
export interface LoadSettings {
  connections: number;
  /** Measured seconds. */
  duration: number;
  /** Discarded seconds before the measured run (0: none). */
  warmup: number;
}

/**
 * Seconds of warm-up before the first cell of a server's workload, when
 * `--warmup` is shorter: measured on the gateway over PostgreSQL, a fresh
 * process served 624–841 req/s in its first 5 s at concurrency 16 and
 * 1,000–1,300 from then on (2026-11-29).
 */
export const FIRST_WARMUP_SECONDS = 5;

/** The load generator and version, for the results. */
export const LOAD_GENERATOR = "autocannon 9.0.0 (npm, in the bench process)";

/** Runs the warm-up, then the measured run, against `target`. */
export async function measure(target: LoadTarget, settings: LoadSettings): Promise<LoadResult> {
  if (settings.warmup > 0) await run(target, settings.connections, settings.warmup);
  const samples = new Samples();
  const result = await run(target, settings.connections, settings.duration, (status, ms) => {
    if (status >= 200 && status < 300) samples.push(ms);
  });
  const mismatches = result.mismatches ?? 0;
  const ok = Math.max(0, (result["2xx"] ?? 0) - mismatches);
  const seconds = result.duration || settings.duration;
  return {
    seconds,
    requests: ok,
    rps: round2(ok / seconds),
    ...summarise(samples),
    failures: result.errors + result.non2xx + mismatches,
  };
}

/** The fields of autocannon's result this module reads (the package ships no types). */
interface Result {
  /** Seconds the run lasted. */
  duration: number;
  /** Transport errors, timeouts included. */
  errors: number;
  non2xx: number;
  /** 2xx responses whose body failed `verifyBody`. */
  mismatches?: number;
  "2xx"?: number;
}

type Autocannon = (
  options: Record<string, unknown>,
  done: (err: Error | null, result: Result) => void,
) => {
  on(
    event: "response",
    fn: (client: unknown, status: number, bytes: number, ms: number) => void,
  ): void;
};

const autocannon = autocannonUntyped as unknown as Autocannon;

function run(
  target: LoadTarget,
  connections: number,
  seconds: number,
  onResponse?: (status: number, ms: number) => void,
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: target.url,
      method: target.method,
      body: target.body,
      headers: target.headers,
      ...(target.bodies
        ? {
          requests: target.bodies.map((body) => ({
            method: target.method,
            headers: target.headers,
            body,
          })),
        }
        : {}),
      connections,
      duration: seconds,
      timeout: 10,
      verifyBody: target.verify,
    }, (err, result) => {
      if (err) reject(err);
      else resolve(result);
    });
    if (onResponse) {
      instance.on("response", (_client, status, _bytes, ms) => onResponse(status, ms));
    }
  });
}
