/**
 * `deno task bench`: what the gateway costs over each store, and how listing
 * and search grow with data, up to a million words per store. Seeds each
 * store to every `--sizes` value through its module's bulk path (`addMany`),
 * with ids spread back in time as an import would carry them, checks through
 * the gateway that the seeded words list and search correctly, then per
 * store, size and concurrency measures with autocannon, through the real
 * gateway process (one process with every configured store connected): the
 * first page `words(limit: 100)` (and the same listing from a bare baseline
 * process), a `wordsConnection` page 10,000 words deep, a search for a rare
 * word and `addWord`; and per size the gateway's memory under a mixed
 * concurrency-64 load over every store. Prints the tables, the issue's
 * targets and the run's duration, writes `results.json`, `results.md` and
 * `chart.svg` under `--out`, and by default restores the seeded matrix
 * servers before and after. `--help` lists the flags.
 *
 * @module
 */
import { ArgsError, type BenchOptions, parseBenchArgs, USAGE } from "./bench/args.ts";
import { type CellParams, type Endpoints, probe, targetFor, timePage } from "./bench/cells.ts";
import { FIRST_WARMUP_SECONDS, LOAD_GENERATOR, type LoadTarget, measure } from "./bench/load.ts";
import { describeMachine, machineLine } from "./bench/machine.ts";
import {
  baselineArgs,
  GATEWAY_ARGS,
  PeakMeter,
  RssSampler,
  startServer,
} from "./bench/processes.ts";
import { memoryOf, type ServerProcess, waitForStores } from "./server_process.ts";
import { runDuration as duration, writeResults } from "./bench/output.ts";
import {
  countByCursor,
  idFloor,
  NoBulkPathError,
  rarePosition,
  rareWord,
  SEED_SPACING_MS,
  seedId,
  type SeedPlan,
  seedPlan,
  seedStore,
} from "./bench/seed.ts";
import { benchEnvironment, childEnvironment, openStore, storeConfigs } from "./bench/stores.ts";
import { restoreMatrix } from "./bench/wipe.ts";
import { measureEvents } from "./bench/events.ts";
import {
  type BenchRun,
  type Cell,
  type CoresCell,
  EXPRESS_WORKLOADS,
  type FloorCell,
  type MemoryAtSize,
  type SeedCheck,
  type Workload,
  WORKLOADS,
} from "./bench/types.ts";
import { EXPRESS_APPS, prepareExpress, startExpress } from "./bench/express.ts";
import { measureFloors } from "./bench/floors.ts";
import { measureCores } from "./bench/cores.ts";
import { encodeCursor } from "../resolvers/cursor.ts";
import { STORE_NAMES, type StoreName, type WordStore } from "../stores/types.ts";

/**
 * A cell is skipped when one request's time times its concurrency exceeds
 * this: its requests would queue past autocannon's 10 s timeout, and the
 * work they leave behind would run into the next cells (FerretDB, which
 * sorts the whole collection for every page, from 10,000 words on).
 */
export const QUEUE_BUDGET_MS = 8_000;

/** The deep cursor page starts after this many words. */
export const CURSOR_DEPTH = 10_000;

/** Concurrency of the memory measurement. */
export const MEMORY_CONCURRENCY = 64;

/** Concurrencies of each workload: the new cells at 16 (the rare search also at 1), the rest from `--concurrency`. */
export function cellConcurrencies(concurrencies: number[]): Record<Workload, number[]> {
  return {
    "gateway-words": concurrencies,
    "baseline-words": concurrencies,
    "gateway-cursor": [16],
    "gateway-search": [1, 16],
    "gateway-addWord": concurrencies,
    "express-words": concurrencies,
    "express-addWord": concurrencies,
  };
}

/** The workloads measured for `store`: the Express ones only where a classic app exists. */
export function workloadsFor(store: StoreName): Workload[] {
  return WORKLOADS.filter((w) => !EXPRESS_WORKLOADS.has(w) || EXPRESS_APPS[store] !== undefined);
}

