/**
 * `deno task bench`: what the gateway costs over each store, and how listing
 * grows with data. Seeds each store to every `--sizes` value through its own
 * module, then per store, size and concurrency measures `words(limit: 100)`
 * through the real gateway process, the same listing from a bare baseline
 * process, and `addWord` through the gateway, with autocannon. Prints the
 * tables and the targets, writes `results.json`, `results.md` and
 * `chart.svg` under `--out`, and by default restores the seeded matrix
 * servers afterwards. `--help` lists the flags.
 *
 * @module
 */
import { ArgsError, type BenchOptions, parseBenchArgs, USAGE } from "./bench/args.ts";
import { preflight, targetFor, timePage } from "./bench/cells.ts";
import { LOAD_GENERATOR, measure } from "./bench/load.ts";
import { describeMachine, machineLine } from "./bench/machine.ts";
import { baselineArgs, GATEWAY_ARGS, RssSampler, startServer } from "./bench/processes.ts";
import { memoryOf, type ServerProcess, waitForStores } from "./server_process.ts";
import { writeResults } from "./bench/output.ts";
import { seedStore } from "./bench/seed.ts";
import { benchEnvironment, childEnvironment, openStore, storeConfigs } from "./bench/stores.ts";
import { restoreMatrix } from "./bench/wipe.ts";
import { type BenchRun, type Cell, WORKLOADS } from "./bench/types.ts";
import { STORE_NAMES, type StoreName, type WordStore } from "../stores/types.ts";

/**
 * A listing cell is skipped when one page times its concurrency exceeds this:
 * its requests would queue past autocannon's 10 s timeout, and the work they
 * leave behind would run into the next cells (FerretDB, which sorts the whole
 * collection for every page, at 10,000 and 100,000 words).
 */
const QUEUE_BUDGET_MS = 8_000;

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

