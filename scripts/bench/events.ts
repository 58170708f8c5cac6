/**
 * Live updates in the benchmark: two gateway instances sharing one Redis
 * (`EVENTS_URL`), SQLite as the store.
 *
 * - **Write to subscriber**: `writes` adds sent one at a time through
 *   instance B; each one's time from sending the mutation to its `ADDED`
 *   event arriving at an SSE subscriber on instance A (p50, p99, max).
 * - **Memory with open subscriptions**: instance A's resident memory with one
 *   subscription, then with `subscribers` open SSE subscriptions (every one
 *   reading), and how long one write takes to reach all of them.
 *
 * @module
 */
import { type ServerProcess } from "../server_process.ts";
import { memoryOf } from "../server_process.ts";
import { GATEWAY_ARGS, startServer } from "./processes.ts";
import { percentile, Samples } from "./stats.ts";

/** What {@linkcode measureEvents} found. */
export interface EventsResult {
  writes: number;
  /** From sending `addWord` to B until its event arrived at A's subscriber, in ms. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  subscribers: number;
  /** Instance A's VmRSS with one subscription, then with `subscribers` open, in MiB. */
  rssOneMiB: number;
  rssAllMiB: number;
  /** (rssAll − rssOne) / subscribers, in KiB. */
  perSubscriberKiB: number;
  /** From sending one write until every one of the `subscribers` had its event, in ms. */
  fanOutMs: number;
}

const SUBSCRIPTION = `subscription { wordEvents(store: SQLITE) { kind word { word } } }`;
const ADD = `mutation($word: String!) {
  addWord(store: SQLITE, word: $word, definition: "benchmark event") { id }
}`;

/** An SSE subscriber that calls `onWord` with the word of every event. */
async function subscribe(url: string, onWord: (word: string) => void): Promise<() => void> {
  const abort = new AbortController();
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ query: SUBSCRIPTION }),
    signal: abort.signal,
  });
  if (res.status !== 200) throw new Error(`subscription answered HTTP ${res.status}`);
  let opened!: () => void;
  const open = new Promise<void>((r) => opened = r);
  (async () => {
    let buffer = "";
    try {
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
        opened();
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          const word = data && JSON.parse(data)?.data?.wordEvents?.word?.word;
          if (typeof word === "string") onWord(word);
        }
      }
    } catch {
      // closed
    }
  })();
  await open; // the first keep-alive or event: the subscription is registered
  return () => abort.abort();
}

async function add(url: string, word: string): Promise<void> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: ADD, variables: { word } }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(`addWord failed: ${JSON.stringify(body.errors)}`);
}

/** Resolves when `cond()` holds (polled every ms); rejects after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * Starts two gateways with `EVENTS_URL=redisUrl` in `cwd` (environment
 * `env`), measures, stops them.
 */
export async function measureEvents(opts: {
  redisUrl: string;
  env: Record<string, string>;
  cwd: string;
  writes: number;
  subscribers: number;
}): Promise<EventsResult> {
  const env = {
    ...opts.env,
    PORT: "0",
    HOST: "127.0.0.1",
    EVENTS_URL: opts.redisUrl,
    RATE_LIMIT_PER_MINUTE: "0",
    // Every subscriber of the run connects from 127.0.0.1.
    SUBSCRIPTIONS_PER_CLIENT: String(opts.subscribers + 10),
    SUBSCRIPTIONS_MAX: String(opts.subscribers + 10),
  };
  const servers: ServerProcess[] = [];
  const closers: (() => void)[] = [];
  try {
    const a = await startServer(
      GATEWAY_ARGS,
      { ...env, SQLITE_PATH: `${opts.cwd}/a.db` },
      opts.cwd,
    );
    servers.push(a);
    const b = await startServer(
      GATEWAY_ARGS,
      { ...env, SQLITE_PATH: `${opts.cwd}/b.db` },
      opts.cwd,
    );
    servers.push(b);
    const seen = new Set<string>();
    closers.push(await subscribe(a.url, (w) => seen.add(w)));
    const run = crypto.randomUUID().slice(0, 8);
    const latencies = new Samples();
    for (let i = -20; i < opts.writes; i++) { // 20 unmeasured: JIT, connections
      const word = `ev-${run}-${i}`;
      const t0 = performance.now();
      await add(b.url, word);
      await until(() => seen.has(word), 10_000, `the event of ${word}`);
      if (i >= 0) latencies.push(performance.now() - t0);
    }
    const sorted = latencies.sorted();
    const rssOne = memoryOf(a.pid)?.rssMiB ?? NaN;

    const counts = new Map<string, number>();
    const onWord = (w: string) => counts.set(w, (counts.get(w) ?? 0) + 1);
    for (let i = 0; i < opts.subscribers; i++) closers.push(await subscribe(a.url, onWord));
    await new Promise((r) => setTimeout(r, 2_000)); // settled
    const rssAll = memoryOf(a.pid)?.rssMiB ?? NaN;
    const word = `ev-${run}-fan-out`;
    const t0 = performance.now();
    await add(b.url, word);
    await until(() => counts.get(word) === opts.subscribers, 30_000, "the fan-out");
    const fanOutMs = performance.now() - t0;
    return {
      writes: opts.writes,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.at(-1) ?? NaN,
      subscribers: opts.subscribers,
      rssOneMiB: Math.round(rssOne * 10) / 10,
      rssAllMiB: Math.round(rssAll * 10) / 10,
      perSubscriberKiB: Math.round((rssAll - rssOne) * 1024 / opts.subscribers * 10) / 10,
      fanOutMs,
    };
  } finally {
    for (const close of closers) close();
    for (const s of servers) await s.stop();
  }
}