/** A cell that was not measured, and why. */
function unmeasuredCell(
  store: StoreName,
  size: number,
  held: number,
  concurrency: number,
  workload: Cell["workload"],
  notMeasured: string,
): Cell {
  return {
    store,
    size,
    held,
    concurrency,
    workload,
    seconds: 0,
    requests: 0,
    rps: NaN,
    p50: NaN,
    p90: NaN,
    p99: NaN,
    max: NaN,
    failures: 0,
    notMeasured,
  };
}

/** What a listing answer of the gateway holds. */
interface WordsBody {
  data: { words: { id: string; word: string }[] };
}
interface ConnectionBody {
  data: { wordsConnection: { edges: { node: { id: string } }[] } };
}

/** True when a failed probe means the store did not answer in time, not that it answered wrong. */
export function isUnavailable(why: string): boolean {
  return /"code":"STORE_UNAVAILABLE"|TimeoutError|timed out/.test(why);
}

/**
 * What the check after seeding found: a wrong answer (fails the run), or
 * parts the store could not answer in time (their cells are skipped).
 */
export interface CheckOutcome {
  wrong?: string;
  /** The first page did not answer: nothing at this size can be measured. */
  listing?: string;
  /** The rare search did not answer. */
  search?: string;
  /** The cursor page did not answer. */
  cursor?: string;
}

/**
 * Checks through the gateway that `store` lists and searches the words
 * seeded up to `size`: the first page is the oldest seeded words in order
 * (the run's words only, when the store held others before), a search for
 * the size's rare word finds exactly it, and the page after the 10,000th
 * word starts with the 10,001st.
 */
async function checkSeeded(
  store: StoreName,
  size: number,
  previous: number,
  plan: SeedPlan,
  urls: Endpoints,
  params: CellParams,
  startedEmpty: boolean,
): Promise<CheckOutcome> {
  const out: CheckOutcome = {};
  const first = await probe(targetFor("gateway-words", store, urls));
  if (!first.ok) {
    return isUnavailable(first.why)
      ? { listing: `first page: ${first.why}` }
      : { wrong: `first page: ${first.why}` };
  }
  const listed = (first.body as WordsBody).data.words;
  const ours = startedEmpty
    ? listed
    : listed.filter((w) => w.word.startsWith(`bench-${plan.tag}-`));
  const want = Math.min(size, 100);
  if (startedEmpty && ours.length !== want) {
    return { wrong: `first page: listed ${ours.length} words, expected ${want}` };
  }
  for (let i = 0; i < ours.length; i++) {
    if (ours[i].id !== seedId(plan, i)) {
      return {
        wrong: `first page: word ${i} is ${ours[i].id} (${ours[i].word}), expected seeded word ` +
          `${i} (${seedId(plan, i)})`,
      };
    }
  }
  const found = await probe(targetFor("gateway-search", store, urls, params));
  if (!found.ok) {
    const why = `search for ${params.search}: ${found.why}`;
    if (!isUnavailable(found.why)) return { wrong: `${why} (expected exactly ${params.searchId})` };
    out.search = why;
  } else {
    const rare = (found.body as WordsBody).data.words[0];
    if (rare.word !== params.search || rare.id !== seedId(plan, rarePosition(previous, size))) {
      return { wrong: `search for ${params.search}: found ${rare.word} ${rare.id}` };
    }
  }
  if (params.after !== undefined) {
    const deep = await probe(targetFor("gateway-cursor", store, urls, params));
    if (!deep.ok) {
      const why = `cursor page after word ${CURSOR_DEPTH}: ${deep.why}`;
      if (!isUnavailable(deep.why)) return { wrong: why };
      out.cursor = why;
    } else {
      const edges = (deep.body as ConnectionBody).data.wordsConnection.edges;
      if (edges.length !== 100) {
        return { wrong: `cursor page: ${edges.length} words, expected 100` };
      }
      if (startedEmpty && edges[0].node.id !== seedId(plan, CURSOR_DEPTH)) {
        return {
          wrong: `cursor page: starts with ${edges[0].node.id}, expected seeded word ` +
            `${CURSOR_DEPTH} (${seedId(plan, CURSOR_DEPTH)})`,
        };
      }
    }
  }
  return out;
}