/** Runs the benchmark; returns the process exit code. */
async function main(opts: BenchOptions): Promise<number> {
  const startedAt = new Date().toISOString();
  const machine = await describeMachine();
  console.log(`machine: ${machineLine(machine)}`);
  let env = benchEnvironment();
  const tmp = await Deno.makeTempDir({ prefix: "grand-tour-bench-" });
  const sqlitePath = `${tmp}/words.db`;
  let configs = storeConfigs(env, sqlitePath);
  const wanted = opts.stores ?? STORE_NAMES.filter((s) => configs[s]);
  const skipped: BenchRun["skipped"] = [];
  const skip = (store: StoreName, reason: string) => {
    skipped.push({ store, reason });
    console.warn(`!!! skipping ${store}: ${reason}`);
  };

  if (opts.wipeBefore) {
    await restoreMatrix(wanted.filter((s) => configs[s]));
    env = benchEnvironment(); // `matrix up` rewrote .env.matrix
    configs = storeConfigs(env, sqlitePath);
  }
  const handles = new Map<StoreName, WordStore>();
  for (const store of wanted) {
    const config = configs[store];
    if (!config) {
      skip(store, `not configured (set ${store}_URL or run \`deno task matrix up\`)`);
      continue;
    }
    try {
      handles.set(store, await openStore(store, config));
    } catch (e) {
      skip(store, `cannot connect (${(e as Error).name})`);
    }
  }
  let stores = wanted.filter((s) => handles.has(s));
  const childEnv = childEnvironment(env, stores, {
    PORT: "0",
    HOST: "127.0.0.1",
    SQLITE_PATH: sqlitePath,
    GRAPHIQL: "false",
    // One load generator is one client: a per-client mutation limit would measure only itself.
    RATE_LIMIT_PER_MINUTE: "0",
    // The baseline has no timeout: with the default 2 s the gateway would measure its own
    // timeout, not the store, wherever a page takes longer (FerretDB at 100,000 words).
    REQUEST_TIMEOUT_MS: "60000",
    NO_COLOR: "1",
  });
  const processes: ServerProcess[] = [];
  const seeds: BenchRun["seeds"] = [];
  const cells: Cell[] = [];
  const seeded = new Set<StoreName>();
  let sampler: RssSampler | undefined;
  let gatewayPeak = 0;
  let baselinePeak = 0;
  let finished = false;
  try {
    const gateway = await startServer(GATEWAY_ARGS, childEnv, tmp);
    processes.push(gateway);
    sampler = new RssSampler(gateway.pid);
    for (const [store, why] of await waitForStores(gateway.url, stores)) {
      skip(store, `unhealthy in the gateway: ${why}`);
    }
    stores = stores.filter((s) => !skipped.some((k) => k.store === s));
    const baseline = await startServer(baselineArgs(stores), childEnv, tmp);
    processes.push(baseline);
    const urls = { gateway: gateway.url, baseline: baseline.url, token: childEnv.WRITE_TOKEN };
    const tag = Date.now().toString(36);

    for (const size of opts.sizes) {
      for (const store of [...stores]) {
        let held = size;
        console.log(`\n${store}: seeding to ${size} words…`);
        try {
          seeded.add(store);
          const seed = await seedStore(store, handles.get(store)!, size, {
            concurrency: opts.seedConcurrency,
            tag,
            countCap: Math.max(10 * Math.max(...opts.sizes), 1_000_000),
            progress: (added, of) => console.log(`  ${store}: ${added}/${of} added`),
          });
          seeds.push(seed);
          held = seed.held;
          console.log(
            `  held ${seed.before}, added ${seed.added} in ${seed.seconds} s (${seed.wordsPerSecond} words/s)`,
          );
        } catch (e) {
          skip(store, (e as Error).message);
          stores = stores.filter((s) => s !== store);
          continue;
        }
        const expected = Math.min(size, 100);
        const broken = await preflight(targetFor("gateway-words", store, urls), expected) ??
          await preflight(targetFor("baseline-words", store, urls), expected);
        if (broken) {
          skip(store, `listing does not answer as expected: ${broken}`);
          stores = stores.filter((s) => s !== store);
          continue;
        }
        const pageMs = await timePage(targetFor("baseline-words", store, urls));
        for (const workload of WORKLOADS) {
          for (const concurrency of opts.concurrencies) {
            const target = targetFor(workload, store, urls);
            const queued = workload.endsWith("words") ? pageMs * concurrency : 0;
            if (queued > QUEUE_BUDGET_MS) {
              const notMeasured = `one page takes ${Math.round(pageMs)} ms, so ${concurrency} ` +
                `at once queue ~${Math.round(queued / 1000)} s, past the load generator's ` +
                `${QUEUE_BUDGET_MS / 1000} s budget`;
              cells.push(unmeasuredCell(store, size, held, concurrency, workload, notMeasured));
              console.log(
                `  ${workload.padEnd(15)} c${
                  String(concurrency).padEnd(3)
                } not measured: ${notMeasured}`,
              );
              continue;
            }
            sampler.takeMax();
            const r = await measure(target, {
              connections: concurrency,
              duration: opts.duration,
              warmup: opts.warmup,
            });
            const rss = sampler.takeMax();
            const cell: Cell = {
              store,
              size,
              held,
              concurrency,
              workload,
              ...r,
              ...(workload.startsWith("gateway")
                ? { gatewayRssMiB: Math.round(rss * 10) / 10 }
                : {}),
            };
            cells.push(cell);
            console.log(
              `  ${workload.padEnd(15)} c${String(concurrency).padEnd(3)} ${
                r.rps.toFixed(0).padStart(6)
              } req/s` +
                `  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms` +
                (r.failures ? `  ${r.failures} FAILED` : "") +
                (cell.gatewayRssMiB ? `  gateway RSS ${cell.gatewayRssMiB} MiB` : ""),
            );
          }
        }
      }
    }
    gatewayPeak = memoryOf(gateway.pid)?.peakMiB ?? 0;
    baselinePeak = memoryOf(baseline.pid)?.peakMiB ?? 0;
    finished = true;
  } finally {
    sampler?.stop();
    for (const p of processes.reverse()) await p.stop();
    await Promise.all([...handles.values()].map((h) => h.close()));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (!finished && opts.wipeAfter) await restoreMatrix([...seeded]);
  }

  const c64 = cells.filter((c) => c.concurrency === 64 && c.gatewayRssMiB !== undefined);
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
      seedConcurrency: opts.seedConcurrency,
      loadGenerator: LOAD_GENERATOR,
    },
    skipped,
    seeds,
    cells,
    gatewayMemory: {
      peakRssMiB: Math.round(gatewayPeak * 10) / 10,
      peakRssAtC64MiB: c64.length ? Math.max(...c64.map((c) => c.gatewayRssMiB!)) : undefined,
    },
    baselinePeakRssMiB: Math.round(baselinePeak * 10) / 10,
  };
  await writeResults(run, opts.out);
  if (opts.wipeAfter) await restoreMatrix([...seeded]);
  else if (seeded.size) {
    console.log(`\n--no-wipe-after: the seeded words stay in ${[...seeded].join(", ")}`);
  }
  return skipped.length > 0 && opts.stores ? 1 : 0;
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
