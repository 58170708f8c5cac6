/**
 * Writing a run out: the tables and targets on the console, and
 * `results.json` (raw), `results.md` (tables for the README) and `chart.svg`
 * in the output directory.
 *
 * @module
 */
import { renderChart } from "./chart.ts";
import {
  classicRows,
  classicTable,
  coresTable,
  coresTarget,
  floorTable,
  speedTargets,
} from "./compare.ts";
import { machineLine } from "./machine.ts";
import {
  addWordTable,
  checkTable,
  checkTargets,
  listingRows,
  listingTable,
  memoryTable,
  scaleRows,
  scaleTable,
  seedTable,
  targetLines,
  unmeasuredLines,
} from "./report.ts";
import { ROOT } from "./stores.ts";
import type { BenchRun } from "./types.ts";

/** How long the run took, e.g. "58 min 12 s". */
export function runDuration(seconds: number): string {
  const s = Math.round(seconds);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Prints the run's tables and targets and writes its files under `outDir` (relative to the repository). */
export async function writeResults(run: BenchRun, outDir: string): Promise<void> {
  const out = outDir.startsWith("/") ? outDir : `${ROOT}${outDir}`;
  await Deno.mkdir(out, { recursive: true });
  const rows = listingRows(run.cells);
  const scale = scaleRows(run);
  const targets = targetLines([
    ...checkTargets(run),
    ...speedTargets(run),
    coresTarget(run.cores),
  ]);
  const classic = classicTable(classicRows(run.cells));
  const expressLine = !run.express
    ? "not measured (no store with an Express app in this run)"
    : "why" in run.express
    ? `not measured: ${run.express.why}`
    : `Node ${run.express.node}, one process per app (bench/express/)`;
  const unmeasured = unmeasuredLines(run.cells);
  const s = run.settings;
  const cellsLine = Object.entries(s.cellConcurrencies).map(([w, cs]) => `${w} c${cs.join("/c")}`)
    .join(", ");
  console.log(`\nat scale (c16 unless said; ms)\n${scaleTable(scale)}`);
  console.log(`\nwords(limit: 100): gateway against baseline\n${listingTable(rows)}`);
  console.log(`\naddWord through the gateway\n${addWordTable(run.cells)}`);
  console.log(`\nfloors, before seeding\n${floorTable(run.floors ?? [])}`);
  console.log(`\nagainst the classic Express apps (${expressLine}), req/s\n${classic}`);
  console.log(`\nevery core (WORKERS), SQLite words(limit: 100)\n${coresTable(run.cores ?? [])}`);
  console.log(`\nseeding through addMany\n${seedTable(run.seeds)}`);
  console.log(`\nchecks after seeding\n${checkTable(run.checks)}`);
  console.log(
    `\ngateway memory, ${run.gatewayStores.join(", ")} in one process\n${
      memoryTable(run.memory)
    }\nbaseline peak RSS ${run.baselinePeakRssMiB} MiB`,
  );
  if (unmeasured.length) console.log(`\nnot measured\n${unmeasured.join("\n")}`);
  console.log(`\nlive updates\n${eventsLine(run)}`);
  console.log(`\ntargets\n${targets}`);
  console.log(`\nrun duration ${runDuration(run.durationSeconds)}`);
  const md = [
    `Measured ${run.startedAt} on ${machineLine(run.machine)}; ${s.loadGenerator}, ` +
    `${s.durationSeconds} s per cell after ${s.warmupSeconds} s of warm-up` +
    (s.firstWarmupSeconds ? ` (${s.firstWarmupSeconds} s before a workload's first cell)` : "") +
    `; cells: ${cellsLine}; ` +
    `a cell whose queue would pass ${s.queueBudgetMs / 1000} s is not measured. ` +
    `Stores ${s.wipedBefore ? "restored to empty data before the run" : "not wiped before"}; ` +
    `seeded through each module's \`addMany\`, ${s.seedBatch} words per call, ${s.seedParallel} ` +
    `calls in flight, ids one every ${s.seedSpacingMs / 1000} s ending at the run's start. ` +
    `The run took ${runDuration(run.durationSeconds)} (seeding, checks and wiping included).`,
    "",
    "Per store and size: first page `words(limit: 100)` and the `wordsConnection` page after " +
    "the 10,000th word at concurrency 16, the rare-word search at 1 and 16, gateway p50/p99 in " +
    "ms; seeding time in s; the gateway's peak RSS during the store's c64 first page. " +
    '"held" is what the store held when the cells ran (the `addWord` cells of earlier sizes add words):',
    "",
    scaleTable(scale, true),
    "",
    "Not measured:",
    "",
    ...(unmeasured.length ? unmeasured.map((l) => `- ${l}`) : ["- none"]),
    "",
    `Gateway memory, one process with every configured store (${
      run.gatewayStores.join(", ")
    }); mixed: concurrency 64 cycling through every measured store's first page:`,
    "",
    memoryTable(run.memory, true),
    "",
    "`words(limit: 100)`, gateway against the bare baseline (p50/p99: gateway):",
    "",
    listingTable(rows, true),
    "",
    "`addWord` through the gateway:",
    "",
    addWordTable(run.cells, true),
    "",
    "The floors, measured before seeding: 100 fixed words from a bare `Deno.serve` handler, " +
    "from graphql-yoga with its defaults and from Yoga with graphql-jit, over the gateway's " +
    "schema, no store (scripts/bench/floor_server.ts). ms per req is 1000 / req/s:",
    "",
    floorTable(run.floors ?? [], true),
    "",
    `Against the classic one-file Express apps users would otherwise run, on the same store and ` +
    `data (${expressLine}): first 100 words and adding one, req/s:`,
    "",
    classicTable(classicRows(run.cells), true),
    "",
    `Every core: the gateway with one worker, then one per core (\`WORKERS\`), each a fresh ` +
    `process with every store configured, listing SQLite's first 100 words after the first ` +
    `size; cores are CPU seconds per second of the gateway process, the load generator and the ` +
    `rest of the machine:`,
    "",
    coresTable(run.cores ?? [], true),
    "",
    "Seeding through each store module's `addMany`:",
    "",
    seedTable(run.seeds, true),
    "",
    "Checks through the gateway after seeding each size:",
    "",
    checkTable(run.checks, true),
    "",
    "Live updates, two gateway instances sharing the matrix Redis (`EVENTS_URL`), SQLite:",
    "",
    eventsLine(run),
    "",
    "Targets:",
    "",
    "```",
    targets,
    "```",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${out}/results.json`, JSON.stringify(run, null, 2) + "\n");
  await Deno.writeTextFile(`${out}/results.md`, md);
  await Deno.writeTextFile(`${out}/chart.svg`, renderChart(run));
  console.log(`\nwrote ${out}/results.json, results.md, chart.svg`);
}

/** One paragraph on live updates: latency from a write on B to A's subscriber, memory per subscription. */
export function eventsLine(run: BenchRun): string {
  const e = run.events;
  if (!e) return `not measured: ${run.eventsSkipped ?? "no result"}`;
  return `${e.writes} adds sent one at a time through B, each timed from sending it to its event ` +
    `arriving at an SSE subscriber on A: p50 ${e.p50Ms.toFixed(2)} ms, p99 ${
      e.p99Ms.toFixed(2)
    } ms, max ${e.maxMs.toFixed(2)} ms. A's resident memory: ${e.rssOneMiB} MiB with one ` +
    `subscription, ${e.rssAllMiB} MiB with ${e.subscribers} open (${e.perSubscriberKiB} KiB each); ` +
    `one write reached all ${e.subscribers} in ${e.fanOutMs.toFixed(0)} ms.`;
}