/**
 * Waits until the gateway lists the newest word seeded up to `size` (for a
 * store that serves reads from a view it follows, RabbitMQ's, the view must
 * catch up first); resolves with the seconds it took, or undefined when it
 * did not within `ms`.
 */
async function waitUntilListed(
  store: StoreName,
  size: number,
  plan: SeedPlan,
  urls: Endpoints,
  ms = 300_000,
): Promise<number | undefined> {
  if (size < 2) return 0;
  const t0 = performance.now();
  const newest = seedId(plan, size - 1);
  const target = targetFor("gateway-cursor", store, urls, {
    after: encodeCursor(store, undefined, seedId(plan, size - 2)),
  });
  for (;;) {
    const r = await probe({ ...target, verify: () => true });
    // A failed page is the check's to judge (a store too slow to answer is not waited for).
    if (!r.ok) return (performance.now() - t0) / 1000;
    const edges = (r.body as Partial<ConnectionBody>).data?.wordsConnection?.edges;
    if (!edges || edges.some((e) => e.node.id === newest)) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > ms) return undefined;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Runs the benchmark; returns the process exit code. */
async function main(opts: BenchOptions): Promise<number> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const machine = await describeMachine();
  console.log(`machine: ${machineLine(machine)}`);
  const tmp = await Deno.makeTempDir({ prefix: "grand-tour-bench-" });
  // RabbitMQ's view (a SQLite file) of this process, in the run's directory: never the
  // working copy's ./data file that a developer's gateway may be using.
  const environment = () => ({
    ...benchEnvironment(),
    RABBITMQ_VIEW_PATH: `${tmp}/bench-rabbitmq-view.db`,
  });
  let env = environment();
  const sqlitePath = `${tmp}/words.db`;
  let configs = storeConfigs(env, sqlitePath);
  const wanted = opts.stores ?? STORE_NAMES.filter((s) => configs[s]);
  const skipped: BenchRun["skipped"] = [];
  const skip = (store: StoreName, reason: string) => {
    skipped.push({ store, reason });
    console.warn(`!!! skipping ${store}: ${reason}`);
  };
  const handles = new Map<StoreName, WordStore>();
  const openAll = async (report: boolean) => {
    for (const store of wanted) {
      const config = configs[store];
      if (!config) {
        if (report) skip(store, `not configured (set ${store}_URL or run \`deno task matrix up\`)`);
        continue;
      }
      try {
        handles.set(store, await openStore(store, config));
      } catch (e) {
        if (report) skip(store, `cannot connect (${(e as Error).name})`);
      }
    }
  };
  const closeAll = async () => {
    await Promise.all([...handles.values()].map((h) => h.close()));
    handles.clear();
  };

  /** Seeding goes through addMany only: the stores whose module has none. */
  const withoutBulk = () =>
    [...handles].filter(([, h]) => typeof h.addMany !== "function").map(([s]) => s);
  const refuse = async (noBulk: StoreName[]) => {
    await closeAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    console.error(
      `\n!!! ${noBulk.join(", ")}: the store module has no addMany (bulk path), and the ` +
        `benchmark seeds only through it (one add per word would take hours at a million ` +
        `words). Measure the others with --stores ${
          wanted.filter((s) => !noBulk.includes(s)).join(",")
        }.`,
    );
    return 1;
  };
  // Refuse before wiping anything; a store that cannot be opened yet is judged after the wipe.
  await openAll(!opts.wipeBefore);
  if (withoutBulk().length) return await refuse(withoutBulk());
  if (opts.wipeBefore) {
    await closeAll();
    await restoreMatrix([...wanted.filter((s) => configs[s])]);
    env = environment(); // `matrix up` rewrote .env.matrix
    configs = storeConfigs(env, sqlitePath);
    await openAll(true);
    if (withoutBulk().length) return await refuse(withoutBulk());
  }

  // What each store holds before the run: a cursor walk, normally over an empty store.
  const heldBefore = new Map<StoreName, number>();
  for (const [store, handle] of handles) {
    try {
      const { count, complete } = await countByCursor(handle, undefined);
      heldBefore.set(store, count);
      console.log(`${store}: holds ${complete ? "" : "at least "}${count} words before the run`);
    } catch (e) {
      handles.delete(store);
      await handle.close();
      skip(store, `cannot count its words (${(e as Error).name}: ${(e as Error).message})`);
    }
  }
  let stores = wanted.filter((s) => handles.has(s));
  const gatewayStores = STORE_NAMES.filter((s) => configs[s]);
  const extra = {
    PORT: "0",
    HOST: "127.0.0.1",
    SQLITE_PATH: sqlitePath,
    GRAPHIQL: "false",
    // One load generator is one client: a per-client mutation limit would measure only itself.
    RATE_LIMIT_PER_MINUTE: "0",
    // The baseline has no timeout: with the default 2 s the gateway would measure its own
    // timeout, not the store, wherever a request takes longer (FerretDB from 100,000 words on).
    REQUEST_TIMEOUT_MS: "60000",
    NO_COLOR: "1",
  };
  // One gateway with every configured store, measured or not: the memory target's setting.
  // Each process keeps its own RabbitMQ view, as gateways on different hosts would.
  const gatewayEnv = childEnvironment(env, gatewayStores, {
    ...extra,
    RABBITMQ_VIEW_PATH: `${tmp}/gateway-rabbitmq-view.db`,
  });
  const baselineEnv = childEnvironment(env, stores, {
    ...extra,
    RABBITMQ_VIEW_PATH: `${tmp}/baseline-rabbitmq-view.db`,
  });
  const processes: ServerProcess[] = [];
  const seeds: BenchRun["seeds"] = [];
  const checks: SeedCheck[] = [];
  const cells: Cell[] = [];
  const memory: MemoryAtSize[] = [];
  const seeded = new Set<StoreName>();
  const plan = seedPlan(Date.now().toString(36), Math.max(...opts.sizes));
  const concurrencies = cellConcurrencies(opts.concurrencies);
  let sampler: RssSampler | undefined;
  let baselinePeak = 0;
  let floors: FloorCell[] = [];
  let express: BenchRun["express"];
  let cores: CoresCell[] | undefined;
  let finished = false;
  try {
    const gateway = await startServer(GATEWAY_ARGS, gatewayEnv, tmp);
    processes.push(gateway);
    sampler = new RssSampler(gateway.pid);
    const meter = new PeakMeter(sampler);
    console.log(`gateway pid ${gateway.pid} with ${gatewayStores.join(", ")}`);
    for (const [store, why] of await waitForStores(gateway.url, gatewayStores)) {
      if (stores.includes(store)) skip(store, `unhealthy in the gateway: ${why}`);
      else console.warn(`!!! ${store} (configured, not measured) unhealthy in the gateway: ${why}`);
    }
    stores = stores.filter((s) => !skipped.some((k) => k.store === s));
    const baseline = await startServer(baselineArgs(stores), baselineEnv, tmp);
    processes.push(baseline);
    const urls: Endpoints = {
      gateway: gateway.url,
      baseline: baseline.url,
      express: {},
      token: gatewayEnv.WRITE_TOKEN,
    };
    // The classic apps, beside the gateway on the same stores and data.
    const expressWhy = new Map<StoreName, string>();
    const classic = stores.filter((s) => EXPRESS_APPS[s]);
    if (classic.length) {
      express = await prepareExpress();
      for (const store of classic) {
        if ("why" in express) {
          expressWhy.set(store, `the Express app cannot run: ${express.why}`);
          continue;
        }
        try {
          const app = await startExpress(store, baselineEnv);
          processes.push(app);
          urls.express![store] = app.url;
          console.log(`Express app for ${store} pid ${app.pid} (node ${express.node})`);
        } catch (e) {
          expressWhy.set(store, `the Express app did not start: ${(e as Error).message}`);
        }
      }
      for (const [store, why] of expressWhy) console.warn(`!!! ${store}: ${why}`);
    }
    floors = await measureFloors(tmp, opts);

    /** The workloads, per store, whose first cell has run. */
    const warmed = new Set<string>();
    /** Measures one cell (or records why not) and prints its line. */
    const runCell = async (
      store: StoreName,
      size: number,
      held: number,
      workload: Workload,
      concurrency: number,
      target: LoadTarget,
      oneMs: number | undefined,
      why?: string,
    ): Promise<Cell> => {
      const queued = (oneMs ?? 0) * concurrency;
      const notMeasured = why ??
        (queued > QUEUE_BUDGET_MS
          ? `one request takes ${Math.round(oneMs!)} ms, so ${concurrency} at once queue ` +
            `~${Math.round(queued / 1000)} s, past the load generator's ${
              QUEUE_BUDGET_MS / 1000
            } s budget`
          : undefined);
      const label = `  ${workload.padEnd(15)} c${String(concurrency).padEnd(3)}`;
      if (notMeasured) {
        console.log(`${label} not measured: ${notMeasured}`);
        return unmeasuredCell(store, size, held, concurrency, workload, notMeasured);
      }
      const onGateway = workload.startsWith("gateway");
      // A slow request (a search that scans) gets time for about two rounds per connection,
      // and no warm-up (the timing probes warmed it; an abandoned warm-up request would run
      // on into the measured seconds); afterwards the server gets time to finish the
      // requests the load generator abandoned, so they do not run into the next cell.
      const slow = queued >= 1000;
      // A workload's first cell warms its server's code paths longer: a fresh process serves
      // its first seconds at about half speed while V8 optimises them.
      const first = !warmed.has(`${workload} ${store}`);
      warmed.add(`${workload} ${store}`);
      if (onGateway) meter.start();
      const r = await measure(target, {
        connections: concurrency,
        duration: Math.max(opts.duration, Math.ceil((2 * queued) / 1000)),
        warmup: slow ? 0 : first ? Math.max(opts.warmup, FIRST_WARMUP_SECONDS) : opts.warmup,
      });
      const rss = onGateway ? meter.stop() : undefined;
      if (queued > 500) await new Promise((r) => setTimeout(r, queued));
      const cell: Cell = {
        store,
        size,
        held,
        concurrency,
        workload,
        ...r,
        ...(rss !== undefined ? { gatewayRssMiB: rss } : {}),
      };
      console.log(
        `${label} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${
          r.p99.toFixed(2)
        } ms` + (r.failures ? `  ${r.failures} FAILED` : "") +
          (rss !== undefined ? `  gateway RSS ${rss} MiB` : ""),
      );
      return cell;
    };

    /** Stores no longer seeded or measured, and why (their later cells say it). */
    const dropped = new Map<StoreName, string>();
    const held = new Map(heldBefore);
    const addedByCells = new Map<StoreName, number>();
    const firstPageMs = new Map<StoreName, number>();
    const cursorAfter = new Map<StoreName, string>();
    let previous = 0;
    for (const size of opts.sizes) {
      const sizeStart = performance.now();
      console.log(`\n===== ${size} words per store =====`);
      for (const store of stores) {
        const handle = handles.get(store)!;
        const droppedWhy = dropped.get(store);
        const unmeasuredAll = (why: string) => {
          for (const workload of workloadsFor(store)) {
            for (const c of concurrencies[workload]) {
              cells.push(unmeasuredCell(store, size, held.get(store)!, c, workload, why));
            }
          }
        };
        if (droppedWhy) {
          unmeasuredAll(droppedWhy);
          continue;
        }
        // A first page that grows with the words held (FerretDB sorts the whole collection):
        // if it would pass the budget even alone at this size, seeding it there measures nothing.
        const lastMs = firstPageMs.get(store);
        if (previous > 0 && lastMs !== undefined) {
          const projected = lastMs * size / previous;
          if (projected > QUEUE_BUDGET_MS) {
            const why =
              `not seeded to ${size}: its first page took ${
                Math.round(lastMs)
              } ms at ${previous} words; growing with the words held, one page would take ` +
              `~${Math.round(projected / 1000)} s, past the ${
                QUEUE_BUDGET_MS / 1000
              } s budget even at concurrency 1`;
            console.log(`\n${store}: ${why}`);
            dropped.set(store, why);
            unmeasuredAll(why);
            continue;
          }
        }
        console.log(`\n${store}: seeding words ${previous}..${size - 1}…`);
        let seed;
        try {
          seeded.add(store);
          seed = await seedStore(store, handle, plan, previous, size, held.get(store)!, {
            batch: opts.seedBatch,
            parallel: opts.seedParallel,
            progress: (added, of) => console.log(`  ${store}: ${added}/${of} seeded`),
          });
        } catch (e) {
          if (e instanceof NoBulkPathError) throw e;
          const why = (e as Error).message;
          skip(store, why);
          dropped.set(store, `seeding failed at ${size}: ${why}`);
          unmeasuredAll(dropped.get(store)!);
          continue;
        }
        seeds.push(seed);
        held.set(store, seed.held);
        console.log(
          `  held ${seed.before}, seeded ${seed.added} in ${seed.seconds} s (${seed.wordsPerSecond} words/s)`,
        );
        const h = seed.held;

        // The cursor of the 10,000th word, from the store module, once it has a page after it.
        if (!cursorAfter.has(store) && size >= CURSOR_DEPTH + 100) {
          try {
            const [word] = await handle.list({ limit: 1, offset: CURSOR_DEPTH - 1 });
            if (word) cursorAfter.set(store, encodeCursor(store, undefined, word.id));
          } catch (e) {
            console.warn(`  cannot read word ${CURSOR_DEPTH}: ${(e as Error).message}`);
          }
        }
        const rareId = seedId(plan, rarePosition(previous, size));
        const params: CellParams = {
          after: cursorAfter.get(store),
          search: rareWord(plan, size),
          searchId: rareId,
        };
        const caughtUp = await waitUntilListed(store, size, plan, urls);
        if (caughtUp === undefined) {
          const why = `the gateway did not list the newest seeded word within 300 s`;
          console.error(`!!! ${store} at ${size}: ${why}`);
          checks.push({ store, size, ok: false, detail: why });
          dropped.set(store, why);
          unmeasuredAll(why);
          continue;
        }
        if (caughtUp > 2) {
          console.log(`  the gateway listed the newest word after ${caughtUp.toFixed(1)} s`);
        }
        const outcome = await checkSeeded(
          store,
          size,
          previous,
          plan,
          urls,
          params,
          heldBefore.get(store) === 0,
        );
        const unavailable = [outcome.listing, outcome.search, outcome.cursor].filter(Boolean);
        checks.push({
          store,
          size,
          ok: outcome.wrong === undefined,
          ...(unavailable.length ? { unavailable: unavailable.join("; ") } : {}),
          detail: outcome.wrong ?? outcome.listing ??
            [
              ...(caughtUp > 2
                ? [`the gateway listed the newest seeded word after ${Math.round(caughtUp)} s`]
                : []),
              "first page: the oldest seeded words in order",
              outcome.search ?? `search ${params.search}: exactly ${rareId}`,
              ...(params.after
                ? [outcome.cursor ?? `cursor page after word ${CURSOR_DEPTH}: 100 words`]
                : []),
            ].join("; "),
        });
        const fatal = outcome.wrong ?? outcome.listing;
        if (fatal) {
          const why = outcome.wrong
            ? `the check after seeding ${size} failed: ${fatal}`
            : `at ${size} words the store does not answer a first page in time: ${fatal}`;
          console.error(`!!! ${store} at ${size}: ${why}`);
          dropped.set(store, why);
          unmeasuredAll(why);
          continue;
        }
        console.log(
          unavailable.length
            ? `  checked, but does not answer in time: ${unavailable.join("; ")}`
            : `  checked: lists and searches the seeded words`,
        );

        const timeOf = async (w: Workload) => {
          const t = await timePage(targetFor(w, store, urls, params), QUEUE_BUDGET_MS);
          return "ms" in t ? t : { why: `one request failed while timing it: ${t.why}` };
        };
        // One request's time on an idle server, for the queue budget: the listing through the
        // baseline (as the gateway's listing cells were always judged), the rest directly.
        const listing = await timeOf("baseline-words");
        if ("ms" in listing) firstPageMs.set(store, listing.ms);
        for (const workload of workloadsFor(store)) {
          let t: { ms: number } | { why: string } | undefined;
          if (EXPRESS_WORKLOADS.has(workload) && expressWhy.has(store)) {
            t = { why: expressWhy.get(store)! };
          } else if (workload.endsWith("-words")) t = listing;
          else if (workload === "gateway-search") {
            t = outcome.search
              ? { why: `does not answer in time: ${outcome.search}` }
              : await timeOf(workload);
          } else if (workload === "gateway-cursor") {
            t = params.after === undefined
              ? { why: `the store holds fewer than ${CURSOR_DEPTH + 100} seeded words` }
              : outcome.cursor
              ? { why: `does not answer in time: ${outcome.cursor}` }
              : await timeOf(workload);
          }
          const oneMs = t && "ms" in t ? t.ms : undefined;
          const why = t && "why" in t ? t.why : undefined;
          for (const concurrency of concurrencies[workload]) {
            const target = why ? undefined : targetFor(workload, store, urls, params);
            cells.push(
              await runCell(store, size, h, workload, concurrency, target!, oneMs, why),
            );
          }
        }
        // Words the addWord cells stored: all newer than the seeded range, counted by cursor.
        try {
          const { count } = await countByCursor(handle, idFloor(plan.endMs + 1));
          addedByCells.set(store, count);
          held.set(store, (heldBefore.get(store) ?? 0) + size + count);
          console.log(`  addWord cells have stored ${count} words so far`);
        } catch (e) {
          console.warn(`  cannot count the added words: ${(e as Error).message}`);
        }
      }

      // Memory: the concurrency-64 cells of this size, then all stores' first pages at once.
      const atSize = cells.filter((c) => c.size === size && c.gatewayRssMiB !== undefined);
      const mixedStores = stores.filter((s) =>
        cells.some((c) =>
          c.store === s && c.size === size && c.workload === "gateway-words" &&
          c.concurrency === MEMORY_CONCURRENCY && !c.notMeasured
        )
      );
      let mixed: MemoryAtSize["mixed"];
      let mixedRss = 0;
      if (mixedStores.length) {
        const targets = mixedStores.map((s) => targetFor("gateway-words", s, urls));
        console.log(
          `\nmemory: c${MEMORY_CONCURRENCY} over the first pages of ${mixedStores.join(", ")}`,
        );
        meter.start();
        const r = await measure({ ...targets[0], bodies: targets.map((t) => t.body!) }, {
          connections: MEMORY_CONCURRENCY,
          duration: opts.duration,
          warmup: opts.warmup,
        });
        mixedRss = meter.stop();
        mixed = { size, concurrency: MEMORY_CONCURRENCY, ...r, gatewayRssMiB: mixedRss };
        console.log(
          `  mixed c${MEMORY_CONCURRENCY} ${r.rps.toFixed(0)} req/s  p99 ${r.p99.toFixed(2)} ms` +
            (r.failures ? `  ${r.failures} FAILED` : "") + `  gateway RSS ${mixedRss} MiB`,
        );
      }
      const c64 = atSize.filter((c) => c.concurrency === MEMORY_CONCURRENCY);
      const now = memoryOf(gateway.pid);
      memory.push({
        size,
        peakRssAtC64MiB: Math.max(mixedRss, ...c64.map((c) => c.gatewayRssMiB!)),
        hwmMiB: Math.max(mixedRss, ...atSize.map((c) => c.gatewayRssMiB!)),
        rssAfterMiB: Math.round((now?.rssMiB ?? 0) * 10) / 10,
        ...(mixed ? { mixed } : {}),
        mixedStores,
      });
      console.log(
        `\n${size} words: gateway peak RSS at c${MEMORY_CONCURRENCY} ${
          memory.at(-1)!.peakRssAtC64MiB
        } MiB; size done in ${duration((performance.now() - sizeStart) / 1000)}, run so far ${
          duration((performance.now() - t0) / 1000)
        }`,
      );
      previous = size;
      // Every core, on the first size's words, while the databases are quiet.
      if (size === opts.sizes[0] && stores.includes("SQLITE") && !dropped.has("SQLITE")) {
        cores = await measureCores(tmp, gatewayEnv, opts);
      }
    }
    baselinePeak = memoryOf(baseline.pid)?.peakMiB ?? 0;
    finished = true;
  } finally {
    sampler?.stop();
    for (const p of processes.reverse()) await p.stop();
    await closeAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (!finished && opts.wipeAfter) await restoreMatrix([...seeded]);
  }

  const live = await liveUpdates(opts, environment());
  const peaks = memory.map((m) => m.peakRssAtC64MiB).filter((n) => n > 0);
  const run: BenchRun = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    settings: {
      stores: wanted.filter((s) => cells.some((c) => c.store === s)),
      sizes: opts.sizes,
      concurrencies: opts.concurrencies,
      durationSeconds: opts.duration,
      warmupSeconds: opts.warmup,
      firstWarmupSeconds: Math.max(opts.warmup, FIRST_WARMUP_SECONDS),
      seedBatch: opts.seedBatch,
      seedParallel: opts.seedParallel,
      seedSpacingMs: SEED_SPACING_MS,
      cellConcurrencies: concurrencies,
      queueBudgetMs: QUEUE_BUDGET_MS,
      wipedBefore: opts.wipeBefore,
      loadGenerator: LOAD_GENERATOR,
    },
    durationSeconds: 0,
    skipped,
    seeds,
    checks,
    cells,
    gatewayStores,
    memory,
    gatewayMemory: {
      peakRssMiB: Math.max(0, ...memory.map((m) => m.hwmMiB)),
      peakRssAtC64MiB: peaks.length ? Math.max(...peaks) : undefined,
    },
    baselinePeakRssMiB: Math.round(baselinePeak * 10) / 10,
    ...live,
    floors,
    ...(cores ? { cores } : {}),
    ...(express ? { express } : {}),
  };
  if (opts.wipeAfter) await restoreMatrix([...seeded]);
  else if (seeded.size) {
    console.log(`\n--no-wipe-after: the seeded words stay in ${[...seeded].join(", ")}`);
  }
  run.durationSeconds = Math.round((performance.now() - t0) / 1000);
  await writeResults(run, opts.out);
  const failedChecks = checks.filter((c) => !c.ok);
  if (failedChecks.length) {
    console.error(
      `\n!!! ${failedChecks.length} check(s) after seeding found wrong answers: the run fails`,
    );
    return 1;
  }
  return skipped.length > 0 && opts.stores ? 1 : 0;
}

