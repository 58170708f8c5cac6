/**
 * Writing a run out: the tables and targets on the console, and
 * `results.json` (raw), `results.md` (tables for the README) and `chart.svg`
 * in the output directory.
 *
 * @module
 */
import { renderChart } from "./chart.ts";
import { machineLine } from "./machine.ts";
import {
  addWordTable,
  checkTargets,
  listingRows,
  listingTable,
  seedTable,
  targetLines,
} from "./report.ts";
import { ROOT } from "./stores.ts";
import type { BenchRun } from "./types.ts";

/** Prints the run's tables and targets and writes its files under `outDir` (relative to the repository). */
export async function writeResults(run: BenchRun, outDir: string): Promise<void> {
  const out = outDir.startsWith("/") ? outDir : `${ROOT}${outDir}`;
  await Deno.mkdir(out, { recursive: true });
  const rows = listingRows(run.cells);
  const targets = targetLines(checkTargets(run));
  console.log(`\nwords(limit: 100): gateway against baseline\n${listingTable(rows)}`);
  console.log(`\naddWord through the gateway\n${addWordTable(run.cells)}`);
  console.log(`\nseeding\n${seedTable(run.seeds)}`);
  console.log(
    `\ngateway peak RSS (VmHWM) ${run.gatewayMemory.peakRssMiB} MiB; baseline ${run.baselinePeakRssMiB} MiB`,
  );
  console.log(`\ntargets\n${targets}`);
  const md = [
    `Measured ${run.startedAt} on ${machineLine(run.machine)}; ${run.settings.loadGenerator}, ` +
    `${run.settings.durationSeconds} s per cell after ${run.settings.warmupSeconds} s of warm-up.`,
    "",
    "`words(limit: 100)`, gateway against the bare baseline (p50/p99: gateway):",
    "",
    listingTable(rows, true),
    "",
    "`addWord` through the gateway:",
    "",
    addWordTable(run.cells, true),
    "",
    "Seeding through each store module's `add`:",
    "",
    seedTable(run.seeds, true),
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
