/**
 * Turning a run's raw cells into what people read: the listing table
 * (gateway against baseline), the addWord and seeding tables, as aligned
 * text and as Markdown, and the issue's three targets with their figures.
 *
 * @module
 */
import type { StoreName } from "../../stores/types.ts";
import type { BenchRun, Cell, SeedResult } from "./types.ts";
import { renderColumns } from "../table.ts";

/** One row of the listing table: `words(limit: 100)` through the gateway and the baseline. */
export interface ListingRow {
  store: StoreName;
  size: number;
  held: number;
  concurrency: number;
  gatewayRps: number;
  baselineRps: number;
  /** gateway req/s ÷ baseline req/s. */
  ratio: number;
  p50: number;
  p99: number;
  baselineP99: number;
  failures: number;
}

/** Pairs every gateway listing cell with its baseline cell. */
export function listingRows(cells: readonly Cell[]): ListingRow[] {
  const rows: ListingRow[] = [];
  for (const g of cells) {
    if (g.workload !== "gateway-words") continue;
    const b = cells.find((c) =>
      c.workload === "baseline-words" && c.store === g.store && c.size === g.size &&
      c.concurrency === g.concurrency
    );
    rows.push({
      store: g.store,
      size: g.size,
      held: g.held,
      concurrency: g.concurrency,
      gatewayRps: g.rps,
      baselineRps: b?.rps ?? NaN,
      ratio: b && b.rps > 0 ? Math.round((g.rps / b.rps) * 1000) / 1000 : NaN,
      p50: g.p50,
      p99: g.p99,
      baselineP99: b?.p99 ?? NaN,
      failures: g.failures + (b?.failures ?? 0),
    });
  }
  return rows;
}

/** The listing table: store, size, concurrency, gateway and baseline req/s, ratio, p50, p99. */
export function listingTable(rows: readonly ListingRow[], markdown = false): string {
  return renderColumns([
    [
      "store",
      "size",
      "held",
      "conc",
      "gateway req/s",
      "baseline req/s",
      "ratio",
      "p50 ms",
      "p99 ms",
      "baseline p99 ms",
      "failed",
    ],
    ...rows.map((r) => [
      r.store,
      String(r.size),
      String(r.held),
      String(r.concurrency),
      fmt(r.gatewayRps, 0),
      fmt(r.baselineRps, 0),
      fmt(r.ratio, 2),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.baselineP99, 2),
      String(r.failures),
    ]),
  ], markdown);
}

/** The `addWord` table. */
export function addWordTable(cells: readonly Cell[], markdown = false): string {
  return renderColumns([
    ["store", "size", "held", "conc", "addWord req/s", "p50 ms", "p99 ms", "failed"],
    ...cells.filter((c) => c.workload === "gateway-addWord").map((c) => [
      c.store,
      String(c.size),
      String(c.held),
      String(c.concurrency),
      fmt(c.rps, 0),
      fmt(c.p50, 2),
      fmt(c.p99, 2),
      String(c.failures),
    ]),
  ], markdown);
}

/** The seeding table: how long each store took to reach each size. */
export function seedTable(seeds: readonly SeedResult[], markdown = false): string {
  return renderColumns([
    ["store", "target", "held before", "added", "held after", "seconds", "words/s", "concurrency"],
    ...seeds.map((s) => [
      s.store,
      String(s.target),
      String(s.before),
      String(s.added),
      String(s.held),
      fmt(s.seconds, 1),
      String(s.wordsPerSecond),
      String(s.concurrency),
    ]),
  ], markdown);
}

/** One of the issue's targets, for one store or for the gateway. */
export interface TargetCheck {
  target: string;
  store?: StoreName;
  figure: string;
  met: boolean | undefined;
}

/** The concurrency the throughput and growth targets are read at. */
export const TARGET_CONCURRENCY = 16;

/**
 * Checks the issue's targets: gateway ≥ 80% of baseline for `words(limit: 100)`
 * at concurrency 16 (the worst size counts); p99 at the largest size ≤ 1.5× p99
 * at the smallest (concurrency 16); gateway resident memory < 250 MiB at
 * concurrency 64. `met` is undefined when the run did not measure it.
 */
export function checkTargets(run: BenchRun): TargetCheck[] {
  const rows = listingRows(run.cells).filter((r) => r.concurrency === TARGET_CONCURRENCY);
  const out: TargetCheck[] = [];
  const sizes = [...run.settings.sizes].sort((a, b) => a - b);
  for (const store of run.settings.stores) {
    const mine = rows.filter((r) => r.store === store);
    if (mine.length === 0) continue;
    const measured = mine.filter((r) => Number.isFinite(r.ratio));
    const worst = measured.length
      ? measured.reduce((a, b) => (b.ratio < a.ratio ? b : a))
      : undefined;
    const unmeasured = mine.filter((r) => !Number.isFinite(r.ratio)).map((r) => r.held);
    out.push({
      target: "gateway ≥ 80% of baseline, words(limit: 100), c16",
      store,
      figure: (worst ? `${pct(worst.ratio)} (worst, at ${worst.held} words)` : "not measured") +
        (unmeasured.length ? `; not measured at ${unmeasured.join(", ")} words` : ""),
      // Met only when every size was measured: a size it could not serve at is not a pass.
      met: worst === undefined || unmeasured.length ? undefined : worst.ratio >= 0.8,
    });
    const small = mine.find((r) => r.size === sizes[0]);
    const large = mine.find((r) => r.size === sizes.at(-1));
    const growth = small && large && sizes.length > 1 ? large.p99 / small.p99 : NaN;
    out.push({
      target: sizes.length > 1
        ? `p99 at ${sizes.at(-1)} ≤ 1.5× p99 at ${sizes[0]} words, c16`
        : "p99 growth with size, c16",
      store,
      figure: Number.isNaN(growth)
        ? (sizes.length > 1 ? "not measured (see the cells above)" : "not measured (one size)")
        : `${fmt(large!.p99, 2)} ms at ${large!.held} / ${fmt(small!.p99, 2)} ms at ${
          small!.held
        } words = ${fmt(growth, 2)}x`,
      met: Number.isNaN(growth) ? undefined : growth <= 1.5,
    });
  }
  const rss = run.gatewayMemory.peakRssAtC64MiB;
  out.push({
    target: "gateway resident memory < 250 MiB at c64",
    figure: rss === undefined
      ? "not measured (no c64 cell)"
      : `${fmt(rss, 1)} MiB (VmRSS peak during c64 cells; VmHWM over the run ${
        fmt(run.gatewayMemory.peakRssMiB, 1)
      } MiB)`,
    met: rss === undefined ? undefined : rss < 250,
  });
  return out;
}

/** The target checks as text lines. */
export function targetLines(checks: readonly TargetCheck[]): string {
  return checks.map((c) =>
    `${c.met === undefined ? "n/a " : c.met ? "MET " : "MISS"}  ${c.target}${
      c.store ? ` [${c.store}]` : ""
    }: ${c.figure}`
  ).join("\n");
}

function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

function pct(ratio: number): string {
  return Number.isFinite(ratio) ? `${Math.round(ratio * 100)}%` : "-";
}