/**
 * Live updates across two gateway instances on the matrix Redis
 * (scripts/bench/events.ts), unless `--event-writes 0` or no `REDIS_URL`.
 */
async function liveUpdates(
  opts: BenchOptions,
  env: Record<string, string>,
): Promise<Pick<BenchRun, "events" | "eventsSkipped">> {
  if (opts.eventWrites === 0) return { eventsSkipped: "--event-writes 0" };
  if (!env.REDIS_URL) {
    const why = "no REDIS_URL for EVENTS_URL (run `deno task matrix up redis`)";
    console.warn(`!!! live updates not measured: ${why}`);
    return { eventsSkipped: why };
  }
  console.log(
    `\nlive updates: ${opts.eventWrites} writes from instance B to a subscriber on A, then ` +
      `${opts.eventSubscribers} SSE subscriptions on A`,
  );
  const cwd = await Deno.makeTempDir({ prefix: "grand-tour-bench-events-" });
  try {
    const extra: Record<string, string> = {};
    if (env.REDIS_CA_CERT) extra.EVENTS_CA_CERT = env.REDIS_CA_CERT;
    const events = await measureEvents({
      redisUrl: env.REDIS_URL,
      env: childEnvironment(env, ["SQLITE"], extra),
      cwd,
      writes: opts.eventWrites,
      subscribers: opts.eventSubscribers,
    });
    console.log(
      `  write to subscriber p50 ${events.p50Ms.toFixed(2)} ms, p99 ${
        events.p99Ms.toFixed(2)
      } ms; RSS ${events.rssOneMiB} MiB with 1 subscription, ${events.rssAllMiB} MiB with ${events.subscribers}`,
    );
    return { events };
  } catch (e) {
    const why = `failed: ${(e as Error).message}`;
    console.warn(`!!! live updates ${why}`);
    return { eventsSkipped: why };
  } finally {
    await Deno.remove(cwd, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(Deno.args);
  } catch (e) {
    if (!(e instanceof ArgsError)) throw e;
    console.error(`${e.message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (opts.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  Deno.exit(await main(opts));
}
